//! The comparison: flex, then the device, then the report.

use std::path::PathBuf;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};
use electra_backend::DeviceSpec;
use serde_json::json;

use crate::measure::{self, Measure, Measurements, TrainingSetup};
use crate::tolerance::Tolerances;
use crate::{fixtures, report};

/// Backend conformance: one device against flex and the PyTorch fixtures (docs/backends.md).
/// Run it through `cargo xtask conformance --device D`, which builds this tool with D's
/// backend feature.
#[derive(Debug, clap::Parser)]
#[command(name = "electra-conformance")]
pub struct ConformanceArgs {
    /// Device to check against flex (same strings as everywhere: flex, ndarray, wgpu, wgpu:N,
    /// wgpu:cpu, cuda, cuda:N).
    #[arg(long)]
    pub device: DeviceSpec,
    /// Optimizer steps of the training comparison.
    #[arg(long, default_value_t = 3)]
    pub steps: u64,
    /// Sequences in the training batch.
    #[arg(long, default_value_t = 4)]
    pub batch_size: usize,
    /// Tokens per training sequence (at least 8, so that masking chooses a slot).
    #[arg(long, default_value_t = 32)]
    pub seq_len: usize,
    /// HF parity fixtures (default: electra-model/tests/fixtures/hf-tiny of this source tree).
    #[arg(long)]
    pub hf_fixtures: Option<PathBuf>,
    /// PyTorch loss fixture (default: electra-objective/tests/fixtures/objective-tiny).
    #[arg(long)]
    pub objective_fixture: Option<PathBuf>,
    /// Write the rows, timings and device description here as JSON.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Fail unless the device's description (for wgpu: the adapter's name and driver)
    /// contains this text, e.g. `llvmpipe` to insist on Mesa's lavapipe.
    #[arg(long)]
    pub require_adapter: Option<String>,
}

/// Runs the comparison on `spec`; an error if any quantity is out of tolerance.
pub fn run(args: &ConformanceArgs) -> anyhow::Result<()> {
    let spec = args.device;
    if args.steps == 0 || args.batch_size == 0 || args.seq_len < 8 || args.seq_len > 512 {
        bail!(
            "--steps and --batch-size must be > 0 and --seq-len between 8 and 512 (the tiny \
             model's max_position_embeddings)"
        );
    }
    let description = electra_backend::describe(spec)?;
    tracing::info!(device = %spec, %description, "conformance");
    if let Some(needle) = &args.require_adapter
        && !description.contains(needle.as_str())
    {
        bail!("--require-adapter {needle}: device `{spec}` is `{description}`");
    }
    let hf_dir = args
        .hf_fixtures
        .clone()
        .unwrap_or_else(fixtures::default_hf_dir);
    let objective_dir = args
        .objective_fixture
        .clone()
        .unwrap_or_else(fixtures::default_objective_dir);
    let setup = TrainingSetup {
        steps: args.steps,
        batch_size: args.batch_size,
        seq_len: args.seq_len,
    };
    let started = Instant::now();
    let progress = |name: &'static str| {
        move |stage: &str| {
            tracing::info!("{name}: {stage} ({:.1} s)", started.elapsed().as_secs_f64())
        }
    };

    let flex_progress = progress("flex");
    let flex = measure_on(
        DeviceSpec::Flex,
        Measure {
            hf_dir: hf_dir.clone(),
            objective_dir: objective_dir.clone(),
            setup,
            reference: None,
            progress: &flex_progress,
        },
    )
    .context("the flex reference run failed")?;
    let flex_seconds = started.elapsed().as_secs_f64();
    let device_progress = progress("device");
    let device = measure_on(
        spec,
        Measure {
            hf_dir: hf_dir.clone(),
            objective_dir: objective_dir.clone(),
            setup,
            reference: Some(&flex),
            progress: &device_progress,
        },
    )
    .with_context(|| format!("the run on `{spec}` failed"))?;
    let device_seconds = started.elapsed().as_secs_f64() - flex_seconds;

    let tolerances = Tolerances::for_device(spec);
    let expected = fixtures::hf_expected(&hf_dir)?;
    let oracle_losses = fixtures::ObjectiveFixture::read(&hf_dir, &objective_dir)?;
    let mut expected_tensors = expected;
    expected_tensors.extend(oracle_losses.logits);
    let rows = report::compare(
        &device,
        &flex,
        &expected_tensors,
        &oracle_losses.losses,
        &tolerances,
    );
    let failed: Vec<&report::Row> = rows.iter().filter(|r| !r.passed()).collect();

    println!(
        "conformance of `{spec}` ({description}) against flex and PyTorch (HF fixtures)\n\
         tiny model, {} steps on a batch of {}x{}, lr {}\n",
        setup.steps,
        setup.batch_size,
        setup.seq_len,
        measure::LEARNING_RATE
    );
    print!("{}", report::table(&rows));
    let step_seconds =
        |m: &Measurements| -> Vec<f64> { m.steps.iter().map(|s| s.seconds).collect() };
    println!(
        "\ntraining step seconds: flex {:?}, {spec} {:?}; whole run: flex {flex_seconds:.1} s, \
         {spec} {device_seconds:.1} s",
        rounded(&step_seconds(&flex)),
        rounded(&step_seconds(&device)),
    );

    if let Some(path) = &args.json {
        let unix_time = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let report = json!({
            "device": spec.to_string(),
            "description": description,
            "unix_time": unix_time,
            "setup": setup,
            "learning_rate": measure::LEARNING_RATE,
            "tolerances": {
                "activations": tolerances.activations,
                "losses": tolerances.losses,
                "step_losses": tolerances.step_losses,
                "grad_norm": tolerances.grad_norm,
                "parameters": tolerances.parameters,
                "sampling_frequency": tolerances.sampling_frequency,
            },
            "rows": rows,
            "passed": failed.is_empty(),
            "seconds": {
                "flex_run": flex_seconds,
                "device_run": device_seconds,
                "flex_steps": step_seconds(&flex),
                "device_steps": step_seconds(&device),
            },
        });
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("cannot create {}", parent.display()))?;
        }
        let text = serde_json::to_string_pretty(&report)?;
        electra_fs::write_atomic(path, text.as_bytes())
            .with_context(|| format!("cannot write {}", path.display()))?;
        println!("report: {}", path.display());
    }
    if !failed.is_empty() {
        let names: Vec<&str> = failed.iter().map(|r| r.quantity.as_str()).collect();
        bail!(
            "{} of {} quantities on `{spec}` are outside their tolerance: {}",
            failed.len(),
            rows.len(),
            names.join(", ")
        );
    }
    println!(
        "conformance of `{spec}`: all {} quantities within tolerance",
        rows.len()
    );
    Ok(())
}

/// Runs `task` on `spec`'s backend.
fn measure_on(spec: DeviceSpec, task: Measure<'_>) -> anyhow::Result<Measurements> {
    electra_backend::dispatch(spec, task)?
}

fn rounded(values: &[f64]) -> Vec<f64> {
    values.iter().map(|v| (v * 100.0).round() / 100.0).collect()
}
