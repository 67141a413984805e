//! # xtask: project automation
//!
//! `cargo xtask <task>` (an alias in `.cargo/config.toml`). Tasks run cargo and scripts; no
//! model code lives here. Arguments are parsed by clap (`cargo xtask help`, `cargo xtask TASK
//! --help`); `--device` takes electra-backend's device strings, with the same meaning as for
//! the `electra` binary. A new task is a variant of [`Task`] and an arm in [`main`].
//!
//! - `ci`: exactly what CI runs (`.ci/run`): format check, clippy, the test suite, the
//!   multi-node tests (`multinode test`), compile checks of the `wgpu` and `cuda` backends,
//!   and the flex and wgpu (lavapipe) conformance.
//! - `bench [SUITE] [ARGS...]`, `bench --against REV`: the criterion suites and the end-to-end throughput run
//!   (`bench.rs`).
//! - `compare-pytorch [OPTIONS]`: our step against PyTorch + HF transformers (`compare.rs`).
//! - `profile [OPTIONS]`: a step's time by kind of work, from `perf` samples (`profile.rs`).
//! - `conformance --device D [--release] [ARGS...]`: backend conformance of D against flex and
//!   the PyTorch fixtures (see `conformance.rs`).
//! - `check-features`: fails if a backend is built without its speed features
//!   (`features.rs`).
//! - `experiment equal-compute --budget smoke|mini|full [OPTIONS]`: ELECTRA against BERT at
//!   equal pre-training FLOPs, fine-tuned on GLUE, resumable (`experiment/`).
//! - `multinode test|build [--release]`: the multi-node tests, or an `electra-multinode`
//!   binary, against burn-collective 0.21.0 with its global barrier fixed (`multinode.rs`).
//! - `chaos --kills N --seed S`: a pre-training killed with SIGKILL at N seeded random
//!   moments and resumed each time, compared bit for bit with the uninterrupted run
//!   (`chaos.rs`).
//! - `fixtures`: regenerates the Hugging Face parity fixtures with PyTorch (creates
//!   `.venv-fixtures` from `scripts/requirements-fixtures.txt` on first use).

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};
use clap::{CommandFactory, Parser, Subcommand};

mod against;
mod bench;
mod chaos;
mod compare;
mod conformance;
mod experiment;
mod features;
mod multinode;
mod profile;
mod safetensors;
mod throughput;

/// Project automation for electra-rs: CI, benchmarks, backend conformance, fixtures.
#[derive(Debug, Parser)]
#[command(name = "cargo xtask", bin_name = "cargo xtask")]
struct Cli {
    #[command(subcommand)]
    task: Option<Task>,
}

/// The tasks. A new task is one variant here (its doc comment is its help line, its fields or
/// `Args` struct its options) and one arm in [`main`].
#[derive(Debug, Subcommand)]
enum Task {
    /// Run what CI runs (.ci/run): fmt, clippy, tests, backend checks, conformance.
    Ci,
    /// Criterion suites (quick settings) then the throughput table; one suite; or
    /// `--against REV`.
    Bench(bench::BenchArgs),
    /// Our step, inference and fine-tuning step against PyTorch + HF transformers (sets up
    /// .venv-bench once).
    ComparePytorch(compare::CompareArgs),
    /// Where a step's time goes, by kind of work (perf).
    Profile(profile::ProfileArgs),
    /// Device D against flex and the PyTorch fixtures (table; fails on a mismatch).
    Conformance(conformance::ConformanceArgs),
    /// Fail if a backend is built without its speed features (flex: simd + rayon; cuda:
    /// fusion + autotune).
    CheckFeatures,
    /// ELECTRA vs BERT at equal pre-training FLOPs, GLUE fine-tuning over seeds,
    /// results.json/results.md/plots; resumable (`cargo xtask experiment --help`).
    #[command(disable_help_flag = true)]
    Experiment {
        /// `equal-compute --budget smoke|mini|full [OPTIONS]` (the experiment's own parser).
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Multi-node tests or build against burn-collective 0.21.0 with its barrier fixed
    /// (`test`, `build [--release]`; xtask/patches/).
    Multinode(multinode::MultinodeArgs),
    /// Kill a pre-training with SIGKILL N times at seeded random moments, resume each time,
    /// and compare losses and final weights with the uninterrupted run (bit for bit).
    Chaos(chaos::ChaosArgs),
    /// Regenerate the HF parity fixtures (needs Python 3.11 + pip).
    Fixtures,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let root = workspace_root();
    match cli.task {
        Some(Task::Ci) => run(Command::new("bash").arg(".ci/run").current_dir(&root)),
        Some(Task::Bench(args)) => bench::bench(&root, &args),
        Some(Task::ComparePytorch(args)) => compare::compare(&root, &args),
        Some(Task::Profile(args)) => profile::profile(&root, &args),
        Some(Task::Conformance(args)) => conformance::run(&root, &args),
        Some(Task::CheckFeatures) => features::check(&root),
        Some(Task::Experiment { args }) => experiment::run(&root, &args),
        Some(Task::Multinode(args)) => multinode::run_task(&root, &args),
        Some(Task::Chaos(args)) => chaos::run(&root, &args),
        Some(Task::Fixtures) => fixtures(&root),
        None => {
            Cli::command().print_help()?;
            Ok(())
        }
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

/// Creates the fixture venv once, then runs the fixture scripts with it (the HF models of
/// electra-model and the HF question-answering model of electra-eval).
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
        .current_dir(root))?;
    run(Command::new(&python)
        .arg(root.join("scripts/make_hf_qa_fixture.py"))
        .current_dir(root))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(line: &[&str]) -> Task {
        Cli::try_parse_from(std::iter::once("xtask").chain(line.iter().copied()))
            .unwrap_or_else(|e| panic!("{line:?}: {e}"))
            .task
            .expect("a task")
    }

    /// Every command line that README.md, docs/benchmarks.md and docs/backends.md show.
    #[test]
    fn documented_command_lines_parse() {
        assert!(matches!(parse(&["ci"]), Task::Ci));
        assert!(matches!(parse(&["check-features"]), Task::CheckFeatures));
        assert!(matches!(parse(&["fixtures"]), Task::Fixtures));
        let Task::Multinode(m) = parse(&["multinode", "test", "hung", "--nocapture"]) else {
            panic!()
        };
        let multinode::Action::Test { args } = m.action else {
            panic!()
        };
        assert_eq!(args, ["hung", "--nocapture"]);
        assert!(matches!(
            parse(&["multinode", "build", "--release"]),
            Task::Multinode(multinode::MultinodeArgs {
                action: multinode::Action::Build { release: true }
            })
        ));
        let Task::Bench(b) = parse(&["bench"]) else {
            panic!()
        };
        assert!(b.suite.is_none() && b.against.is_none());
        let Task::Bench(b) = parse(&["bench", "train", "--warm-up-time", "2", "step"]) else {
            panic!()
        };
        let Some(bench::Suite::Train(c)) = b.suite else {
            panic!()
        };
        assert_eq!(c.args, ["--warm-up-time", "2", "step"]);
        let Task::Bench(b) = parse(&[
            "bench",
            "throughput",
            "--presets",
            "tiny,small",
            "--threads",
            "1",
            "--write-docs",
        ]) else {
            panic!()
        };
        let Some(bench::Suite::Throughput(t)) = b.suite else {
            panic!()
        };
        let o = t.options(throughput::DEFAULTS).expect("options");
        assert_eq!((o.presets.len(), o.threads, o.write_docs), (2, 1, true));
        let Task::Bench(b) = parse(&[
            "bench",
            "--against",
            "main",
            "--presets",
            "tiny",
            "--threshold",
            "0.2",
        ]) else {
            panic!()
        };
        assert_eq!((b.against.as_deref(), b.threshold), (Some("main"), 0.2));
        assert_eq!(b.options.presets, ["tiny"]);
        let Task::ComparePytorch(c) = parse(&[
            "compare-pytorch",
            "--presets",
            "tiny",
            "--threads",
            "1",
            "--rounds",
            "3",
            "--write-docs",
            "--modes",
            "forward",
            "--seqs",
            "128,512",
        ]) else {
            panic!()
        };
        assert_eq!(
            c.throughput
                .options(throughput::DEFAULTS)
                .expect("options")
                .rounds,
            3
        );
        assert_eq!(
            (c.modes, c.seqs),
            (vec!["forward".to_string()], vec![128, 512])
        );
        let Task::Profile(p) = parse(&[
            "profile", "--preset", "small", "--mode", "forward", "--top", "20",
        ]) else {
            panic!()
        };
        assert_eq!(
            (p.preset.as_str(), p.mode.as_str(), p.top),
            ("small", "forward", 20)
        );
        let Task::Conformance(c) = parse(&[
            "conformance",
            "--device",
            "wgpu:cpu",
            "--require-adapter",
            "llvmpipe",
        ]) else {
            panic!()
        };
        assert_eq!(c.args, ["--require-adapter", "llvmpipe"]);
    }

    #[test]
    fn mistakes_are_refused() {
        let bad = |line: &[&str]| {
            Cli::try_parse_from(std::iter::once("xtask").chain(line.iter().copied())).is_err()
        };
        assert!(bad(&["frobnicate"]));
        assert!(
            bad(&["bench", "--threshold", "0.2"]),
            "--threshold needs --against"
        );
        assert!(bad(&["profile", "--mode", "sideways"]));
        assert!(bad(&["bench", "throughput", "--device", "tpu"]));
    }
}
