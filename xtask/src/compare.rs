//! `cargo xtask compare-pytorch [OPTIONS]`: electra-rs against PyTorch + HF transformers on the
//! same step, the same batch and the same number of threads, on the same machine in one run.
//!
//! Sets up `.venv-bench` once (Python 3 `venv` + `benches/reference/requirements.txt`; again
//! when that file changes), or uses the interpreter in `ELECTRA_BENCH_PYTHON`. For each round,
//! preset and sequence length it runs, one process each and in this order: our training step,
//! the reference step with the generator head at the masked slots, the plain HF step (HF
//! computes the head at every position), our inference, PyTorch's inference, our GLUE
//! fine-tuning step, PyTorch's (HF `ElectraForSequenceClassification`), and a SQuAD
//! fine-tuning step with HF's question-answering head on both sides (`ElectraForQuestionAnswering`,
//! at `--squad-seq` tokens, 384 by default); `--modes` picks some.
//!
//! **Ratios are paired by round.** The machines this runs on are shared: a host's speed moves by
//! up to 1.7× within minutes (docs/benchmarks.md), more than most effects measured. So the
//! ratio of a row is the median over rounds of (our median step time ÷ PyTorch's) within the
//! round, with its range; the tokens/s columns are medians over every timed step and only
//! describe the run. Each table names the CPU, the vector instructions in use on both sides and
//! the load before the run, and goes into the docs section of its CPU class
//! (`compare-avx2-threads-2`, `compare-avx512-threads-1`, ...): no number of one class is
//! written over another's.
//!
//! `--seqs 128,256,512` makes the scaling table instead: one row per preset, sequence length
//! and mode, ours and PyTorch's tokens/s and peak memory side by side
//! (`scaling-<class>-threads-N`). Options as `bench throughput`, plus `--rounds N` (default 2)
//! and `--write-docs`.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::Context;
use electra_backend::DeviceSpec;
use serde_json::Value;

use crate::run;
use crate::throughput::{self, DEFAULTS, Options, ThroughputArgs, median, num, run_json, seconds};

const REQUIREMENTS: &str = "benches/reference/requirements.txt";
const SCRIPT: &str = "benches/reference/electra_step.py";
const VENV: &str = ".venv-bench";
/// Written into the venv after a successful install: the requirements it was made from.
const STAMP: &str = "electra-requirements.txt";

/// Options of `compare-pytorch`.
#[derive(Clone, Debug, clap::Args)]
pub struct CompareArgs {
    /// Shapes, threads, rounds and the rest, as `bench throughput`.
    #[command(flatten)]
    pub throughput: ThroughputArgs,
    /// Modes to measure, comma-separated: step, forward, finetune, squad [default: all].
    #[arg(long, value_delimiter = ',')]
    pub modes: Vec<String>,
    /// Sequence lengths of a scaling table (e.g. 128,256,512); replaces `--seq`.
    #[arg(long, value_delimiter = ',')]
    pub seqs: Vec<usize>,
    /// Tokens per sequence of the SQuAD row (`--modes squad`) of the standard table: SQuAD's
    /// windows are longer than GLUE's sentences (HF's examples use 384, the reference 512).
    #[arg(long, default_value_t = 384)]
    pub squad_seq: usize,
}

/// The modes, in table order, with their labels.
const MODES: [(&str, &str); 4] = [
    ("step", "training step"),
    ("forward", "inference"),
    ("finetune", "GLUE fine-tuning step"),
    ("squad", "SQuAD fine-tuning step"),
];

/// Every report of one table row: ours, PyTorch's and (training step only) plain HF's, one
/// report per round.
#[derive(Debug, Default)]
struct Row {
    preset: String,
    seq: usize,
    batch: usize,
    mode: &'static str,
    ours: Vec<Value>,
    torch: Vec<Value>,
    hf: Vec<Value>,
}

/// Runs the `compare-pytorch` task.
pub fn compare(root: &Path, args: &CompareArgs) -> anyhow::Result<()> {
    let options = args.throughput.options(DEFAULTS)?;
    if options.device != DeviceSpec::Flex {
        anyhow::bail!(
            "compare-pytorch runs on the CPU only (the reference script does not move to a GPU); \
             use `cargo xtask bench throughput --device {}` for GPU numbers",
            options.device
        );
    }
    let modes = modes(&args.modes)?;
    let scaling = !args.seqs.is_empty();
    let seqs = if scaling {
        args.seqs.clone()
    } else {
        vec![options.seq]
    };
    let python = python(root)?;
    let binary = throughput::build(root, &options)?;
    let started_load = throughput::load();
    let warning = throughput::contention_warning();
    let describe_dir = root.join("target/compare-pytorch");
    std::fs::create_dir_all(&describe_dir)
        .with_context(|| format!("cannot create {}", describe_dir.display()))?;

    // (preset, seq) groups of rows; a SQuAD row of the standard table has its own length.
    let mut groups: Vec<(String, usize, Vec<&'static str>)> = Vec::new();
    for preset in &options.presets {
        for &seq in &seqs {
            for (mode, _) in &modes {
                let seq = if *mode == "squad" && !scaling {
                    args.squad_seq
                } else {
                    seq
                };
                match groups.iter_mut().find(|(p, s, _)| p == preset && *s == seq) {
                    Some((_, _, group)) => group.push(mode),
                    None => groups.push((preset.clone(), seq, vec![mode])),
                }
            }
        }
    }
    let mut rows = Vec::new();
    for (preset, seq, group) in &groups {
        let (preset, seq) = (preset.as_str(), *seq);
        let options = Options {
            seq,
            ..options.clone()
        };
        let description = describe(&binary, &describe_dir, preset, seq)?;
        let first = rows.len();
        for mode in group {
            rows.push(Row {
                preset: preset.to_string(),
                seq,
                batch: options.batch_for(preset),
                mode,
                ..Row::default()
            });
        }
        for round in 0..options.rounds {
            for row in &mut rows[first..] {
                let say = |who: &str| {
                    eprintln!(
                        "round {}/{}: {preset} seq {seq} {} {who} ...",
                        round + 1,
                        options.rounds,
                        row.mode
                    )
                };
                say("electra-rs");
                row.ours
                    .push(throughput::ours(&binary, &options, preset, row.mode)?);
                say("PyTorch");
                let reference = |head| {
                    reference(
                        &python,
                        root,
                        &description,
                        &options,
                        preset,
                        row.mode,
                        head,
                    )
                };
                row.torch.push(reference("masked")?);
                if row.mode == "step" && !scaling {
                    say("plain HF");
                    row.hf.push(reference("full")?);
                }
            }
        }
    }
    // Table order: presets as given, then modes as `MODES` lists them.
    rows.sort_by_key(|r| {
        let preset = options.presets.iter().position(|p| *p == r.preset);
        let mode = MODES.iter().position(|(m, _)| *m == r.mode);
        (preset, r.seq * usize::from(scaling), mode)
    });

    let header = header(&rows, &options, &started_load, warning.as_deref());
    let table = if scaling {
        scaling_table(&rows)
    } else {
        comparison_table(&rows)
    };
    let text = format!("{header}{table}");
    println!("{text}");
    save_reports(&describe_dir, &rows, &options, scaling)?;
    if options.write_docs {
        let kind = if scaling { "scaling" } else { "compare" };
        let section = format!("{kind}-{}-threads-{}", cpu_class(&rows), options.threads);
        throughput::write_section(&root.join("docs/benchmarks.md"), &section, &text)?;
    }
    Ok(())
}

/// The modes asked for, in table order.
fn modes(asked: &[String]) -> anyhow::Result<Vec<(&'static str, &'static str)>> {
    if let Some(bad) = asked.iter().find(|m| !MODES.iter().any(|(k, _)| k == m)) {
        anyhow::bail!("unknown mode `{bad}` (known: step, forward, finetune, squad)");
    }
    Ok(MODES
        .iter()
        .filter(|(k, _)| asked.is_empty() || asked.iter().any(|m| m == k))
        .copied()
        .collect())
}

/// The CPU class of the run: that of our first report.
fn cpu_class(rows: &[Row]) -> &'static str {
    throughput::cpu_class(rows.first().and_then(|r| r.ours.first()))
}

fn header(rows: &[Row], options: &Options, started_load: &str, warning: Option<&str>) -> String {
    let first_ours = rows.first().and_then(|r| r.ours.first());
    let first_torch = rows.first().and_then(|r| r.torch.first());
    let cpu = first_ours.map_or_else(|| "an unknown CPU".into(), throughput::cpu_text);
    let torch = first_torch.map_or_else(String::new, |r| {
        format!(
            "torch {} (CPU capability {}), transformers {}",
            r.pointer("/versions/torch")
                .and_then(Value::as_str)
                .unwrap_or("?"),
            r.get("cpu_capability")
                .and_then(Value::as_str)
                .unwrap_or("?"),
            r.pointer("/versions/transformers")
                .and_then(Value::as_str)
                .unwrap_or("?"),
        )
    });
    let mut text = String::new();
    if let Some(warning) = warning {
        let _ = writeln!(text, "{warning}");
    }
    let _ = writeln!(
        text,
        "Measured {} on {cpu}, {} logical CPUs (at the start: {started_load}, at the end: {}); \
         {} thread(s) on both sides; {torch}; {} rounds of A/B processes, each {} warm-up + {} \
         timed steps.\n",
        throughput::now(),
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        throughput::load(),
        options.threads,
        options.rounds,
        options.warmup,
        options.steps,
    );
    text
}

/// tokens/s over every timed step of `reports`.
fn rate(reports: &[Value], tokens: f64) -> f64 {
    let all: Vec<f64> = reports.iter().flat_map(seconds).collect();
    tokens / median(&all)
}

/// The round-paired ratio `ours ÷ other` in tokens/s: the median over rounds of the ratio of
/// the two median step times within the round, and the smallest and largest of them.
fn paired_ratio(ours: &[Value], other: &[Value]) -> (f64, f64, f64) {
    let ratios: Vec<f64> = ours
        .iter()
        .zip(other)
        .map(|(a, b)| median(&seconds(b)) / median(&seconds(a)))
        .collect();
    let low = ratios.iter().copied().fold(f64::INFINITY, f64::min);
    let high = ratios.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    (median(&ratios), low, high)
}

fn ratio_cell(ours: &[Value], other: &[Value]) -> String {
    let (mid, low, high) = paired_ratio(ours, other);
    if ours.len() > 1 {
        format!("{mid:.2} ({low:.2}–{high:.2})")
    } else {
        format!("{mid:.2}")
    }
}

/// The largest peak resident memory of `reports`, MiB.
fn rss(reports: &[Value]) -> f64 {
    reports
        .iter()
        .map(|r| num(r, "peak_rss_mib"))
        .fold(0.0, f64::max)
}

fn label(mode: &str) -> &'static str {
    MODES
        .iter()
        .find(|(k, _)| *k == mode)
        .map_or("?", |(_, l)| l)
}

fn comparison_table(rows: &[Row]) -> String {
    let mut table = String::from(
        "| preset | batch × seq | mode | electra-rs tokens/s | PyTorch tokens/s | ratio (range \
         over rounds) | PyTorch plain-HF tokens/s | ratio | electra-rs MFU | electra-rs peak RSS \
         (MiB) | PyTorch peak RSS (MiB) |\n\
         |---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    for row in rows {
        let tokens = (row.batch * row.seq) as f64;
        let mfu = {
            let all: Vec<f64> = row.ours.iter().flat_map(seconds).collect();
            let flops = row
                .ours
                .first()
                .map_or(0.0, |r| num(r, "flops_per_sequence"));
            let peak = row.ours.first().map_or(1.0, |r| num(r, "peak_tflops"));
            flops * row.batch as f64 / median(&all) / 1e12 / peak
        };
        let (hf_cells, torch_rss) = if row.hf.is_empty() {
            ("– | –".to_string(), format!("{:.0}", rss(&row.torch)))
        } else {
            (
                format!(
                    "{:.0} | {}",
                    rate(&row.hf, tokens),
                    ratio_cell(&row.ours, &row.hf)
                ),
                format!("{:.0} (plain HF {:.0})", rss(&row.torch), rss(&row.hf)),
            )
        };
        let _ = writeln!(
            table,
            "| {} | {} × {} | {} | {:.0} | {:.0} | {} | {hf_cells} | {:.2} % | {:.0} | \
             {torch_rss} |",
            row.preset,
            row.batch,
            row.seq,
            label(row.mode),
            rate(&row.ours, tokens),
            rate(&row.torch, tokens),
            ratio_cell(&row.ours, &row.torch),
            100.0 * mfu,
            rss(&row.ours),
        );
    }
    table.push_str(
        "\nratio = electra-rs tokens/s ÷ PyTorch tokens/s (above 1: electra-rs is faster), paired \
         by round: the median over rounds of the ratio within each round, with its range. \
         \"PyTorch\" computes the generator's vocabulary head at the masked slots only, as \
         electra-rs and the Google reference do; \"plain HF\" calls `ElectraForMaskedLM` as is, \
         which computes it at every position. Peak RSS: the largest `VmHWM` / `ru_maxrss` of \
         the processes of that column. The fine-tuning step is a two-class `[CLS]` classifier on \
         the discriminator (HF `ElectraForSequenceClassification` on the PyTorch side) with the \
         summed loss and the same Adam; its tokens/s ÷ seq is examples/s. The SQuAD step is HF's \
         question-answering head (`ElectraForQuestionAnswering`) on both sides, start and end \
         losses, the same Adam.\n",
    );
    table
}

fn scaling_table(rows: &[Row]) -> String {
    let mut table = String::from(
        "| preset | batch × seq | mode | electra-rs tokens/s | PyTorch tokens/s | ratio (range) | \
         electra-rs peak RSS (MiB) | PyTorch peak RSS (MiB) |\n\
         |---|---|---|---:|---:|---:|---:|---:|\n",
    );
    for row in rows {
        let tokens = (row.batch * row.seq) as f64;
        let _ = writeln!(
            table,
            "| {} | {} × {} | {} | {:.0} | {:.0} | {} | {:.0} | {:.0} |",
            row.preset,
            row.batch,
            row.seq,
            label(row.mode),
            rate(&row.ours, tokens),
            rate(&row.torch, tokens),
            ratio_cell(&row.ours, &row.torch),
            rss(&row.ours),
            rss(&row.torch),
        );
    }
    table.push_str(
        "\nratio = electra-rs tokens/s ÷ PyTorch tokens/s, paired by round (median, range). \
         PyTorch's peak RSS includes the interpreter and torch's libraries (~300 MiB before any \
         tensor).\n",
    );
    table
}

/// Writes every report of the run to `dir/results-<kind>-threads-N.json`.
fn save_reports(dir: &Path, rows: &[Row], options: &Options, scaling: bool) -> anyhow::Result<()> {
    let kind = if scaling { "scaling" } else { "compare" };
    let path = dir.join(format!("results-{kind}-threads-{}.json", options.threads));
    let json: Vec<Value> = rows
        .iter()
        .map(|r| {
            serde_json::json!({
                "preset": r.preset, "seq": r.seq, "batch": r.batch, "mode": r.mode,
                "ratio": paired_ratio(&r.ours, &r.torch).0,
                "electra_rs": r.ours, "pytorch": r.torch, "pytorch_plain_hf": r.hf,
            })
        })
        .collect();
    let text = serde_json::to_string_pretty(&json)?;
    std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
    eprintln!("reports: {}", path.display());
    Ok(())
}

/// Writes the preset's `throughput --describe` JSON and returns its path.
fn describe(binary: &Path, dir: &Path, preset: &str, seq: usize) -> anyhow::Result<PathBuf> {
    let output = Command::new(binary)
        .args(["--describe", "--preset", preset, "--seq", &seq.to_string()])
        .output()
        .with_context(|| format!("cannot run {}", binary.display()))?;
    if !output.status.success() {
        anyhow::bail!(
            "{} --describe failed: {}",
            binary.display(),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let path = dir.join(format!("{preset}-{seq}.json"));
    std::fs::write(&path, &output.stdout)
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(path)
}

/// One run of the reference script.
fn reference(
    python: &Path,
    root: &Path,
    description: &Path,
    options: &Options,
    preset: &str,
    mode: &str,
    gen_head: &str,
) -> anyhow::Result<Value> {
    let threads = options.threads.to_string();
    run_json(
        Command::new(python)
            .arg(root.join(SCRIPT))
            // Both OpenMP and MKL read these; torch.set_num_threads pins the intra-op pool.
            .env("OMP_NUM_THREADS", &threads)
            .env("MKL_NUM_THREADS", &threads)
            .arg("--describe")
            .arg(description)
            .args(["--preset", preset, "--mode", mode, "--gen-head", gen_head])
            .args(["--threads", &threads])
            .args(["--batch", &options.batch_for(preset).to_string()])
            .args(["--seq", &options.seq.to_string()])
            .args(["--warmup", &options.warmup.to_string()])
            .args(["--steps", &options.steps.to_string()]),
    )
}

/// The Python interpreter: `ELECTRA_BENCH_PYTHON`, or `.venv-bench` (created and filled from
/// the requirements file when missing or out of date).
fn python(root: &Path) -> anyhow::Result<PathBuf> {
    if let Some(python) = std::env::var_os("ELECTRA_BENCH_PYTHON") {
        return Ok(PathBuf::from(python));
    }
    let venv = root.join(VENV);
    let python = venv.join("bin/python");
    let requirements = root.join(REQUIREMENTS);
    let wanted = std::fs::read_to_string(&requirements)
        .with_context(|| format!("cannot read {}", requirements.display()))?;
    let stamp = venv.join(STAMP);
    if std::fs::read_to_string(&stamp).ok().as_deref() == Some(wanted.as_str()) && python.exists() {
        return Ok(python);
    }
    eprintln!(
        "setting up {} from {REQUIREMENTS} (torch and transformers: a large download, once)",
        venv.display()
    );
    if !python.exists() {
        run(Command::new("python3").arg("-m").arg("venv").arg(&venv))?;
    }
    run(Command::new(&python)
        .args(["-m", "pip", "install", "--quiet", "-r"])
        .arg(&requirements))?;
    std::fs::write(&stamp, wanted).with_context(|| format!("cannot write {}", stamp.display()))?;
    Ok(python)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(step_seconds: &[f64]) -> Value {
        serde_json::json!({ "step_seconds": step_seconds })
    }

    /// A host that slows down between rounds moves both sides of a round together: the paired
    /// ratio sees 2.0 in both rounds where the pooled medians would not.
    #[test]
    fn ratios_are_paired_within_rounds() {
        let ours = [report(&[1.0, 1.0, 1.0]), report(&[2.0, 2.0, 2.0])];
        let torch = [report(&[2.0, 2.0, 2.0]), report(&[4.0, 4.0, 4.0])];
        assert_eq!(paired_ratio(&ours, &torch), (2.0, 2.0, 2.0));
        assert_eq!(ratio_cell(&ours, &torch), "2.00 (2.00–2.00)");
    }

    #[test]
    fn modes_keep_table_order_and_reject_unknown_ones() {
        let asked = |m: &[&str]| modes(&m.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        let picked: Vec<&str> = asked(&["finetune", "step"])
            .unwrap()
            .iter()
            .map(|m| m.0)
            .collect();
        assert_eq!(picked, ["step", "finetune"]);
        assert_eq!(asked(&[]).unwrap().len(), 4);
        let err = asked(&["squat"]).unwrap_err().to_string();
        assert!(err.contains("unknown mode `squat`"), "{err}");
    }

    #[test]
    fn the_cpu_class_comes_from_our_reports() {
        let row = |isa: &str| Row {
            ours: vec![serde_json::json!({ "cpu": { "vector_isa": isa } })],
            ..Row::default()
        };
        assert_eq!(cpu_class(&[row("avx512f")]), "avx512");
        assert_eq!(cpu_class(&[row("avx2")]), "avx2");
        assert_eq!(cpu_class(&[]), "baseline");
    }
}
