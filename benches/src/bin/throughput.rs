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
//! Backend: `--device` takes the device strings of the `electra` binary, with the same meaning
//! (`electra_backend::DeviceSpec`): `flex` (default; burn's CPU backend, its rayon pool sized
//! by `RAYON_NUM_THREADS`), `ndarray`, `wgpu` (wgpu's preferred adapter), `wgpu:N` (the N-th
//! discrete GPU), `wgpu:cpu`, `cuda[:N]`, each behind the cargo feature of its backend. A
//! device that does not compute on the host's cores needs `--peak-tflops` (e.g. 989 for an H100
//! SXM's dense bf16 peak, the figure the project's MFU goal refers to). All runs are f32.

use std::process::ExitCode;

use burn::backend::Autodiff;
use burn::tensor::backend::Backend;
use clap::{Parser, ValueEnum};
use electra_backend::{BackendTask, DeviceSpec};
use electra_benches::measure::{Mode, Report, Settings, describe, measure, run_config};
use electra_benches::roofline::{self, step_products};

/// Peak f32 FLOP/s per core assumed by default, in TFLOP/s: 2.6 GHz × 64 FLOPs per cycle
/// (two AVX-512 FMA units × 16 lanes × 2). See docs/benchmarks.md.
const CPU_PEAK_TFLOPS_PER_CORE: f64 = 2.6e9 * 64.0 / 1e12;

#[derive(Clone, Copy, Debug, ValueEnum)]
enum ModeArg {
    Step,
    Forward,
    Finetune,
    Squad,
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
    /// What to time: the full pre-training step, discriminator inference, a GLUE
    /// fine-tuning step (two classes, `[CLS]` head), or a SQuAD fine-tuning step (HF's
    /// question-answering head).
    #[arg(long, value_enum, default_value_t = ModeArg::Step)]
    mode: ModeArg,
    /// Peak TFLOP/s for the utilisation figure [default on flex: threads × 0.1664, i.e.
    /// 2.6 GHz × 64 f32 FLOPs/cycle per core; required on a GPU].
    #[arg(long)]
    peak_tflops: Option<f64>,
    /// Backend and device: flex, ndarray, wgpu, wgpu:N, wgpu:cpu, cuda, cuda:N.
    #[arg(long, default_value = "flex")]
    device: DeviceSpec,
    /// Print the preset's model configs as JSON and exit.
    #[arg(long)]
    describe: bool,
    /// Instead of a step, time `gemm` alone on every matrix product of the preset's training
    /// step at `--batch × --seq` (one thread, best of `--steps` runs each) and print the
    /// roofline as JSON (`electra_benches::roofline`).
    #[arg(long)]
    roofline: bool,
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
    if args.roofline {
        let config = run_config(&args.preset, args.seq)?;
        let d = describe(&config, args.seq)?;
        let products = step_products(
            &d.discriminator,
            &d.generator,
            args.batch,
            args.seq,
            d.slots,
        );
        return serde_json::to_string(&roofline::measure(&products, args.steps))
            .map_err(|e| e.to_string());
    }
    let threads = rayon::current_num_threads();
    if !args.device.runs_on_cpu() && args.peak_tflops.is_none() {
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
            ModeArg::Squad => Mode::Squad,
        },
        peak_tflops: args
            .peak_tflops
            .unwrap_or(threads as f64 * CPU_PEAK_TFLOPS_PER_CORE),
        device: args.device.to_string(),
        threads,
    };
    let report =
        electra_backend::dispatch(args.device, Measure(&settings)).map_err(|e| e.to_string())??;
    serde_json::to_string(&report).map_err(|e| e.to_string())
}

/// `measure` on the backend of the device it is given (with autodiff).
struct Measure<'a>(&'a Settings);

impl BackendTask for Measure<'_> {
    type Output = Result<Report, String>;

    fn run<B: Backend>(self, device: B::Device) -> Self::Output {
        measure::<Autodiff<B>>(self.0, &device)
    }
}
