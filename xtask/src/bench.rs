//! `cargo xtask bench [SUITE] [ARGS...]`: the criterion suites and the end-to-end throughput run.
//!
//! - no suite: every criterion suite (short settings), then `throughput` with its defaults;
//! - `encoder`, `kernels`, `data`, `train`: that criterion suite; ARGS go to criterion (replacing the short
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

use crate::throughput::{self, DEFAULTS, Defaults, Options, ThroughputArgs, num};
use crate::{cargo, run};

/// The criterion suites (files in benches/benches).
pub const SUITES: [&str; 4] = ["encoder", "kernels", "train", "data"];

/// Criterion settings of a default (quick) run.
const QUICK: [&str; 4] = ["--warm-up-time", "1", "--measurement-time", "3"];

/// `cargo xtask bench`: every criterion suite (quick settings) then `bench throughput`; one
/// suite; the throughput table; or, with `--against REV`, this checkout against REV.
#[derive(Debug, clap::Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct BenchArgs {
    /// Compare this checkout against revision REV (built in a worktree), step and inference
    /// alternated; fails past --threshold slower.
    #[arg(long, value_name = "REV")]
    pub against: Option<String>,
    /// With --against: the largest slowdown accepted (0.10 = 10 % slower).
    #[arg(long, default_value_t = 0.10, requires = "against")]
    pub threshold: f64,
    /// Options of the throughput run (after the suites, or of --against).
    #[command(flatten)]
    pub options: ThroughputArgs,
    /// One suite instead of all.
    #[command(subcommand)]
    pub suite: Option<Suite>,
}

/// `cargo xtask bench SUITE`.
#[derive(Debug, clap::Subcommand)]
pub enum Suite {
    /// Criterion suite `encoder` (inference); ARGS go to criterion.
    Encoder(CriterionArgs),
    /// Criterion suite `kernels` (the CPU kernels at the `small` step's shapes).
    Kernels(CriterionArgs),
    /// Criterion suite `train` (forward + backward, the ELECTRA step, masking).
    Train(CriterionArgs),
    /// Criterion suite `data` (tokenization, shard building, the loader).
    Data(CriterionArgs),
    /// The real pre-training step and inference per preset: tokens/s, sequences/s,
    /// FLOPs/sequence, MFU, peak RSS.
    Throughput(ThroughputArgs),
}

/// Arguments passed to criterion (default `--warm-up-time 1 --measurement-time 3`).
#[derive(Debug, clap::Args)]
pub struct CriterionArgs {
    /// Criterion's own arguments.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub args: Vec<String>,
}

/// Defaults of `bench --against`: three rounds.
const AGAINST: Defaults = Defaults {
    rounds: 3,
    ..DEFAULTS
};

/// Runs the `bench` task.
pub fn bench(root: &Path, args: &BenchArgs) -> anyhow::Result<()> {
    if let Some(rev) = &args.against {
        return crate::against::against(root, rev, args.threshold, &args.options.options(AGAINST)?);
    }
    match &args.suite {
        None => {
            let options = args.options.options(DEFAULTS)?;
            for suite in SUITES {
                criterion(root, suite, &[])?;
            }
            throughput_table(root, &options)
        }
        Some(Suite::Throughput(options)) => throughput_table(root, &options.options(DEFAULTS)?),
        Some(Suite::Encoder(c)) => criterion(root, "encoder", &c.args),
        Some(Suite::Kernels(c)) => criterion(root, "kernels", &c.args),
        Some(Suite::Train(c)) => criterion(root, "train", &c.args),
        Some(Suite::Data(c)) => criterion(root, "data", &c.args),
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
        rows.first()
            .map_or_else(throughput::machine, throughput::cpu_text),
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
        let class = throughput::cpu_class(rows.first());
        let section = format!("throughput-{class}-threads-{}", options.threads);
        throughput::write_section(&root.join("docs/benchmarks.md"), &section, &table)?;
    }
    Ok(())
}
