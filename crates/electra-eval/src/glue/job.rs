//! A GLUE fine-tuning as the `electra glue` and `electra finetune` commands run it: the tasks
//! over the seeds ([`run`](super::run)) into an output directory that receives `results.md`,
//! `results.json`, `metrics.jsonl` and `predictions/`. A directory that already holds any of
//! them is refused unless `overwrite`; then the whole earlier set is removed (once the
//! checkpoint has loaded), so no file of an earlier run stays beside the new ones.

use std::path::PathBuf;

use burn::tensor::backend::AutodiffBackend;

use super::report::{Report, SeedResult};
use super::task::Task;
use super::{GlueObserver, GlueRun};
use crate::error::EvalError;
use crate::glue::finetune::FinetuneConfig;
use crate::tuning::bars::StepBars;
use crate::tuning::job::{self, Start};

/// What an output directory of a GLUE run receives.
pub const OUTPUTS: [&str; 4] = ["results.md", "results.json", "metrics.jsonl", "predictions"];

/// A GLUE fine-tuning into an output directory.
#[derive(Clone, Debug)]
pub struct GlueJob {
    /// The pre-trained model and the seeds.
    pub start: Start,
    /// The GLUE directory in the `glue_data` layout.
    pub glue_dir: PathBuf,
    /// The tasks, in order.
    pub tasks: Vec<Task>,
    /// The recipe; `max_seq_len` is fitted to the model unless `max_seq_len_given`.
    pub config: FinetuneConfig,
    /// The user chose `config.max_seq_len` (a model with fewer positions is then an error).
    pub max_seq_len_given: bool,
    /// Fail (instead of skipping with a note) when a task cannot be fine-tuned.
    pub strict: bool,
    /// The output directory.
    pub out: PathBuf,
    /// Replace the results already in `out`.
    pub overwrite: bool,
}

/// What a finished GLUE job wrote.
#[derive(Debug)]
pub struct GlueDone {
    /// The report (also in `results.json`).
    pub report: Report,
    /// `results.md`, `results.json` and `metrics.jsonl`.
    pub files: [PathBuf; 3],
}

/// Parses `all` (every trainable task) or a comma-separated task list.
pub fn parse_tasks(text: &str) -> Result<Vec<Task>, EvalError> {
    if text.trim().eq_ignore_ascii_case("all") {
        return Ok(Task::ALL
            .into_iter()
            .filter(|t| t.spec().trainable)
            .collect());
    }
    let mut tasks = Vec::new();
    for name in text.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let task: Task = name.parse()?;
        if !task.spec().trainable {
            return Err(EvalError::InvalidConfig(
                "AX has no training data: it is predicted with the MNLI model (run mnli)".into(),
            ));
        }
        if !tasks.contains(&task) {
            tasks.push(task);
        }
    }
    if tasks.is_empty() {
        return Err(EvalError::InvalidConfig(
            "--tasks is empty: name at least one task, or `all`".into(),
        ));
    }
    Ok(tasks)
}

/// Runs `job` on `device` with progress bars; an error once the results are written if no
/// task could be fine-tuned.
pub fn run_job<B: AutodiffBackend>(
    job: &GlueJob,
    device: &B::Device,
) -> Result<GlueDone, EvalError> {
    let seeds = job.start.seed_list()?;
    let old = job::claim_outputs(&job.out, &OUTPUTS, "GLUE results", job.overwrite)?;
    let mut config = job.config.clone();
    config.validate()?;
    let pre = job.start.load::<B>(device)?;
    let positions = pre.config.max_position_embeddings;
    if !job.max_seq_len_given {
        // The default fits the model it is given (a demo run has 64 positions).
        config.max_seq_len = config.max_seq_len.min(positions);
    }
    if config.max_seq_len > positions {
        return Err(EvalError::InvalidConfig(format!(
            "--max-seq-len {} exceeds the model's max_position_embeddings {positions}",
            config.max_seq_len
        )));
    }
    old.remove()?;
    let (metrics_path, metrics) = job::open_metrics(&job.out, true)?;
    let run = GlueRun {
        glue_dir: job.glue_dir.clone(),
        tasks: job.tasks.clone(),
        seeds,
        config,
        strict: job.strict,
        predictions_dir: job.out.join("predictions"),
    };
    let mut bars = StepBars::new(metrics, Task::Rte.name());
    let report = super::run(&pre, &run, device, &mut bars)?;
    let (md, json) = job::write_results(&job.out, &report.to_markdown(), &report)?;
    if report.tasks.is_empty() {
        return Err(EvalError::Mismatch(format!(
            "no task could be fine-tuned from {} (see the notes above; {} lists them)",
            job.glue_dir.display(),
            md.display()
        )));
    }
    Ok(GlueDone {
        report,
        files: [md, json, metrics_path],
    })
}

impl GlueObserver for StepBars {
    fn task_skipped(&mut self, _task: Task, note: &str) {
        eprintln!("{note}");
    }

    fn seed_started(&mut self, task: Task, seed: u64) {
        self.label = format!("{task} seed {seed}");
        self.task = task.name().to_string();
        self.seed = seed;
    }

    fn seed_finished(&mut self, task: Task, r: &SeedResult) {
        let scores: Vec<String> = r
            .scores
            .iter()
            .map(|(k, v)| format!("{k} {:.2}", v * 100.0))
            .collect();
        println!(
            "{task} seed {}: {} (train loss {:.4}, {:.0} s)",
            r.seed,
            scores.join(", "),
            r.final_train_loss,
            r.train_seconds
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn task_lists_parse_all_names_and_refuse_ax_and_nothing() {
        let all = parse_tasks("all").expect("all");
        assert!(all.contains(&Task::Rte) && !all.contains(&Task::Ax));
        assert_eq!(
            parse_tasks("rte, sst-2,rte").expect("list"),
            vec![Task::Rte, Task::Sst2]
        );
        assert!(
            parse_tasks("ax")
                .expect_err("ax")
                .to_string()
                .contains("AX")
        );
        assert!(
            parse_tasks(" , ")
                .expect_err("empty")
                .to_string()
                .contains("empty")
        );
        assert!(parse_tasks("rtx").is_err());
    }
}
