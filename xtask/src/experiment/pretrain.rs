//! Pre-training phase: the shards, then one run per objective, stopped at each planned
//! checkpoint (`electra pretrain --stop-after`), exported there (`electra export`) and resumed
//! (`electra pretrain --resume`). Every finished export and run leaves a record; a rerun skips
//! what is recorded and resumes a run from its newest checkpoint.

use std::path::{Path, PathBuf};

use anyhow::bail;
use serde_json::{Value, json};

use super::budget::{Budget, Corpus};
use super::files;
use super::plan::{Layout, RunPlan};
use super::tools::{Tools, arg};

/// Whether a phase finished or stopped early on `--stop-after`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Progress {
    /// Everything planned is done.
    Done,
    /// Stopped at the requested step; rerun to continue.
    Stopped,
}

/// The shard directory: `--data` itself when it holds a `manifest.json`, else shards built into
/// `work/shards` (once) from the demo corpus or from `--data` with `--vocab`.
pub fn shards(
    layout: &Layout,
    budget: &Budget,
    tools: &Tools,
    data: &Path,
    vocab: &Path,
) -> anyhow::Result<PathBuf> {
    if data.join("manifest.json").is_file() {
        return Ok(data.to_path_buf());
    }
    let out = layout.shards();
    if out.join("manifest.json").is_file() {
        eprintln!("shards: {} already built", out.display());
        return Ok(out);
    }
    let mut args = vec![
        "data".to_string(),
        "build".into(),
        "--out".into(),
        arg(&out),
        "--shards".into(),
        budget.shards.to_string(),
        "--max-seq-len".into(),
        budget.max_seq_len.to_string(),
    ];
    match &budget.corpus {
        Corpus::Demo { documents } => {
            args.extend(["--demo-documents".into(), documents.to_string()]);
        }
        Corpus::Files => {
            for (flag, path) in [("--input", data), ("--tokenizer", vocab)] {
                if !path.exists() {
                    bail!(
                        "{flag} {}: not found (pass --data / --vocab)",
                        path.display()
                    );
                }
                args.extend([flag.to_string(), arg(path)]);
            }
        }
    }
    if out.exists() {
        // An interrupted build leaves no manifest; the build replaces the whole set.
        args.push("--overwrite".into());
    }
    tools.electra(&args)?;
    Ok(out)
}

/// The newest checkpoint step of a run directory (`checkpoints/step-N`), if any.
pub fn newest_checkpoint(run_dir: &Path) -> Option<u64> {
    std::fs::read_dir(run_dir.join("checkpoints"))
        .ok()?
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str()?.strip_prefix("step-")?.parse().ok())
        .max()
}

/// Pre-trains `run` up to each planned checkpoint and exports it; `stop_after` stops every run
/// at that step (tests and sittings). Writes the run's record when its last checkpoint is out.
pub fn run(
    layout: &Layout,
    budget: &Budget,
    tools: &Tools,
    plan: &RunPlan,
    shards: &Path,
    stop_after: Option<u64>,
) -> anyhow::Result<Progress> {
    let objective = plan.objective.as_str();
    let record_path = layout.pretrain_records().join(format!("{objective}.json"));
    if record_path.is_file() {
        eprintln!("pre-training {objective}: done (recorded), skipped");
        return Ok(Progress::Done);
    }
    let run_dir = layout.run_dir(objective);
    for &step in &plan.checkpoints {
        let export_record = layout
            .export_records()
            .join(format!("{objective}-step-{step:08}.json"));
        if export_record.is_file() {
            continue;
        }
        let target = stop_after.map_or(step, |s| s.min(step));
        let seconds = advance(tools, budget, plan, shards, &run_dir, target)?;
        if target < step {
            return Ok(Progress::Stopped);
        }
        let export_dir = layout.export_dir(objective, step);
        let mut args = vec![
            "export".to_string(),
            arg(&run_dir),
            "--out".into(),
            arg(&export_dir),
        ];
        if export_dir.exists() {
            args.push("--overwrite".into());
        }
        tools.electra(&args)?;
        files::write_json(
            &export_record,
            &json!({
                "objective": objective,
                "step": step,
                "pretrain_flops": step as f64 * plan.train_flops_per_step,
                "export": arg(&export_dir),
                "pretrain_seconds": seconds,
            }),
        )?;
    }
    finish(layout, tools, plan, &run_dir, &record_path)?;
    Ok(Progress::Done)
}

/// Runs (or resumes) pre-training until the newest checkpoint is `target`; returns seconds.
fn advance(
    tools: &Tools,
    budget: &Budget,
    plan: &RunPlan,
    shards: &Path,
    run_dir: &Path,
    target: u64,
) -> anyhow::Result<f64> {
    let newest = newest_checkpoint(run_dir);
    if newest.is_some_and(|n| n > target) {
        bail!(
            "{} is at step {} already, past step {target} whose checkpoint was never exported; \
             delete that run directory to pre-train it again",
            run_dir.display(),
            newest.unwrap_or_default()
        );
    }
    if newest == Some(target) {
        return Ok(0.0);
    }
    let mut args = vec!["pretrain".to_string()];
    if run_dir.join("config.toml").is_file() {
        args.extend(["--resume".into(), arg(run_dir)]);
    } else {
        args.extend(["--preset".into(), budget.preset.to_string()]);
        args.extend(["--data".into(), arg(shards), "--out".into(), arg(run_dir)]);
        for o in &plan.overrides {
            args.extend(["--set".into(), o.clone()]);
        }
    }
    args.extend(["--stop-after".into(), target.to_string()]);
    let seconds = tools.electra(&args)?;
    let reached = newest_checkpoint(run_dir);
    if reached != Some(target) {
        bail!(
            "pre-training in {} stopped at step {} before step {target} (interrupted?); run the \
             experiment again to resume it",
            run_dir.display(),
            reached.map_or("0".into(), |s| s.to_string())
        );
    }
    Ok(seconds)
}

/// The run's record (config, FLOPs, wall time, last logged metrics) and its curves.
fn finish(
    layout: &Layout,
    tools: &Tools,
    plan: &RunPlan,
    run_dir: &Path,
    record_path: &Path,
) -> anyhow::Result<()> {
    let objective = plan.objective.as_str();
    let plot = layout.plots().join(format!("pretrain-{objective}.svg"));
    std::fs::create_dir_all(layout.plots())?;
    tools.electra(&["plot".into(), arg(run_dir), "--out".into(), arg(&plot)])?;
    let seconds: f64 = files::read_records(&layout.export_records())?
        .iter()
        .filter(|r| r["objective"] == objective)
        .filter_map(|r| r["pretrain_seconds"].as_f64())
        .sum();
    let config = std::fs::read_to_string(run_dir.join("config.toml")).unwrap_or_default();
    files::write_json(
        record_path,
        &json!({
            "objective": objective,
            "steps": plan.steps,
            "train_flops_per_step": plan.train_flops_per_step,
            "train_flops_total": plan.train_flops_total,
            "wall_seconds": seconds,
            "run_dir": arg(run_dir),
            "config_toml": config,
            "final_metrics": last_train_metrics(&run_dir.join("metrics.jsonl")),
            "curves": format!("plots/pretrain-{objective}.svg"),
        }),
    )
}

/// The last training line of `metrics.jsonl` (not an `eval_*` line), or null.
fn last_train_metrics(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.lines()
        .rev()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|v| v.get("loss").is_some())
        .unwrap_or(Value::Null)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_newest_checkpoint_ignores_temporary_directories() {
        let run = std::env::temp_dir().join(format!("xtask-ckpt-{}", std::process::id()));
        assert_eq!(newest_checkpoint(&run), None);
        for name in ["step-00000002", "step-00000010", ".step-00000012.tmp"] {
            std::fs::create_dir_all(run.join("checkpoints").join(name)).expect("mkdir");
        }
        assert_eq!(newest_checkpoint(&run), Some(10));
        std::fs::remove_dir_all(&run).expect("clean");
    }
}
