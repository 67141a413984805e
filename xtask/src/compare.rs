//! `cargo xtask compare-pytorch [OPTIONS]`: electra-rs against PyTorch + HF transformers on the
//! same step, the same batch and the same number of threads, on the same machine in one run.
//!
//! Sets up `.venv-bench` once (Python 3 `venv` + `benches/reference/requirements.txt`; again
//! when that file changes), or uses the interpreter in `ELECTRA_BENCH_PYTHON`. For each round
//! and preset it runs, one process each and in this order: our training step (A), the
//! reference step with the generator head at the masked slots (B), the plain HF step (HF
//! computes the head at every position), our inference, PyTorch's inference, our GLUE
//! fine-tuning step, PyTorch's (HF `ElectraForSequenceClassification`). Medians are taken
//! over the timed steps of all rounds. Options as `bench throughput`, plus `--rounds N`
//! (default 2) and `--write-docs` (rewrites the table for that thread count in
//! docs/benchmarks.md).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::Context;
use electra_backend::DeviceSpec;
use serde_json::Value;

use crate::run;
use crate::throughput::{self, DEFAULTS, Options, ThroughputArgs, median, num, run_json, seconds};

const REQUIREMENTS: &str = "benches/reference/requirements.txt";
const SCRIPT: &str = "benches/reference/electra_step.py";
const VENV: &str = ".venv-bench";
/// Written into the venv after a successful install: the requirements it was made from.
const STAMP: &str = "electra-requirements.txt";

/// Runs the `compare-pytorch` task.
pub fn compare(root: &Path, args: &ThroughputArgs) -> anyhow::Result<()> {
    let options = args.options(DEFAULTS)?;
    if options.device != DeviceSpec::Flex {
        anyhow::bail!(
            "compare-pytorch runs on the CPU only (the reference script does not move to a GPU); \
             use `cargo xtask bench throughput --device {}` for GPU numbers",
            options.device
        );
    }
    let python = python(root)?;
    let binary = throughput::build(root, &options)?;
    let started_load = throughput::load();
    let warning = throughput::contention_warning();
    let describe_dir = root.join("target/compare-pytorch");
    std::fs::create_dir_all(&describe_dir)
        .with_context(|| format!("cannot create {}", describe_dir.display()))?;

    // (preset, column) -> reports of every round.
    let columns = [
        "ours-step",
        "torch-step",
        "hf-step",
        "ours-forward",
        "torch-forward",
        "ours-finetune",
        "torch-finetune",
    ];
    let mut results: Vec<(String, [Vec<Value>; 7])> = Vec::new();
    for preset in &options.presets {
        let description = describe(&binary, &describe_dir, preset, options.seq)?;
        results.push((preset.clone(), Default::default()));
        let slot = results.len() - 1;
        for round in 0..options.rounds {
            for (c, column) in columns.iter().enumerate() {
                eprintln!(
                    "round {}/{}: {preset} {column} ...",
                    round + 1,
                    options.rounds
                );
                let report = match *column {
                    "ours-step" => throughput::ours(&binary, &options, preset, "step")?,
                    "ours-forward" => throughput::ours(&binary, &options, preset, "forward")?,
                    "ours-finetune" => throughput::ours(&binary, &options, preset, "finetune")?,
                    "torch-finetune" => reference(
                        &python,
                        root,
                        &description,
                        &options,
                        preset,
                        "finetune",
                        "masked",
                    )?,
                    "torch-step" => reference(
                        &python,
                        root,
                        &description,
                        &options,
                        preset,
                        "step",
                        "masked",
                    )?,
                    "hf-step" => reference(
                        &python,
                        root,
                        &description,
                        &options,
                        preset,
                        "step",
                        "full",
                    )?,
                    _ => reference(
                        &python,
                        root,
                        &description,
                        &options,
                        preset,
                        "forward",
                        "masked",
                    )?,
                };
                results[slot].1[c].push(report);
            }
        }
    }

    let versions = results
        .first()
        .and_then(|(_, r)| r[1].first())
        .and_then(|r| r.get("versions"))
        .map_or_else(String::new, |v| {
            format!(
                "torch {}, transformers {}",
                v["torch"].as_str().unwrap_or("?"),
                v["transformers"].as_str().unwrap_or("?")
            )
        });
    let mut table = String::new();
    if let Some(warning) = &warning {
        let _ = writeln!(table, "{warning}");
    }
    let _ = writeln!(
        table,
        "Measured {} on {} (at the start: {started_load}, at the end: {}); {} thread(s) on both \
         sides; {versions}; {} rounds of A/B processes, each {} warm-up + {} timed steps; \
         medians over all timed steps.\n",
        throughput::now(),
        throughput::machine(),
        throughput::load(),
        options.threads,
        options.rounds,
        options.warmup,
        options.steps,
    );
    table.push_str(
        "| preset | batch × seq | mode | electra-rs tokens/s | PyTorch tokens/s | ratio | \
         PyTorch plain-HF tokens/s | ratio | electra-rs MFU | electra-rs peak RSS (MiB) | \
         PyTorch peak RSS (MiB) |\n\
         |---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    for (preset, r) in &results {
        let batch = options.batch_for(preset);
        for (mode, ours, torch, hf) in [
            ("training step", &r[0], &r[1], Some(&r[2])),
            ("inference", &r[3], &r[4], None),
            ("GLUE fine-tuning step", &r[5], &r[6], None),
        ] {
            let tokens = (batch * options.seq) as f64;
            let rate = |reports: &[Value]| {
                let all: Vec<f64> = reports.iter().flat_map(seconds).collect();
                tokens / median(&all)
            };
            let rss = |reports: &[Value]| {
                reports
                    .iter()
                    .map(|r| num(r, "peak_rss_mib"))
                    .fold(0.0, f64::max)
            };
            let mfu = {
                let all: Vec<f64> = ours.iter().flat_map(seconds).collect();
                let flops = ours.first().map_or(0.0, |r| num(r, "flops_per_sequence"));
                let peak = ours.first().map_or(1.0, |r| num(r, "peak_tflops"));
                flops * batch as f64 / median(&all) / 1e12 / peak
            };
            let (a, b) = (rate(ours), rate(torch));
            let hf_cells = match hf {
                Some(hf) => {
                    let c = rate(hf);
                    format!("{c:.0} | {:.2}", a / c)
                }
                None => "– | –".to_string(),
            };
            let torch_rss = match hf {
                Some(hf) => format!("{:.0} (plain HF {:.0})", rss(torch), rss(hf)),
                None => format!("{:.0}", rss(torch)),
            };
            let _ = writeln!(
                table,
                "| {preset} | {batch} × {} | {mode} | {a:.0} | {b:.0} | {:.2} | {hf_cells} | \
                 {:.2} % | {:.0} | {torch_rss} |",
                options.seq,
                a / b,
                100.0 * mfu,
                rss(ours),
            );
        }
    }
    table.push_str(
        "\nratio = electra-rs tokens/s ÷ PyTorch tokens/s (above 1: electra-rs is faster). \
         \"PyTorch\" computes the generator's vocabulary head at the masked slots only, as \
         electra-rs and the Google reference do; \"plain HF\" calls `ElectraForMaskedLM` as is, \
         which computes it at every position. Peak RSS: the largest `VmHWM` / `ru_maxrss` of \
         the processes of that column. The fine-tuning step is a two-class `[CLS]` classifier on \
         the discriminator (HF `ElectraForSequenceClassification` on the PyTorch side) with the \
         summed loss and the same Adam; its tokens/s ÷ seq is examples/s.\n",
    );
    println!("{table}");
    if options.write_docs {
        let section = format!("compare-threads-{}", options.threads);
        throughput::write_section(&root.join("docs/benchmarks.md"), &section, &table)?;
    }
    Ok(())
}

/// Writes the preset's `throughput --describe` JSON and returns its path.
fn describe(binary: &Path, dir: &Path, preset: &str, seq: usize) -> anyhow::Result<PathBuf> {
    let output = Command::new(binary)
        .args(["--describe", "--preset", preset, "--seq", &seq.to_string()])
        .output()
        .with_context(|| format!("cannot run {}", binary.display()))?;
    if !output.status.success() {
        anyhow::bail!(
            "{} --describe failed: {}",
            binary.display(),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let path = dir.join(format!("{preset}-{seq}.json"));
    std::fs::write(&path, &output.stdout)
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(path)
}

/// One run of the reference script.
fn reference(
    python: &Path,
    root: &Path,
    description: &Path,
    options: &Options,
    preset: &str,
    mode: &str,
    gen_head: &str,
) -> anyhow::Result<Value> {
    let threads = options.threads.to_string();
    run_json(
        Command::new(python)
            .arg(root.join(SCRIPT))
            // Both OpenMP and MKL read these; torch.set_num_threads pins the intra-op pool.
            .env("OMP_NUM_THREADS", &threads)
            .env("MKL_NUM_THREADS", &threads)
            .arg("--describe")
            .arg(description)
            .args(["--preset", preset, "--mode", mode, "--gen-head", gen_head])
            .args(["--threads", &threads])
            .args(["--batch", &options.batch_for(preset).to_string()])
            .args(["--seq", &options.seq.to_string()])
            .args(["--warmup", &options.warmup.to_string()])
            .args(["--steps", &options.steps.to_string()]),
    )
}

/// The Python interpreter: `ELECTRA_BENCH_PYTHON`, or `.venv-bench` (created and filled from
/// the requirements file when missing or out of date).
fn python(root: &Path) -> anyhow::Result<PathBuf> {
    if let Some(python) = std::env::var_os("ELECTRA_BENCH_PYTHON") {
        return Ok(PathBuf::from(python));
    }
    let venv = root.join(VENV);
    let python = venv.join("bin/python");
    let requirements = root.join(REQUIREMENTS);
    let wanted = std::fs::read_to_string(&requirements)
        .with_context(|| format!("cannot read {}", requirements.display()))?;
    let stamp = venv.join(STAMP);
    if std::fs::read_to_string(&stamp).ok().as_deref() == Some(wanted.as_str()) && python.exists() {
        return Ok(python);
    }
    eprintln!(
        "setting up {} from {REQUIREMENTS} (torch and transformers: a large download, once)",
        venv.display()
    );
    if !python.exists() {
        run(Command::new("python3").arg("-m").arg("venv").arg(&venv))?;
    }
    run(Command::new(&python)
        .args(["-m", "pip", "install", "--quiet", "-r"])
        .arg(&requirements))?;
    std::fs::write(&stamp, wanted).with_context(|| format!("cannot write {}", stamp.display()))?;
    Ok(python)
}
