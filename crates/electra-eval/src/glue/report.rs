//! Results over seeds (markdown and JSON) and GLUE test-server prediction files.
//!
//! Prediction files follow the leaderboard convention (spec 6.2): one file per test set named
//! `CoLA.tsv`, `SST-2.tsv`, `MRPC.tsv`, `STS-B.tsv`, `QQP.tsv`, `MNLI-m.tsv`, `MNLI-mm.tsv`,
//! `QNLI.tsv`, `RTE.tsv`, `WNLI.tsv`, `AX.tsv`, each with the header `index<TAB>prediction`;
//! NLI tasks write label strings (`entailment`, ...), binary tasks `0`/`1`, STS-B a score
//! 0-5 with three decimals.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::EvalError;
use crate::glue::data::{Label, read_file};
use crate::glue::metrics::{
    GlueAverage, Predictions, Scores, leaderboard_glue_average, paper_glue_average, task_scores,
};
use crate::glue::task::{Metric, Split, Task};

/// The text of a prediction file for `task`: header, then one `index<TAB>prediction` row per
/// example.
pub fn prediction_file_text(
    task: Task,
    ids: &[String],
    predictions: &Predictions,
) -> Result<String, EvalError> {
    if ids.len() != predictions.len() {
        return Err(EvalError::Mismatch(format!(
            "{task}: {} ids for {} predictions",
            ids.len(),
            predictions.len()
        )));
    }
    let mut out = String::from("index\tprediction\n");
    match predictions {
        Predictions::Scores(s) => {
            for (id, v) in ids.iter().zip(s) {
                let _ = writeln!(out, "{id}\t{:.3}", v.clamp(0.0, 5.0));
            }
        }
        Predictions::Classes(c) => {
            let labels = task.labels();
            for (id, &class) in ids.iter().zip(c) {
                let label = labels.get(class).ok_or_else(|| {
                    EvalError::Mismatch(format!("{task}: class {class} has no label"))
                })?;
                let _ = writeln!(out, "{id}\t{label}");
            }
        }
    }
    Ok(out)
}

/// Writes a prediction file (see [`prediction_file_text`]), atomically.
pub fn write_predictions(
    path: &Path,
    task: Task,
    ids: &[String],
    predictions: &Predictions,
) -> Result<(), EvalError> {
    let text = prediction_file_text(task, ids, predictions)?;
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(|e| EvalError::io(parent, e))?;
    }
    electra_fs::write_atomic(path, text.as_bytes())?;
    Ok(())
}

/// Reads a prediction file in the test-server format: `(index, label)` per row.
pub fn read_predictions(path: &Path, task: Task) -> Result<Vec<(String, Label)>, EvalError> {
    let text = std::fs::read_to_string(path).map_err(|e| EvalError::io(path, e))?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
    let mut out = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let row = raw.trim_end_matches('\r');
        if i == 0 {
            if row != "index\tprediction" {
                return Err(EvalError::format(
                    path,
                    1,
                    format!("expected the header `index<TAB>prediction`, found `{row}`"),
                ));
            }
            continue;
        }
        if row.is_empty() {
            continue;
        }
        let (id, value) = row
            .split_once('\t')
            .ok_or_else(|| EvalError::format(path, i + 1, "expected `index<TAB>prediction`"))?;
        let label = crate::glue::data::parse_label(value.trim(), task)
            .map_err(|m| EvalError::format(path, i + 1, m))?;
        out.push((id.trim().to_string(), label));
    }
    Ok(out)
}

/// Scores a prediction file against a labelled GLUE file of `task` (its dev layout) with the
/// task's official metrics. Rows are matched by index (a dev file without an index column is
/// numbered from 0 in file order, as prediction files for it are).
pub fn score_file(task: Task, predictions: &Path, gold: &Path) -> Result<Scores, EvalError> {
    let gold_set = read_file(gold, task, Split::Dev)?;
    let rows = read_predictions(predictions, task)?;
    let mut by_id: HashMap<&str, Label> = HashMap::with_capacity(rows.len());
    for (id, label) in &rows {
        if by_id.insert(id.as_str(), *label).is_some() {
            return Err(EvalError::Mismatch(format!(
                "{}: index {id} appears twice",
                predictions.display()
            )));
        }
    }
    if rows.len() != gold_set.len() {
        return Err(EvalError::Mismatch(format!(
            "{}: {} predictions, but {} has {} examples",
            predictions.display(),
            rows.len(),
            gold.display(),
            gold_set.len()
        )));
    }
    let gold_labels = gold_set.labels()?;
    let mut picked = Vec::with_capacity(gold_set.len());
    for e in &gold_set.examples {
        let label = by_id.get(e.id.as_str()).ok_or_else(|| {
            EvalError::Mismatch(format!(
                "{}: no prediction for index {} of {}",
                predictions.display(),
                e.id,
                gold.display()
            ))
        })?;
        picked.push(*label);
    }
    let preds = if task.is_regression() {
        Predictions::Scores(picked.iter().map(|l| f64::from(l.value())).collect())
    } else {
        Predictions::Classes(picked.iter().map(|l| l.class()).collect())
    };
    task_scores(task, &preds, &gold_labels)
}

/// One seed's outcome.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SeedResult {
    /// The seed.
    pub seed: u64,
    /// Official metrics on the validation set, by metric name (fractions).
    pub scores: BTreeMap<String, f64>,
    /// Mean training loss of the last epoch.
    pub final_train_loss: f64,
    /// Seconds of training.
    pub train_seconds: f64,
}

pub use crate::tuning::stats::Stat;

/// One task's results over seeds.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TaskResult {
    /// GLUE task name.
    pub task: String,
    /// What the scores were measured on (dev file, or a held-out share of train).
    pub validation: String,
    /// Training examples (after the swapped-pair doubling).
    pub train_examples: usize,
    /// Validation examples.
    pub validation_examples: usize,
    /// Learning rate, α, epochs, ... as used.
    pub recipe: crate::glue::finetune::Recipe,
    /// Per seed.
    pub seeds: Vec<SeedResult>,
    /// Per metric over the seeds.
    pub summary: BTreeMap<String, Stat>,
    /// Test-server prediction files written (from the seed with the best validation score).
    pub prediction_files: Vec<String>,
}

impl TaskResult {
    /// Summarises `seeds` per metric.
    pub fn summarise(&mut self) {
        let mut by_metric: BTreeMap<String, Vec<f64>> = BTreeMap::new();
        for s in &self.seeds {
            for (k, v) in &s.scores {
                by_metric.entry(k.clone()).or_default().push(*v);
            }
        }
        self.summary = by_metric
            .into_iter()
            .map(|(k, v)| (k, Stat::of(&v)))
            .collect();
    }

    /// The median scores as a [`Scores`] map (for the GLUE averages).
    pub fn median_scores(&self) -> Scores {
        let mut out = Scores::new();
        for m in [
            Metric::Accuracy,
            Metric::F1,
            Metric::Mcc,
            Metric::Pearson,
            Metric::Spearman,
        ] {
            if let Some(s) = self.summary.get(m.name()) {
                out.insert(m, s.median);
            }
        }
        out
    }
}

/// A whole report: what was fine-tuned, the per-task results and the GLUE averages of the
/// per-task medians.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Report {
    /// The pre-trained checkpoint, in words.
    pub checkpoint: String,
    /// The fine-tuning configuration.
    pub config: crate::glue::finetune::FinetuneConfig,
    /// Seeds used.
    pub seeds: Vec<u64>,
    /// Per task.
    pub tasks: Vec<TaskResult>,
    /// Tasks not run and why.
    pub skipped: Vec<String>,
    /// The paper's GLUE score over the tasks present (medians; see `paper_average_tasks`).
    pub paper_average: Option<f64>,
    /// Tasks in `paper_average`.
    pub paper_average_tasks: Vec<String>,
    /// Leaderboard-style average over the tasks present.
    pub leaderboard_average: Option<f64>,
    /// Tasks in `leaderboard_average`.
    pub leaderboard_average_tasks: Vec<String>,
}

impl Report {
    /// Fills in the GLUE averages from the task medians.
    pub fn compute_averages(&mut self) {
        let by_task: BTreeMap<Task, Scores> = self
            .tasks
            .iter()
            .filter_map(|t| Some((t.task.parse::<Task>().ok()?, t.median_scores())))
            .collect();
        let names = |a: &GlueAverage| a.tasks.iter().map(|t| t.name().to_string()).collect();
        if let Some(a) = paper_glue_average(&by_task) {
            self.paper_average = Some(a.value);
            self.paper_average_tasks = names(&a);
        }
        if let Some(a) = leaderboard_glue_average(&by_task) {
            self.leaderboard_average = Some(a.value);
            self.leaderboard_average_tasks = names(&a);
        }
    }

    /// The results table in markdown (scores ×100, as the paper prints them).
    pub fn to_markdown(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "# GLUE fine-tuning results\n");
        let _ = writeln!(s, "- checkpoint: {}", self.checkpoint);
        let _ = writeln!(s, "- seeds: {:?}", self.seeds);
        let _ = writeln!(
            s,
            "- scores ×100 on the validation set named per task; median / mean ± std over seeds\n"
        );
        let _ = writeln!(
            s,
            "| Task | Metric | Median | Mean | Std | Seeds | Train ex. | Val. ex. | LR | α | Epochs | Validation set |"
        );
        let _ = writeln!(s, "|---|---|---|---|---|---|---|---|---|---|---|---|");
        for t in &self.tasks {
            for (metric, st) in &t.summary {
                let _ = writeln!(
                    s,
                    "| {} | {} | {:.1} | {:.1} | {:.1} | {} | {} | {} | {:e} | {} | {} | {} |",
                    t.task,
                    metric,
                    st.median * 100.0,
                    st.mean * 100.0,
                    st.std * 100.0,
                    t.seeds.len(),
                    t.train_examples,
                    t.validation_examples,
                    t.recipe.learning_rate,
                    t.recipe.layerwise_lr_decay,
                    t.recipe.epochs,
                    t.validation
                );
            }
        }
        if let Some(v) = self.paper_average {
            let _ = writeln!(
                s,
                "\nPaper-style GLUE average (paper metric per task, medians, no WNLI) over {}: **{:.1}**",
                self.paper_average_tasks.join(", "),
                v * 100.0
            );
        }
        if let Some(v) = self.leaderboard_average {
            let _ = writeln!(
                s,
                "\nLeaderboard-style average (official metrics averaged per task) over {}: {:.1}",
                self.leaderboard_average_tasks.join(", "),
                v * 100.0
            );
        }
        if !self.skipped.is_empty() {
            let _ = writeln!(s, "\nNot fine-tuned:");
            for k in &self.skipped {
                let _ = writeln!(s, "- {k}");
            }
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prediction_files_use_the_official_label_formats() {
        let ids = vec!["0".to_string(), "1".to_string()];
        let text =
            prediction_file_text(Task::Rte, &ids, &Predictions::Classes(vec![1, 0])).expect("rte");
        assert_eq!(
            text,
            "index\tprediction\n0\tnot_entailment\n1\tentailment\n"
        );
        let text = prediction_file_text(Task::Mnli, &ids, &Predictions::Classes(vec![2, 0]))
            .expect("mnli");
        assert_eq!(text, "index\tprediction\n0\tneutral\n1\tcontradiction\n");
        let text = prediction_file_text(Task::Cola, &ids, &Predictions::Classes(vec![1, 0]))
            .expect("cola");
        assert_eq!(text, "index\tprediction\n0\t1\n1\t0\n");
        let text = prediction_file_text(Task::Stsb, &ids, &Predictions::Scores(vec![3.4567, 5.7]))
            .expect("sts");
        assert_eq!(text, "index\tprediction\n0\t3.457\n1\t5.000\n");
        assert!(prediction_file_text(Task::Rte, &ids, &Predictions::Classes(vec![1])).is_err());
    }
}
