//! # xtask: project automation
//!
//! `cargo xtask <task>` (an alias in `.cargo/config.toml`). Tasks run cargo and scripts; no
//! model code lives here.
//!
//! - `ci`: exactly what CI runs (`.ci/run`): format check, clippy, the test suite, compile
//!   checks of the `wgpu` and `cuda` backends, and the flex and wgpu (lavapipe) conformance.
//! - `bench [SUITE] [ARGS...]`: the criterion suites and the end-to-end throughput run
//!   (`bench.rs`).
//! - `compare-pytorch [OPTIONS]`: our step against PyTorch + HF transformers (`compare.rs`).
//! - `profile [OPTIONS]`: a step's time by kind of work, from `perf` samples (`profile.rs`).
//! - `conformance --device D [--release] [ARGS...]`: backend conformance of D against flex and
//!   the PyTorch fixtures (see `conformance.rs`).
//! - `check-features`: fails if a backend is built without its speed features
//!   (`features.rs`).
//! - `experiment equal-compute --budget smoke|mini|full [OPTIONS]`: ELECTRA against BERT at
//!   equal pre-training FLOPs, fine-tuned on GLUE, resumable (`experiment/`).
//! - `fixtures`: regenerates the Hugging Face parity fixtures with PyTorch (creates
//!   `.venv-fixtures` from `scripts/requirements-fixtures.txt` on first use).

mod conformance;

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};

mod against;
mod bench;
mod compare;
mod experiment;
mod features;
mod profile;
mod throughput;

const USAGE: &str = "usage: cargo xtask <task>

tasks:
  ci                 run what CI runs (.ci/run): fmt, clippy, tests, backend checks, conformance
  bench              every criterion suite (quick settings), then `bench throughput`
  bench --against REV [OPTIONS]
                     this checkout against REV (built in a worktree), step and inference
                     alternated; fails past --threshold 0.10 slower (OPTIONS as throughput,
                     plus --rounds 3)
  bench SUITE [ARGS] one criterion suite (encoder, train, data); ARGS go to criterion
  bench throughput [OPTIONS]
                     the real pre-training step and inference per preset: tokens/s,
                     sequences/s, FLOPs/sequence, MFU, peak RSS
  compare-pytorch [OPTIONS]
                     the same against PyTorch + HF transformers (sets up .venv-bench once)
                     OPTIONS: --presets tiny,small --batch N (default tiny 16, others 8)
                     --seq 128 --warmup 1 --steps 3 --threads 2 --rounds 2
                     --peak-tflops X --write-docs (rewrite docs/benchmarks.md tables)
                     --device flex|cuda[:N]|wgpu[:N] (bench throughput only; a GPU
                     needs --peak-tflops)
  profile [OPTIONS]  where a step's time goes, by kind (perf): --preset small --mode step|forward
                     --batch N --seq 128 --threads 1 --steps 6 --top 15
  conformance --device D [--release] [ARGS...]
                     device D against flex and the PyTorch fixtures (table; fails on a mismatch)
  check-features     fail if a backend is built without its speed features (flex: simd +
                     rayon; cuda: fusion + autotune)
  experiment equal-compute --budget smoke|mini|full [OPTIONS]
                     ELECTRA vs BERT at equal pre-training FLOPs, GLUE fine-tuning over seeds,
                     results.json/results.md/plots; resumable (`cargo xtask experiment --help`)
  fixtures           regenerate the HF parity fixtures (needs Python 3.11 + pip)
  help               this text";

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let root = workspace_root();
    match args.first().map(String::as_str) {
        Some("ci") => run(Command::new("bash").arg(".ci/run").current_dir(&root)),
        Some("bench") => bench::bench(&root, &args[1..]),
        Some("compare-pytorch") => compare::compare(&root, &args[1..]),
        Some("conformance") => conformance::run(&root, &args[1..]),
        Some("fixtures") => fixtures(&root),
        Some("check-features") => features::check(&root),
        Some("experiment") => experiment::run(&root, &args[1..]),
        Some("profile") => profile::profile(&root, &args[1..]),
        Some("help") | Some("--help") | Some("-h") | None => {
            println!("{USAGE}");
            Ok(())
        }
        Some(other) => bail!("unknown task `{other}`\n\n{USAGE}"),
    }
}

/// The workspace root: the parent of this crate's directory.
fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

fn cargo() -> String {
    std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string())
}

/// Runs a command, failing with its command line if it fails.
fn run(command: &mut Command) -> anyhow::Result<()> {
    let shown = format!("{command:?}");
    let status = command
        .status()
        .with_context(|| format!("cannot start {shown}"))?;
    if !status.success() {
        bail!("{shown} failed with {status}");
    }
    Ok(())
}

/// Creates the fixture venv once, then runs the fixture script with it.
fn fixtures(root: &Path) -> anyhow::Result<()> {
    let venv = root.join(".venv-fixtures");
    let python = venv.join("bin/python");
    if !python.exists() {
        run(Command::new("python3").arg("-m").arg("venv").arg(&venv))?;
        run(Command::new(&python)
            .args(["-m", "pip", "install", "--quiet", "-r"])
            .arg(root.join("scripts/requirements-fixtures.txt")))?;
    }
    run(Command::new(&python)
        .arg(root.join("scripts/make_hf_fixtures.py"))
        .current_dir(root))
}
