//! # xtask: project automation
//!
//! `cargo xtask <task>` (an alias in `.cargo/config.toml`). Tasks run cargo and scripts; no
//! model code lives here.
//!
//! - `ci`: exactly what CI runs (`.ci/run`): format check, clippy, the test suite, compile
//!   checks of the `wgpu` and `cuda` backends, and the flex and wgpu (lavapipe) conformance.
//! - `bench [ARGS...]`: the criterion benchmarks (`cargo bench -p electra-benches`);
//!   `bench data` runs only the data pipeline suite (`--bench data`).
//! - `conformance --device D [--release] [ARGS...]`: backend conformance of D against flex and
//!   the PyTorch fixtures (see `conformance.rs`).
//! - `fixtures`: regenerates the Hugging Face parity fixtures with PyTorch (creates
//!   `.venv-fixtures` from `scripts/requirements-fixtures.txt` on first use).

mod conformance;

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};

const USAGE: &str = "usage: cargo xtask <task>

tasks:
  ci                 run what CI runs (.ci/run): fmt, clippy, tests, backend checks, conformance
  bench [ARGS...]    run the criterion benchmarks (extra ARGS go to criterion)
  bench data [ARGS]  only the data pipeline suite: text MB/s into shards vs raw tokenization
  conformance --device D [--release] [ARGS...]
                     device D against flex and the PyTorch fixtures (table; fails on a mismatch)
  fixtures           regenerate the HF parity fixtures (needs Python 3.11 + pip)
  help               this text";

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let root = workspace_root();
    match args.first().map(String::as_str) {
        Some("ci") => run(Command::new("bash").arg(".ci/run").current_dir(&root)),
        // `bench data [ARGS...]`: only the data pipeline suite.
        Some("bench") if args.get(1).map(String::as_str) == Some("data") => {
            run(Command::new(cargo())
                .args(["bench", "-p", "electra-benches", "--bench", "data", "--"])
                .args(&args[2..])
                .current_dir(&root))
        }
        Some("bench") => run(Command::new(cargo())
            .args(["bench", "-p", "electra-benches", "--"])
            .args(&args[1..])
            .current_dir(&root)),
        Some("conformance") => conformance::run(&root, &args[1..]),
        Some("fixtures") => fixtures(&root),
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
