//! `cargo xtask bench [SUITE] [ARGS...]`: the criterion suites and the end-to-end throughput run.
//!
//! - no suite: every criterion suite (short settings), then `throughput` with its defaults;
//! - `encoder`, `data`, `train`: that criterion suite; ARGS go to criterion (replacing the short
//!   default `--warm-up-time 1 --measurement-time 3`);
//! - `--against REV [OPTIONS]`: this checkout against revision REV (`against.rs`);
//! - `throughput [OPTIONS]`: the real pre-training step and discriminator inference per preset,
//!   printed as a table (tokens/s, sequences/s, FLOPs per sequence, MFU with the assumed peak,
//!   peak RSS); `--write-docs` rewrites the table in docs/benchmarks.md. Options:
//!   `--presets tiny,small --batch N --seq 128 --warmup 1 --steps 3 --threads 2 --peak-tflops X
//!   --device flex|cuda[:N]|wgpu[:N]` (a GPU builds the binary with that cargo feature and
//!   needs `--peak-tflops`).

use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;

use anyhow::bail;

use crate::throughput::{self, Options, num};
use crate::{cargo, run};

/// The criterion suites (files in benches/benches).
pub const SUITES: [&str; 3] = ["encoder", "train", "data"];

/// Criterion settings of a default (quick) run.
const QUICK: [&str; 4] = ["--warm-up-time", "1", "--measurement-time", "3"];

/// Runs the `bench` task.
pub fn bench(root: &Path, args: &[String]) -> anyhow::Result<()> {
    match args.first().map(String::as_str) {
        None => {
            for suite in SUITES {
                criterion(root, suite, &[])?;
            }
            throughput_table(root, &Options::parse(&[])?)
        }
        Some("throughput") => throughput_table(root, &Options::parse(&args[1..])?),
        Some("--against") => crate::against::against(root, args),
        Some(suite) if SUITES.contains(&suite) => criterion(root, suite, &args[1..]),
        Some(other) => bail!(
            "unknown benchmark suite `{other}` (known: {}, throughput)",
            SUITES.join(", ")
        ),
    }
}

fn criterion(root: &Path, suite: &str, args: &[String]) -> anyhow::Result<()> {
    let mut command = Command::new(cargo());
    command
        .args(["bench", "-p", "electra-benches", "--bench", suite, "--"])
        .current_dir(root);
    if args.is_empty() {
        command.args(QUICK);
    } else {
        command.args(args);
    }
    run(&mut command)
}

fn throughput_table(root: &Path, options: &Options) -> anyhow::Result<()> {
    let binary = throughput::build(root, options)?;
    let started_load = throughput::load();
    let warning = throughput::contention_warning();
    let mut rows = Vec::new();
    for preset in &options.presets {
        for mode in ["step", "forward"] {
            eprintln!("measuring {preset} {mode} ...");
            rows.push(throughput::ours(&binary, options, preset, mode)?);
        }
    }
    let mut table = String::new();
    if let Some(warning) = &warning {
        let _ = writeln!(table, "{warning}");
    }
    let peak = rows.first().map_or(0.0, |r| num(r, "peak_tflops"));
    let _ = writeln!(
        table,
        "Measured {} on {} (at the start: {started_load}); device {}, {} thread(s); {} warm-up + \
         {} timed steps per row; MFU against an assumed peak of {peak:.4} TFLOP/s.\n",
        throughput::now(),
        throughput::machine(),
        options.device,
        options.threads,
        options.warmup,
        options.steps,
    );
    table.push_str(
        "| preset | batch × seq | mode | tokens/s | sequences/s | median step (s) | \
         GFLOPs/sequence | achieved TFLOP/s | MFU | peak RSS (MiB) |\n\
         |---|---|---|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    for r in &rows {
        let shape = &r["shape"];
        let mode = match r["mode"].as_str() {
            Some("step") => "training step",
            _ => "inference",
        };
        let _ = writeln!(
            table,
            "| {} | {} × {} | {mode} | {:.0} | {:.2} | {:.3} | {:.3} | {:.4} | {:.2} % | {:.0} |",
            shape["preset"].as_str().unwrap_or("?"),
            shape["batch"],
            shape["seq"],
            num(r, "tokens_per_second"),
            num(r, "sequences_per_second"),
            num(r, "median_seconds"),
            num(r, "flops_per_sequence") / 1e9,
            num(r, "achieved_tflops"),
            100.0 * num(r, "mfu"),
            num(r, "peak_rss_mib"),
        );
    }
    println!("{table}");
    if options.write_docs {
        let section = format!("throughput-threads-{}", options.threads);
        throughput::write_section(&root.join("docs/benchmarks.md"), &section, &table)?;
    }
    Ok(())
}
