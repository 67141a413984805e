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
//! Backend: burn's flex CPU backend, its rayon pool sized by `RAYON_NUM_THREADS`.

use std::process::ExitCode;

use burn::backend::{Autodiff, Flex};
use clap::{Parser, ValueEnum};
use electra_benches::measure::{Mode, Settings, describe, measure, run_config};

/// Peak f32 FLOP/s per core assumed by default, in TFLOP/s: 2.6 GHz × 64 FLOPs per cycle
/// (two AVX-512 FMA units × 16 lanes × 2). See docs/benchmarks.md.
const CPU_PEAK_TFLOPS_PER_CORE: f64 = 2.6e9 * 64.0 / 1e12;

#[derive(Clone, Copy, Debug, ValueEnum)]
enum ModeArg {
    Step,
    Forward,
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
    /// What to time: the full training step or discriminator inference.
    #[arg(long, value_enum, default_value_t = ModeArg::Step)]
    mode: ModeArg,
    /// Peak TFLOP/s for the utilisation figure [default: threads × 0.1664, i.e. 2.6 GHz ×
    /// 64 f32 FLOPs/cycle per core].
    #[arg(long)]
    peak_tflops: Option<f64>,
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
    let settings = Settings {
        preset: args.preset.clone(),
        batch: args.batch,
        seq: args.seq,
        warmup: args.warmup,
        steps: args.steps,
        mode: match args.mode {
            ModeArg::Step => Mode::Step,
            ModeArg::Forward => Mode::Forward,
        },
        peak_tflops: args
            .peak_tflops
            .unwrap_or(threads as f64 * CPU_PEAK_TFLOPS_PER_CORE),
        threads,
    };
    let report = measure::<Autodiff<Flex>>(&settings, &Default::default())?;
    serde_json::to_string(&report).map_err(|e| e.to_string())
}
