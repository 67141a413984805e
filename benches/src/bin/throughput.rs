//! `throughput`: times the real pre-training step (or discriminator inference) of a preset on
//! synthetic batches and prints one JSON report (`electra_benches::measure::Report`) on stdout.
//! `cargo xtask bench` and `cargo xtask compare-pytorch` run it in release mode; by hand:
//!
//! ```sh
//! RAYON_NUM_THREADS=2 cargo run --release -p electra-benches --bin throughput -- \
//!     --preset tiny --batch 16 --seq 128 --warmup 1 --steps 5 --mode step
//! cargo run --release -p electra-benches --bin throughput -- --preset small --describe
//! ```
//!
//! `--describe` prints the preset's generator and discriminator configs instead (HF field
//! names), which the PyTorch reference script reads to build the same networks.
//! Backend: `--device flex` (default; burn's CPU backend, its rayon pool sized by
//! `RAYON_NUM_THREADS`), `--device cuda[:N]` (cargo feature `cuda`) or `--device wgpu[:N]`
//! (feature `wgpu`); a GPU needs `--peak-tflops` (e.g. 989 for an H100 SXM's dense bf16 peak,
//! the figure the project's MFU goal refers to). All runs are f32.

use std::process::ExitCode;

use burn::backend::{Autodiff, Flex};
use clap::{Parser, ValueEnum};
use electra_benches::measure::{Mode, Report, Settings, describe, measure, run_config};

/// Peak f32 FLOP/s per core assumed by default, in TFLOP/s: 2.6 GHz × 64 FLOPs per cycle
/// (two AVX-512 FMA units × 16 lanes × 2). See docs/benchmarks.md.
const CPU_PEAK_TFLOPS_PER_CORE: f64 = 2.6e9 * 64.0 / 1e12;

#[derive(Clone, Copy, Debug, ValueEnum)]
enum ModeArg {
    Step,
    Forward,
    Finetune,
}

#[derive(Debug, Parser)]
#[command(about = "Time the ELECTRA pre-training step or inference on synthetic batches")]
struct Args {
    /// Run preset (tiny, small, base, large).
    #[arg(long, default_value = "tiny")]
    preset: String,
    /// Sequences per step.
    #[arg(long, default_value_t = 16)]
    batch: usize,
    /// Tokens per sequence.
    #[arg(long, default_value_t = 128)]
    seq: usize,
    /// Untimed steps first.
    #[arg(long, default_value_t = 1)]
    warmup: usize,
    /// Timed steps.
    #[arg(long, default_value_t = 5)]
    steps: usize,
    /// What to time: the full pre-training step, discriminator inference, or a GLUE
    /// fine-tuning step (two classes, `[CLS]` head).
    #[arg(long, value_enum, default_value_t = ModeArg::Step)]
    mode: ModeArg,
    /// Peak TFLOP/s for the utilisation figure [default on flex: threads × 0.1664, i.e.
    /// 2.6 GHz × 64 f32 FLOPs/cycle per core; required on a GPU].
    #[arg(long)]
    peak_tflops: Option<f64>,
    /// Backend and device: flex, cuda, cuda:N, wgpu, wgpu:N.
    #[arg(long, default_value = "flex")]
    device: String,
    /// Print the preset's model configs as JSON and exit.
    #[arg(long)]
    describe: bool,
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(&args) {
        Ok(json) => {
            println!("{json}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("throughput: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: &Args) -> Result<String, String> {
    if args.describe {
        let config = run_config(&args.preset, args.seq)?;
        let description = describe(&config, args.seq)?;
        return serde_json::to_string_pretty(&description).map_err(|e| e.to_string());
    }
    if args.batch == 0 || args.seq < 3 || args.steps == 0 {
        return Err("--batch and --steps must be >= 1 and --seq >= 3".into());
    }
    let threads = rayon::current_num_threads();
    let gpu = args.device != "flex";
    if gpu && args.peak_tflops.is_none() {
        return Err(format!(
            "--device {} needs --peak-tflops (the device's peak, e.g. 989 for an H100 SXM's dense bf16)",
            args.device
        ));
    }
    let settings = Settings {
        preset: args.preset.clone(),
        batch: args.batch,
        seq: args.seq,
        warmup: args.warmup,
        steps: args.steps,
        mode: match args.mode {
            ModeArg::Step => Mode::Step,
            ModeArg::Forward => Mode::Forward,
            ModeArg::Finetune => Mode::Finetune,
        },
        peak_tflops: args
            .peak_tflops
            .unwrap_or(threads as f64 * CPU_PEAK_TFLOPS_PER_CORE),
        device: args.device.clone(),
        threads,
    };
    let report = dispatch(&args.device, &settings)?;
    serde_json::to_string(&report).map_err(|e| e.to_string())
}

/// `measure` on the backend `device` names.
fn dispatch(device: &str, settings: &Settings) -> Result<Report, String> {
    let (kind, index) = match device.split_once(':') {
        Some((kind, i)) => (
            kind,
            i.parse::<usize>()
                .map_err(|_| format!("--device {device}: `{i}` is not a device index"))?,
        ),
        None => (device, 0),
    };
    match kind {
        "flex" => measure::<Autodiff<Flex>>(settings, &Default::default()),
        #[cfg(feature = "cuda")]
        "cuda" => measure::<Autodiff<burn::backend::Cuda>>(
            settings,
            &burn::backend::cuda::CudaDevice { index },
        ),
        #[cfg(feature = "wgpu")]
        "wgpu" => measure::<Autodiff<burn::backend::Wgpu>>(
            settings,
            &burn::backend::wgpu::WgpuDevice::DiscreteGpu(index),
        ),
        #[cfg(not(feature = "cuda"))]
        "cuda" => Err(not_compiled(device, index)),
        #[cfg(not(feature = "wgpu"))]
        "wgpu" => Err(not_compiled(device, index)),
        other => Err(format!(
            "unknown device `{other}` (known: flex, cuda[:N], wgpu[:N])"
        )),
    }
}

/// The error for a GPU device whose backend feature this binary was built without.
#[allow(dead_code)] // unused when both GPU features are on
fn not_compiled(device: &str, index: usize) -> String {
    let kind = device.split(':').next().unwrap_or(device);
    format!(
        "--device {device} (index {index}) needs the `{kind}` feature: \
         cargo build --release -p electra-benches --features {kind}"
    )
}
