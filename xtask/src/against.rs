//! `cargo xtask bench --against REV [OPTIONS]`: this checkout against another revision, on the
//! step and inference benchmarks, in one run with the two binaries alternated.
//!
//! REV (a commit, tag or branch) is checked out into a git worktree under
//! `target/bench-against/tree` and built there with its own target directory
//! (`target/bench-against/target`, kept between runs, so only the first build is cold). Then,
//! for every round, preset and mode: this checkout's `throughput` binary, REV's, in turn
//! (A B A B ...). The table gives the median tokens/s of each side and the ratio; the task
//! fails when a ratio falls below `1 − threshold` (`--threshold`, default 0.10), so a team's
//! dedicated benchmark runner can gate merges on it. It takes the options of
//! `bench throughput` plus `--rounds` (default 3) and `--threshold`. Run it on a quiet
//! machine: the load average is printed and a contended run says so.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};

use crate::throughput::{self, Options, median, num};
use crate::{cargo, run};

/// Runs the comparison.
pub fn against(root: &Path, rev: &str, threshold: f64, options: &Options) -> anyhow::Result<()> {
    let ours = throughput::build(root, options)?;
    let theirs = build_revision(root, rev, options)?;
    let load = throughput::load();
    let warning = throughput::contention_warning();
    let mut table = String::new();
    if let Some(w) = &warning {
        let _ = writeln!(table, "{w}");
    }
    let _ = writeln!(
        table,
        "This checkout against `{rev}`: {} on {} (load at the start: {load}); {} thread(s), \
         {} rounds alternated, {} warm-up + {} timed steps per process.\n",
        throughput::now(),
        throughput::machine(),
        options.threads,
        options.rounds,
        options.warmup,
        options.steps
    );
    table
        .push_str("| preset | mode | this tok/s | REV tok/s | ratio |\n|---|---|---:|---:|---:|\n");
    let mut regressions = Vec::new();
    for preset in &options.presets {
        for mode in ["step", "forward"] {
            let (mut a, mut b) = (Vec::new(), Vec::new());
            for round in 0..options.rounds {
                eprintln!(
                    "round {}/{}: {preset} {mode} ...",
                    round + 1,
                    options.rounds
                );
                a.push(num(
                    &throughput::ours(&ours, options, preset, mode)?,
                    "tokens_per_second",
                ));
                b.push(num(
                    &throughput::ours(&theirs, options, preset, mode)?,
                    "tokens_per_second",
                ));
            }
            let (a, b) = (median(&a), median(&b));
            let ratio = a / b;
            let _ = writeln!(
                table,
                "| {preset} | {mode} | {a:.0} | {b:.0} | {ratio:.2} |"
            );
            if ratio < 1.0 - threshold {
                regressions.push(format!("{preset} {mode}: {ratio:.2}x of `{rev}`"));
            }
        }
    }
    println!("{table}");
    if !regressions.is_empty() {
        bail!(
            "slower than `{rev}` beyond the threshold ({threshold}): {}",
            regressions.join("; ")
        );
    }
    Ok(())
}

/// Checks `rev` out into the comparison worktree and builds its `throughput` binary.
fn build_revision(root: &Path, rev: &str, options: &Options) -> anyhow::Result<PathBuf> {
    let base = root.join("target/bench-against");
    let tree = base.join("tree");
    if !tree.join(".git").exists() {
        std::fs::create_dir_all(&base)
            .with_context(|| format!("cannot create {}", base.display()))?;
        run(Command::new("git")
            .args(["worktree", "add", "--detach"])
            .arg(&tree)
            .arg(rev)
            .current_dir(root))?;
    } else {
        run(Command::new("git")
            .args(["checkout", "--quiet", "--detach", rev])
            .current_dir(&tree))?;
    }
    let target = base.join("target");
    let mut command = Command::new(cargo());
    command
        .args([
            "build",
            "--release",
            "--quiet",
            "-p",
            "electra-benches",
            "--bin",
            "throughput",
        ])
        .env("CARGO_TARGET_DIR", &target)
        .current_dir(&tree);
    if let Some(feature) = options.feature() {
        command.args(["--features", feature]);
    }
    eprintln!(
        "building `{rev}` in {} (the first build is cold) ...",
        tree.display()
    );
    run(&mut command)?;
    Ok(target.join("release/throughput"))
}
