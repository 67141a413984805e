//! The programs the experiment drives: the `electra` binary (data build, pretrain, export,
//! plot, finetune) and the `flops` binary of electra-benches (the FLOP count behind the
//! benchmarks' MFU). Both are built in release mode by default; `--bin-dir` points at binaries
//! built elsewhere (the integration test uses debug builds). Every record names the build that
//! made it ([`Tools::build`]), since pre-training is reproducible only with the same build.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, bail};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// Paths of the two binaries.
#[derive(Clone, Debug)]
pub struct Tools {
    /// The `electra` CLI.
    pub electra: PathBuf,
    /// electra-benches' `flops`.
    pub flops: PathBuf,
    /// The build of `electra`: `{"electra_sha256", "source"}` (the SHA-256 of the binary, and
    /// the commit of the working tree it was started from, see [`source`]).
    pub build: Value,
}

impl Tools {
    /// Builds both binaries in release mode (one cargo invocation) and returns their paths.
    pub fn build(root: &Path) -> anyhow::Result<Self> {
        eprintln!("building the release `electra` and `flops` binaries ...");
        crate::run(
            Command::new(crate::cargo())
                .args(["build", "--release", "--quiet"])
                .args(["-p", "electra-cli", "--bin", "electra"])
                .args(["-p", "electra-benches", "--bin", "flops"])
                .current_dir(root),
        )?;
        let target = std::env::var_os("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| root.join("target"));
        Self::in_dir(&target.join("release"))
    }

    /// The binaries in `dir` (an error names a missing one).
    pub fn in_dir(dir: &Path) -> anyhow::Result<Self> {
        let electra = dir.join(format!("electra{}", std::env::consts::EXE_SUFFIX));
        let flops = dir.join(format!("flops{}", std::env::consts::EXE_SUFFIX));
        for bin in [&electra, &flops] {
            if !bin.is_file() {
                bail!(
                    "{} not found (build it with `cargo build -p electra-cli --bin electra -p \
                     electra-benches --bin flops`, or leave out --bin-dir)",
                    bin.display()
                );
            }
        }
        let bytes = std::fs::read(&electra)
            .with_context(|| format!("cannot read {}", electra.display()))?;
        let sha = electra_fs::hex(&Sha256::digest(&bytes));
        Ok(Self {
            electra,
            flops,
            build: json!({"electra_sha256": sha, "source": source()}),
        })
    }

    /// Runs `electra ARGS`, its output shown; fails with the command line. Returns seconds.
    pub fn electra(&self, args: &[String]) -> anyhow::Result<f64> {
        let started = Instant::now();
        let mut command = Command::new(&self.electra);
        command.args(args);
        eprintln!("$ electra {}", args.join(" "));
        crate::run(&mut command)?;
        Ok(started.elapsed().as_secs_f64())
    }

    /// The JSON report of `flops ARGS`.
    pub fn flops(&self, args: &[String]) -> anyhow::Result<Value> {
        let output = Command::new(&self.flops)
            .args(args)
            .output()
            .with_context(|| format!("cannot start {}", self.flops.display()))?;
        if !output.status.success() {
            bail!(
                "flops {} failed: {}",
                args.join(" "),
                String::from_utf8_lossy(&output.stderr)
            );
        }
        serde_json::from_slice(&output.stdout)
            .with_context(|| format!("flops {} printed no JSON", args.join(" ")))
    }
}

/// The commit the binaries were built from, as `git` in the working directory sees it, with
/// `+uncommitted` when the sources they are built from (crates/, benches/, Cargo.toml,
/// Cargo.lock) have changes (the experiment's own results.json does not count); null outside a
/// repository.
fn source() -> Option<String> {
    let git = |args: &[&str]| {
        Command::new("git")
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    let commit = git(&["rev-parse", "--short=12", "HEAD"])?;
    let changes = git(&[
        "status",
        "--porcelain",
        "--",
        "crates",
        "benches",
        "Cargo.toml",
        "Cargo.lock",
    ])?;
    Some(if changes.is_empty() {
        commit
    } else {
        format!("{commit}+uncommitted")
    })
}

/// `path` as a command-line argument.
pub fn arg(path: &Path) -> String {
    path.display().to_string()
}
