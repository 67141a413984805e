//! From a budget to runs: the directory layout of an experiment, and the steps every objective
//! gets so that its training FLOPs equal ELECTRA's (the count of the `flops` binary).

use std::path::{Path, PathBuf};

use anyhow::bail;
use serde::Serialize;
use serde_json::Value;

use super::budget::Budget;
use super::files;
use super::tools::Tools;

/// Where everything of one experiment lives under `--out`.
#[derive(Clone, Debug)]
pub struct Layout {
    /// `--out`: results.json, results.md, plan.json, plots/.
    pub out: PathBuf,
    /// `work/`: shards, runs, exports, fine-tuning outputs and the records (never committed).
    pub work: PathBuf,
}

impl Layout {
    /// The layout under `out`.
    pub fn new(out: &Path) -> Self {
        Self {
            out: out.to_path_buf(),
            work: out.join("work"),
        }
    }
    /// The pre-training shards.
    pub fn shards(&self) -> PathBuf {
        self.work.join("shards")
    }
    /// Generated GLUE files of the smoke budget.
    pub fn generated_glue(&self) -> PathBuf {
        self.work.join("glue-generated")
    }
    /// The run directory of `objective`.
    pub fn run_dir(&self, objective: &str) -> PathBuf {
        self.work.join("runs").join(objective)
    }
    /// The HF export of `objective` at `step`.
    pub fn export_dir(&self, objective: &str, step: u64) -> PathBuf {
        self.work
            .join("exports")
            .join(objective)
            .join(format!("step-{step:08}"))
    }
    /// `electra finetune --out` of one unit.
    pub fn finetune_dir(&self, label: &str, step: u64, task: &str, seed: u64) -> PathBuf {
        self.work
            .join("finetune")
            .join(label)
            .join(format!("step-{step:08}"))
            .join(task)
            .join(format!("seed-{seed}"))
    }
    /// Records of finished pre-training runs.
    pub fn pretrain_records(&self) -> PathBuf {
        self.work.join("records/pretrain")
    }
    /// Records of finished exports (checkpoints ready to fine-tune).
    pub fn export_records(&self) -> PathBuf {
        self.work.join("records/export")
    }
    /// Records of finished fine-tunings.
    pub fn finetune_records(&self) -> PathBuf {
        self.work.join("records/finetune")
    }
    /// Records of recorded runs that a re-created run replaced (`replace.rs`).
    pub fn replaced_records(&self) -> PathBuf {
        self.work.join("records/replaced")
    }
    /// The records of `objective`'s replaced run, with the reason.
    pub fn replaced_record(&self, objective: &str) -> PathBuf {
        self.replaced_records().join(format!("{objective}.json"))
    }
    /// The record of `objective`'s finished pre-training run.
    pub fn pretrain_record(&self, objective: &str) -> PathBuf {
        self.pretrain_records().join(format!("{objective}.json"))
    }
    /// The record of `objective`'s export at `step`.
    pub fn export_record(&self, objective: &str, step: u64) -> PathBuf {
        self.export_records()
            .join(format!("{objective}-step-{step:08}.json"))
    }
    /// The record of one fine-tuning unit.
    pub fn finetune_record(&self, label: &str, step: u64, task: &str, seed: u64) -> PathBuf {
        self.finetune_records()
            .join(format!("{label}__step-{step:08}__{task}__seed-{seed}.json"))
    }
    /// SVG plots.
    pub fn plots(&self) -> PathBuf {
        self.out.join("plots")
    }
}

/// One pre-training run of the plan.
#[derive(Clone, Debug, Serialize)]
pub struct RunPlan {
    /// The objective (`electra`, `mlm`, ...).
    pub objective: String,
    /// Optimizer steps (ELECTRA's budget, or the equal-FLOPs count).
    pub steps: u64,
    /// Warmup steps.
    pub warmup_steps: u64,
    /// Training FLOPs of one step (the `flops` binary).
    pub train_flops_per_step: f64,
    /// `steps × train_flops_per_step`.
    pub train_flops_total: f64,
    /// Steps whose checkpoints are exported and fine-tuned (ascending; the last is `steps`).
    pub checkpoints: Vec<u64>,
    /// Every `--set` of the run (after `--preset`), data paths aside.
    pub overrides: Vec<String>,
}

/// The whole plan (saved as `plan.json`; a rerun must produce the same plan).
#[derive(Clone, Debug, Serialize)]
pub struct Plan {
    /// The budget.
    pub budget: Budget,
    /// Vocabulary size of the shards' tokenizer.
    pub vocab_size: usize,
    /// One per objective, ELECTRA first.
    pub runs: Vec<RunPlan>,
}

/// Steps of a run whose steps cost `per_step` FLOPs, to spend what `reference_steps` steps of
/// `reference_per_step` FLOPs spend (rounded to the nearest step, at least 1).
pub fn equal_flops_steps(reference_steps: u64, reference_per_step: f64, per_step: f64) -> u64 {
    ((reference_steps as f64 * reference_per_step / per_step).round() as u64).max(1)
}

/// The checkpoint steps of a run of `steps` steps at `fractions` of it (rounded, at least 1,
/// ascending, without repeats).
pub fn checkpoint_steps(steps: u64, fractions: &[f64]) -> Vec<u64> {
    let mut out: Vec<u64> = fractions
        .iter()
        .map(|f| ((steps as f64 * f).round() as u64).clamp(1, steps))
        .collect();
    out.sort_unstable();
    out.dedup();
    out
}

/// The `--set` overrides that make a run of `label` (`Budget::objectives`): the objective of
/// that name, or ELECTRA with the embedding sharing `label` names after `electra-`
/// (`electra-untied`, `electra-gdes`). Plain objectives keep the one override they always had,
/// so earlier plans stay the same.
pub fn run_overrides(label: &str) -> Vec<String> {
    match label.strip_prefix("electra-") {
        Some(sharing @ ("untied" | "gdes" | "tied")) => vec![
            "objective.objective=electra".into(),
            format!("objective.embedding_sharing={sharing}"),
        ],
        _ => vec![format!("objective.objective={label}")],
    }
}

/// Plans `budget` for shards of `vocab_size` tokens: asks `flops` for each objective's step.
pub fn make(budget: &Budget, tools: &Tools, vocab_size: usize) -> anyhow::Result<Plan> {
    let mut common: Vec<String> = budget.overrides.iter().map(|s| s.to_string()).collect();
    common.push(format!("model.vocab_size={vocab_size}"));
    common.push(format!("data.max_seq_len={}", budget.max_seq_len));
    let per_step = |objective: &str| -> anyhow::Result<f64> {
        let mut args = vec!["--preset".to_string(), budget.preset.to_string()];
        for o in common.iter().chain(&run_overrides(objective)) {
            args.push("--set".into());
            args.push(o.clone());
        }
        let report = tools.flops(&args)?;
        report["train_flops_per_step"]
            .as_f64()
            .ok_or_else(|| anyhow::anyhow!("flops: no train_flops_per_step in {report}"))
    };
    let Some(reference) = budget.objectives.first() else {
        bail!("budget {} has no objectives", budget.name);
    };
    let reference_per_step = per_step(reference)?;
    let mut runs = Vec::new();
    for objective in &budget.objectives {
        let flops = per_step(objective)?;
        let steps = equal_flops_steps(budget.electra_steps, reference_per_step, flops);
        let warmup_steps = (steps as f64 * budget.warmup_fraction).round() as u64;
        let mut overrides = common.clone();
        overrides.extend(run_overrides(objective));
        overrides.push(format!("train.steps={steps}"));
        overrides.push(format!("schedule.warmup_steps={warmup_steps}"));
        runs.push(RunPlan {
            objective: objective.to_string(),
            steps,
            warmup_steps,
            train_flops_per_step: flops,
            train_flops_total: flops * steps as f64,
            checkpoints: checkpoint_steps(steps, &budget.checkpoint_fractions),
            overrides,
        });
    }
    Ok(Plan {
        budget: budget.clone(),
        vocab_size,
        runs,
    })
}

/// Writes `plan.json`, or checks that the one already there is the same plan (a rerun
/// continues only the experiment it started).
pub fn save_or_check(layout: &Layout, plan: &Plan) -> anyhow::Result<()> {
    let path = layout.out.join("plan.json");
    let value = serde_json::to_value(plan)?;
    match files::read_json(&path)? {
        None => files::write_json(&path, &value),
        Some(old) if old == value => Ok(()),
        Some(old) => bail!(
            "{} holds another plan (budget `{}`; now `{}`, or other settings): continue it with \
             the same options, or choose another --out",
            path.display(),
            old["budget"]["name"].as_str().unwrap_or("?"),
            plan.budget.name
        ),
    }
}

/// The vocabulary size recorded in the shards' `manifest.json`.
pub fn shard_vocab_size(shards: &Path) -> anyhow::Result<usize> {
    let path = shards.join("manifest.json");
    let manifest: Value = files::read_json(&path)?
        .ok_or_else(|| anyhow::anyhow!("{} not found: not a shard directory", path.display()))?;
    manifest["tokenizer"]["vocab_size"]
        .as_u64()
        .map(|v| v as usize)
        .ok_or_else(|| anyhow::anyhow!("{}: no tokenizer.vocab_size", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cheaper_steps_buy_more_steps_at_equal_flops() {
        // The tiny preset: ELECTRA 10.036 GFLOPs per step, MLM 9.316 (the `flops` binary).
        assert_eq!(equal_flops_steps(1500, 10.036e9, 10.036e9), 1500);
        assert_eq!(equal_flops_steps(1500, 10.036e9, 9.316e9), 1616);
        assert_eq!(equal_flops_steps(10, 1.0, 3.0), 3);
        assert_eq!(equal_flops_steps(1, 1.0, 100.0), 1);
    }

    #[test]
    fn run_labels_name_an_objective_or_electra_with_a_sharing_mode() {
        assert_eq!(run_overrides("mlm"), ["objective.objective=mlm"]);
        assert_eq!(
            run_overrides("electra-15"),
            ["objective.objective=electra-15"]
        );
        assert_eq!(
            run_overrides("electra-gdes"),
            [
                "objective.objective=electra",
                "objective.embedding_sharing=gdes"
            ]
        );
        assert_eq!(
            run_overrides("electra-untied")[1],
            "objective.embedding_sharing=untied"
        );
    }

    #[test]
    fn checkpoints_are_shares_of_the_run() {
        assert_eq!(
            checkpoint_steps(1616, &[0.25, 0.5, 0.75, 1.0]),
            vec![404, 808, 1212, 1616]
        );
        assert_eq!(checkpoint_steps(6, &[1.0, 0.5]), vec![3, 6]);
        assert_eq!(checkpoint_steps(2, &[0.1, 0.2, 1.0]), vec![1, 2]);
    }
}
