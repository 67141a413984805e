//! Fine-tuning phase: every (model, checkpoint, task, seed) is one `electra finetune` call with
//! one seed, recorded in `work/records/finetune/` when it finishes; a rerun skips recorded units
//! and redoes an unrecorded one from scratch (`--overwrite`).

use std::path::{Path, PathBuf};

use anyhow::Context;
use serde_json::{Value, json};

use super::budget::{Budget, paper_metric};
use super::files;
use super::plan::Layout;
use super::tools::{Tools, arg};

/// Label of the randomly initialised baseline.
pub const RANDOM_INIT: &str = "random-init";

/// A checkpoint to fine-tune.
#[derive(Clone, Debug, PartialEq)]
pub struct Model {
    /// Objective name, or [`RANDOM_INIT`].
    pub label: String,
    /// Pre-training step (0 for random init).
    pub step: u64,
    /// Pre-training FLOPs spent to reach it.
    pub pretrain_flops: f64,
    /// The exported discriminator-sized network (for random init: only its shape is used).
    pub checkpoint: PathBuf,
    /// Fine-tune a fresh initialisation of the checkpoint's configuration.
    pub random_init: bool,
    /// Whether this is its run's final checkpoint.
    pub is_final: bool,
}

/// Every model to fine-tune, from the export records: final checkpoints (and random init)
/// first, so a stopped experiment has the headline comparison earliest.
pub fn models(
    layout: &Layout,
    budget: &Budget,
    final_steps: &[(String, u64)],
) -> anyhow::Result<Vec<Model>> {
    let mut models = Vec::new();
    for record in files::read_records(&layout.export_records())? {
        let label = record["objective"].as_str().unwrap_or_default().to_string();
        let step = record["step"].as_u64().unwrap_or_default();
        let is_final = final_steps.iter().any(|(o, s)| *o == label && *s == step);
        models.push(Model {
            // Here, not where the record says: results.json may come from another clone.
            checkpoint: layout.export_dir(&label, step).join("discriminator"),
            pretrain_flops: record["pretrain_flops"].as_f64().unwrap_or_default(),
            random_init: false,
            label,
            step,
            is_final,
        });
    }
    if budget.random_init
        && let Some(electra) = models.iter().find(|m| m.is_final && m.label == "electra")
    {
        models.push(Model {
            label: RANDOM_INIT.into(),
            step: 0,
            pretrain_flops: 0.0,
            checkpoint: electra.checkpoint.clone(),
            random_init: true,
            is_final: true,
        });
    }
    let order = |m: &Model| {
        let objective = budget.objectives.iter().position(|o| *o == m.label);
        (!m.is_final, objective.unwrap_or(usize::MAX), m.step)
    };
    models.sort_by_key(order);
    Ok(models)
}

/// Whether some (task, seed) unit of `model` has no record yet.
pub fn pending(layout: &Layout, budget: &Budget, model: &Model) -> bool {
    budget.tasks.iter().any(|task| {
        (1..=budget.seeds).any(|seed| !record_path(layout, model, task, seed).is_file())
    })
}

/// Where the record of one unit lives.
fn record_path(layout: &Layout, model: &Model, task: &str, seed: u64) -> PathBuf {
    layout.finetune_record(&model.label, model.step, task, seed)
}

/// What every fine-tuning unit shares.
pub struct Setting<'a> {
    /// The experiment's directories.
    pub layout: &'a Layout,
    /// The budget (recipe, subsets, epochs).
    pub budget: &'a Budget,
    /// The binaries.
    pub tools: &'a Tools,
    /// GLUE data.
    pub glue_dir: &'a Path,
    /// The shards' tokenizer.
    pub tokenizer: &'a Path,
}

/// Fine-tunes `model` on `task` with `seed` unless recorded; returns whether it ran.
pub fn unit(setting: &Setting<'_>, model: &Model, task: &str, seed: u64) -> anyhow::Result<bool> {
    let Setting {
        layout,
        budget,
        tools,
        glue_dir,
        tokenizer,
    } = *setting;
    let record_path = record_path(layout, model, task, seed);
    if record_path.is_file() {
        return Ok(false);
    }
    let out = layout.finetune_dir(&model.label, model.step, task, seed);
    let mut args: Vec<String> = vec![
        "finetune".into(),
        "--task".into(),
        task.into(),
        "--glue-dir".into(),
        arg(glue_dir),
        "--checkpoint".into(),
        arg(&model.checkpoint),
        "--tokenizer".into(),
        arg(tokenizer),
        "--seeds".into(),
        "1".into(),
        "--first-seed".into(),
        seed.to_string(),
        "--max-seq-len".into(),
        budget.finetune_max_seq_len.to_string(),
        "--out".into(),
        arg(&out),
    ];
    if model.random_init {
        args.push("--random-init".into());
    }
    if let Some(n) = budget.max_train_examples {
        args.extend(["--max-train-examples".into(), n.to_string()]);
    }
    if let Some(e) = budget.finetune_epochs {
        args.extend(["--epochs".into(), e.to_string()]);
    }
    if out.exists() {
        args.push("--overwrite".into());
    }
    let seconds = tools.electra(&args)?;
    let results_path = out.join("results.json");
    let results = files::read_json(&results_path)?
        .with_context(|| format!("{} was not written", results_path.display()))?;
    files::write_json(
        &record_path,
        &record(model, task, seed, &results, (seconds, &tools.build), &out)?,
    )?;
    Ok(true)
}

/// The record of one finished unit, from `electra finetune`'s results.json, with its wall
/// seconds and the build that ran it.
fn record(
    model: &Model,
    task: &str,
    seed: u64,
    results: &Value,
    (seconds, build): (f64, &Value),
    out: &Path,
) -> anyhow::Result<Value> {
    let result = &results["tasks"][0];
    let seed_result = &result["seeds"][0];
    let metric = paper_metric(task);
    let score = seed_result["scores"][metric].as_f64().with_context(|| {
        format!(
            "{}: no `{metric}` score for {task}",
            out.join("results.json").display()
        )
    })?;
    Ok(json!({
        "model": model.label,
        "step": model.step,
        "pretrain_flops": model.pretrain_flops,
        "final_checkpoint": model.is_final,
        "random_init": model.random_init,
        "checkpoint": arg(&model.checkpoint),
        "task": task,
        "seed": seed,
        "metric": metric,
        "score": score,
        "scores": seed_result["scores"],
        "validation": result["validation"],
        "train_examples": result["train_examples"],
        "validation_examples": result["validation_examples"],
        "final_train_loss": seed_result["final_train_loss"],
        "train_seconds": seed_result["train_seconds"],
        "wall_seconds": seconds,
        "build": build,
        "recipe": result["recipe"],
        "output": arg(out),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::experiment::budget::Budget;

    #[test]
    fn final_checkpoints_and_random_init_come_first() {
        let out = std::env::temp_dir().join(format!("xtask-models-{}", std::process::id()));
        let layout = Layout::new(&out);
        for (objective, step) in [("mlm", 7), ("electra", 3), ("mlm", 4), ("electra", 6)] {
            let record = json!({"objective": objective, "step": step,
                                "pretrain_flops": step as f64, "export": format!("e/{objective}/{step}")});
            files::write_json(
                &layout
                    .export_records()
                    .join(format!("{objective}-{step}.json")),
                &record,
            )
            .expect("record");
        }
        let finals = [("electra".to_string(), 6), ("mlm".to_string(), 7)];
        let models = models(&layout, &Budget::smoke(), &finals).expect("models");
        let order: Vec<(&str, u64, bool)> = models
            .iter()
            .map(|m| (m.label.as_str(), m.step, m.is_final))
            .collect();
        assert_eq!(
            order,
            vec![
                ("electra", 6, true),
                ("mlm", 7, true),
                (RANDOM_INIT, 0, true),
                ("electra", 3, false),
                ("mlm", 4, false)
            ]
        );
        let random = &models[2];
        assert!(random.random_init && random.pretrain_flops == 0.0);
        // The checkpoint is this layout's export, whatever path the record names.
        assert_eq!(
            random.checkpoint,
            layout.export_dir("electra", 6).join("discriminator")
        );
        assert_eq!(
            record_path(&layout, random, "RTE", 2).file_name(),
            Some(std::ffi::OsStr::new(
                "random-init__step-00000000__RTE__seed-2.json"
            ))
        );
        std::fs::remove_dir_all(&out).expect("clean");
    }
}
