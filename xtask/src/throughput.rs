//! Running the `throughput` binary (electra-benches) and reading its JSON reports: what
//! `bench throughput` and `compare-pytorch` share.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};
use electra_backend::DeviceSpec;
use serde_json::Value;

use crate::{cargo, run};

/// Shapes and repetitions of an end-to-end measurement, as resolved from [`ThroughputArgs`].
#[derive(Clone, Debug)]
pub struct Options {
    /// Presets to measure, in order.
    pub presets: Vec<String>,
    /// Sequences per step; `None`: [`default_batch`] of the preset.
    pub batch: Option<usize>,
    /// Tokens per sequence.
    pub seq: usize,
    /// Untimed steps per process.
    pub warmup: usize,
    /// Timed steps per process.
    pub steps: usize,
    /// Threads of both sides (rayon for us, torch's intra-op pool for PyTorch).
    pub threads: usize,
    /// Peak TFLOP/s for the utilisation figure (`None`: the binary's default).
    pub peak_tflops: Option<f64>,
    /// Alternating rounds (compare-pytorch, bench --against).
    pub rounds: usize,
    /// Rewrite the generated section of docs/benchmarks.md.
    pub write_docs: bool,
    /// Backend and device of our side.
    pub device: DeviceSpec,
}

/// The options every throughput-running task shares (`bench throughput`, `bench --against`,
/// `compare-pytorch`, `profile`). Where a default differs between tasks ([`Defaults`]) the
/// field is optional.
#[derive(Clone, Debug, clap::Args)]
pub struct ThroughputArgs {
    /// Presets to measure, in order, comma-separated [default: tiny,small].
    #[arg(long, value_delimiter = ',')]
    pub presets: Vec<String>,
    /// Sequences per step [default: 16 for tiny, 8 for the others].
    #[arg(long)]
    pub batch: Option<usize>,
    /// Tokens per sequence.
    #[arg(long, default_value_t = 128)]
    pub seq: usize,
    /// Untimed steps per process.
    #[arg(long, default_value_t = 1)]
    pub warmup: usize,
    /// Timed steps per process [default: 3; profile 6].
    #[arg(long)]
    pub steps: Option<usize>,
    /// Threads of both sides [default: 2; profile 1].
    #[arg(long)]
    pub threads: Option<usize>,
    /// Peak TFLOP/s for the MFU figure (required on a GPU).
    #[arg(long)]
    pub peak_tflops: Option<f64>,
    /// Alternating rounds [default: 2; bench --against 3].
    #[arg(long)]
    pub rounds: Option<usize>,
    /// Rewrite the table for this thread count in docs/benchmarks.md.
    #[arg(long)]
    pub write_docs: bool,
    /// Device of the `throughput` binary (flex, ndarray, wgpu, wgpu:N, wgpu:cpu, cuda, cuda:N);
    /// a device other than flex builds it with that backend's cargo feature.
    #[arg(long, default_value = "flex")]
    pub device: DeviceSpec,
}

/// The defaults that differ between tasks.
#[derive(Clone, Copy, Debug)]
pub struct Defaults {
    /// Timed steps per process.
    pub steps: usize,
    /// Threads.
    pub threads: usize,
    /// Alternating rounds.
    pub rounds: usize,
}

/// `bench throughput` and `compare-pytorch`.
pub const DEFAULTS: Defaults = Defaults {
    steps: 3,
    threads: 2,
    rounds: 2,
};

impl ThroughputArgs {
    /// The options, with `defaults` for what was not given.
    pub fn options(&self, defaults: Defaults) -> anyhow::Result<Options> {
        let presets = if self.presets.is_empty() {
            vec!["tiny".into(), "small".into()]
        } else {
            self.presets.clone()
        };
        let o = Options {
            presets,
            batch: self.batch,
            seq: self.seq,
            warmup: self.warmup,
            steps: self.steps.unwrap_or(defaults.steps),
            threads: self.threads.unwrap_or(defaults.threads),
            peak_tflops: self.peak_tflops,
            rounds: self.rounds.unwrap_or(defaults.rounds),
            write_docs: self.write_docs,
            device: self.device,
        };
        if o.steps == 0 || o.threads == 0 || o.rounds == 0 || o.batch == Some(0) {
            bail!("--steps, --threads, --rounds and --batch must be >= 1");
        }
        Ok(o)
    }
}

impl Options {
    /// Sequences per step for `preset`.
    pub fn batch_for(&self, preset: &str) -> usize {
        self.batch.unwrap_or_else(|| default_batch(preset))
    }

    /// The cargo feature of electra-benches that the device needs (`None` for flex, which is
    /// always built in).
    pub fn feature(&self) -> Option<&'static str> {
        (self.device != DeviceSpec::Flex).then(|| self.device.feature())
    }
}

/// Default sequences per step: 16 for `tiny`, 8 for the others (a `small` step at batch 128
/// takes over a minute on two cores; batch 8 keeps a run to minutes).
pub fn default_batch(preset: &str) -> usize {
    if preset == "tiny" { 16 } else { 8 }
}

/// Builds the `throughput` binary (release, with the backend `options.device` needs) and
/// returns its path.
pub fn build(root: &Path, options: &Options) -> anyhow::Result<PathBuf> {
    let mut command = Command::new(cargo());
    command
        .args(["build", "--release", "--quiet", "-p", "electra-benches"])
        .args(["--bin", "throughput"])
        .current_dir(root);
    if let Some(feature) = options.feature() {
        command.args(["--features", feature]);
    }
    run(&mut command)?;
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"));
    Ok(target.join("release/throughput"))
}

/// Runs a command and parses the last line of its stdout as JSON.
pub fn run_json(command: &mut Command) -> anyhow::Result<Value> {
    let shown = format!("{command:?}");
    let output = command
        .output()
        .with_context(|| format!("cannot start {shown}"))?;
    if !output.status.success() {
        bail!(
            "{shown} failed with {}:\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    let line = stdout
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .with_context(|| format!("{shown} printed nothing"))?;
    serde_json::from_str(line).with_context(|| format!("{shown} printed no JSON: {line}"))
}

/// One electra-rs measurement: `mode` is `step` or `forward`.
pub fn ours(binary: &Path, options: &Options, preset: &str, mode: &str) -> anyhow::Result<Value> {
    let mut command = Command::new(binary);
    command
        .env("RAYON_NUM_THREADS", options.threads.to_string())
        .args([
            "--preset",
            preset,
            "--mode",
            mode,
            "--device",
            &options.device.to_string(),
        ])
        .args(["--batch", &options.batch_for(preset).to_string()])
        .args(["--seq", &options.seq.to_string()])
        .args(["--warmup", &options.warmup.to_string()])
        .args(["--steps", &options.steps.to_string()]);
    if let Some(peak) = options.peak_tflops {
        command.args(["--peak-tflops", &peak.to_string()]);
    }
    run_json(&mut command)
}

/// A number field of a report (0 when absent).
pub fn num(report: &Value, key: &str) -> f64 {
    report.get(key).and_then(Value::as_f64).unwrap_or(0.0)
}

/// The timed step durations of a report.
pub fn seconds(report: &Value) -> Vec<f64> {
    report
        .get("step_seconds")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_f64).collect())
        .unwrap_or_default()
}

/// The median (mean of the middle two for an even count); 0 for none. One median for all of
/// xtask: the experiment's.
pub fn median(values: &[f64]) -> f64 {
    crate::experiment::stats::median(values).unwrap_or(0.0)
}

/// The CPU model and load average, for the record (contention changes every number).
pub fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    format!("{cpu}, {cores} cores; {}", load())
}

/// `avx512`, `avx2` or `baseline`: the vector instructions our matrix products ran with, read
/// from a `throughput` report (`cpu.vector_isa`); the docs keep one section per class.
pub fn cpu_class(report: Option<&Value>) -> &'static str {
    let isa = report
        .and_then(|r| r.pointer("/cpu/vector_isa"))
        .and_then(Value::as_str)
        .unwrap_or("");
    match isa {
        "avx512f" => "avx512",
        "avx2" => "avx2",
        _ => "baseline",
    }
}

/// The CPU of a `throughput` report (`electra_benches::cpu::CpuInfo`) in words: model,
/// family/model, vector extensions, and what our matrix products and kernels ran with.
pub fn cpu_text(report: &Value) -> String {
    let s = |key: &str| report.pointer(key).and_then(Value::as_str).unwrap_or("?");
    let flags: Vec<&str> = report
        .pointer("/cpu/flags")
        .and_then(Value::as_array)
        .map(|f| f.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    format!(
        "{} (family/model {}; {}); electra-rs: gemm {} kernels, our kernels {}",
        s("/cpu/model"),
        s("/cpu/family_model"),
        flags.join(" "),
        s("/cpu/vector_isa"),
        s("/cpu/kernel_isa")
    )
}

/// The 1-minute load average as text.
pub fn load() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().map(str::to_string))
        .map_or_else(|| "load unknown".into(), |l| format!("load average {l}"))
}

/// A warning when the 1-minute load average is above half a task per core: other processes
/// then compete for the cores and every number is contended.
pub fn contention_warning() -> Option<String> {
    let load: f64 = std::fs::read_to_string("/proc/loadavg")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()?;
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
    contention_text(load, cores)
}

fn contention_text(load: f64, cores: f64) -> Option<String> {
    (load > 0.5 * cores).then(|| {
        format!(
            "**Contended:** the load average was {load:.2} on {cores} cores before this run; \
             other processes competed for the cores, so these numbers understate both sides \
             (unevenly). Rerun on a quiet machine before quoting them.\n"
        )
    })
}

/// The UTC date and time (`date -u`), or "unknown date".
pub fn now() -> String {
    Command::new("date")
        .args(["-u", "+%Y-%m-%d %H:%M UTC"])
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|| "unknown date".into())
}

/// Replaces the text between `<!-- xtask:NAME:begin -->` and `<!-- xtask:NAME:end -->` in
/// `path` with `content`.
pub fn write_section(path: &Path, name: &str, content: &str) -> anyhow::Result<()> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let begin = format!("<!-- xtask:{name}:begin -->");
    let end = format!("<!-- xtask:{name}:end -->");
    let (Some(b), Some(e)) = (text.find(&begin), text.find(&end)) else {
        bail!("{} has no `{begin}` ... `{end}` section", path.display());
    };
    if e < b {
        bail!("{}: `{end}` comes before `{begin}`", path.display());
    }
    let updated = format!(
        "{}{begin}\n{}\n{}",
        &text[..b],
        content.trim_end(),
        &text[e..]
    );
    std::fs::write(path, updated).with_context(|| format!("cannot write {}", path.display()))?;
    println!("updated {} ({name})", path.display());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(args: &[&str]) -> anyhow::Result<Options> {
        #[derive(clap::Parser)]
        struct Cli {
            #[command(flatten)]
            args: ThroughputArgs,
        }
        let cli = <Cli as clap::Parser>::try_parse_from(
            std::iter::once("x").chain(args.iter().copied()),
        )?;
        cli.args.options(DEFAULTS)
    }

    #[test]
    fn options_parse_and_reject() {
        let o = options(&["--presets", "small", "--batch", "4", "--write-docs"]).unwrap();
        assert_eq!(o.presets, ["small"]);
        assert_eq!(o.batch_for("small"), 4);
        assert!(o.write_docs);
        let o = options(&[]).unwrap();
        assert_eq!(o.presets, ["tiny", "small"]);
        assert_eq!(
            (o.batch_for("tiny"), o.steps, o.threads, o.rounds),
            (16, 3, 2, 2)
        );
        let bad = options(&["--seq", "x"]).unwrap_err();
        assert!(bad.to_string().contains("--seq"), "{bad}");
        assert!(options(&["--frobnicate", "1"]).is_err());
        assert!(options(&["--steps", "0"]).is_err());
        assert_eq!(options(&[]).unwrap().feature(), None);
        let cuda = options(&["--device", "cuda:1"]).unwrap();
        assert_eq!(cuda.feature(), Some("cuda"));
        assert_eq!(cuda.device, DeviceSpec::Cuda(1));
        assert!(options(&["--device", "tpu"]).is_err());
    }

    #[test]
    fn sections_are_replaced_between_markers() {
        let dir = std::env::temp_dir().join(format!("xtask-section-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("doc.md");
        std::fs::write(
            &path,
            "a\n<!-- xtask:t:begin -->\nold\n<!-- xtask:t:end -->\nz\n",
        )
        .unwrap();
        write_section(&path, "t", "new\n").unwrap();
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "a\n<!-- xtask:t:begin -->\nnew\n<!-- xtask:t:end -->\nz\n"
        );
        assert!(write_section(&path, "missing", "x").is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn contention_is_flagged_above_half_a_task_per_core() {
        assert!(contention_text(0.4, 2.0).is_none());
        let text = contention_text(4.5, 2.0).expect("contended");
        assert!(text.contains("4.50 on 2 cores"), "{text}");
    }

    #[test]
    fn median_handles_even_counts() {
        assert_eq!(median(&[1.0, 5.0, 2.0, 4.0]), 3.0);
        assert_eq!(median(&[7.0]), 7.0);
    }
}
