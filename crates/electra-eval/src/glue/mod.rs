//! GLUE: the nine tasks and AX as data ([`task`]), their TSV files ([`data`]), features
//! ([`features`]), the classification head and losses ([`model`]), one task's fine-tuning
//! ([`finetune`]), the official metrics and GLUE averages ([`metrics`]), result tables and
//! test-server files ([`report`]), and here a whole GLUE run: fine-tune one pre-trained
//! encoder on several tasks over several seeds and collect a [`Report`] (what `electra glue`
//! and `electra finetune` do).
//!
//! Per task, from its [`TaskSpec`](crate::glue::task::TaskSpec): the training set (with the
//! validation share carved out when there is no dev file, an optional seeded subset, and the
//! swapped-pair doubling of symmetric tasks), one fine-tuning per seed scored on the dev file
//! and on the spec's extra evaluation splits (MNLI mismatched), and the test-server prediction
//! files of the spec's submissions (MNLI's include AX) from the seed with the best paper
//! metric. Nothing here prints: a [`GlueObserver`] hears about progress.

pub mod data;
pub mod features;
pub mod finetune;
pub mod job;
pub mod metrics;
pub mod model;
pub mod report;
pub mod task;

#[cfg(test)]
mod fuzzed_readers;

use std::collections::BTreeMap;
use std::path::PathBuf;

use burn::tensor::backend::{AutodiffBackend, Backend};
use rand::SeedableRng;
use rand::seq::SliceRandom;

use self::features::{EncodedSet, encode, with_swapped_pairs};
use self::metrics::Scores;
use self::model::ElectraForSequenceClassification;
use self::report::{Report, SeedResult, TaskResult, write_predictions};
use self::task::{Split, Task};
use crate::error::EvalError;
use crate::glue::data::Dataset;
use crate::glue::finetune::{FinetuneConfig, Progress, Trained};
use crate::tuning::pretrained::Pretrained;

/// What a GLUE run fine-tunes, on what data and with which recipe.
#[derive(Clone, Debug)]
pub struct GlueRun {
    /// The GLUE directory in the `glue_data` layout.
    pub glue_dir: PathBuf,
    /// The tasks, in order (AX is predicted with the MNLI model, never trained).
    pub tasks: Vec<Task>,
    /// Fine-tuning seeds, each task trained once per seed.
    pub seeds: Vec<u64>,
    /// The recipe.
    pub config: FinetuneConfig,
    /// Fail (instead of skipping with a note) when a task's folder or file is missing.
    pub strict: bool,
    /// Where the test-server prediction files go.
    pub predictions_dir: PathBuf,
}

/// Hears about a GLUE run's progress: the fine-tuning steps ([`Progress`]) and the run's own
/// events. Every method has a no-op default.
pub trait GlueObserver: Progress {
    /// `task` is skipped; `note` says why (also kept in [`Report::skipped`]).
    fn task_skipped(&mut self, _task: Task, _note: &str) {}
    /// `task`'s seed `seed` starts fine-tuning.
    fn seed_started(&mut self, _task: Task, _seed: u64) {}
    /// `task`'s seed finished and was scored.
    fn seed_finished(&mut self, _task: Task, _result: &SeedResult) {}
}

impl GlueObserver for finetune::NoProgress {}

/// Runs `run` from `pre` (the pre-trained encoder on the autodiff backend `B`): every task over
/// every seed, prediction files written to `run.predictions_dir`, the report with its
/// averages. A task whose data is missing is skipped with a note unless `run.strict`.
pub fn run<B: AutodiffBackend>(
    pre: &Pretrained<B>,
    run: &GlueRun,
    device: &B::Device,
    observer: &mut impl GlueObserver,
) -> Result<Report, EvalError> {
    if run.seeds.is_empty() {
        return Err(EvalError::InvalidConfig(
            "a GLUE run needs at least one seed".into(),
        ));
    }
    run.config.validate()?;
    let mut report = Report {
        checkpoint: pre.description.clone(),
        config: run.config.clone(),
        seeds: run.seeds.clone(),
        tasks: Vec::new(),
        skipped: Vec::new(),
        paper_average: None,
        paper_average_tasks: Vec::new(),
        leaderboard_average: None,
        leaderboard_average_tasks: Vec::new(),
    };
    for &task in &run.tasks {
        let (train, dev) = match task_data(run, task) {
            Ok(d) => d,
            Err(e @ EvalError::Missing { .. }) if !run.strict => {
                let note = format!(
                    "{task}: {e}; skipped (a labelled file can still be scored with `electra glue score`)"
                );
                observer.task_skipped(task, &note);
                report.skipped.push(note);
                continue;
            }
            Err(e) => return Err(e),
        };
        report
            .tasks
            .push(run_task(pre, run, task, &train, &dev, device, observer)?);
    }
    report.compute_averages();
    Ok(report)
}

/// The train and validation sets of a task (validation carved from train when there is no
/// dev file; train cut to a seeded subset when the recipe asks), or why the task cannot be
/// fine-tuned.
pub fn task_data(run: &GlueRun, task: Task) -> Result<(Dataset, Dataset), EvalError> {
    if !task.spec().trainable {
        return Err(EvalError::InvalidConfig(format!(
            "{task} has no training data: it is predicted with the MNLI model"
        )));
    }
    let config = &run.config;
    let full = data::load(&run.glue_dir, task, Split::Train)?;
    let (mut train, dev) = match data::load(&run.glue_dir, task, Split::Dev) {
        Ok(dev) => (full, dev),
        Err(EvalError::Missing { .. }) => {
            data::carve_validation(&full, config.validation_fraction, config.validation_seed)?
        }
        Err(e) => return Err(e),
    };
    if let Some(n) = config.max_train_examples
        && n < train.len()
    {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(config.validation_seed);
        train.examples.shuffle(&mut rng);
        train.examples.truncate(n);
    }
    Ok((train, dev))
}

/// The encoded rows of `split` of `task`, or `None` when the file is not there.
fn optional_set(
    run: &GlueRun,
    task: Task,
    split: Split,
    pre: &Pretrained<impl Backend>,
) -> Result<Option<EncodedSet>, EvalError> {
    match data::load(&run.glue_dir, task, split) {
        Ok(d) => Ok(Some(encode(
            &pre.tokenizer,
            &d.examples,
            run.config.max_seq_len,
        )?)),
        Err(EvalError::Missing { .. }) => Ok(None),
        Err(e) => Err(e),
    }
}

/// One task over every seed, then its prediction files from the best seed.
fn run_task<B: AutodiffBackend>(
    pre: &Pretrained<B>,
    run: &GlueRun,
    task: Task,
    train: &Dataset,
    dev: &Dataset,
    device: &B::Device,
    observer: &mut impl GlueObserver,
) -> Result<TaskResult, EvalError> {
    let config = &run.config;
    let train_examples = if config.double_unordered && task.symmetric() {
        with_swapped_pairs(&train.examples)
    } else {
        train.examples.clone()
    };
    let train_set = encode(&pre.tokenizer, &train_examples, config.max_seq_len)?;
    let dev_set = encode(&pre.tokenizer, &dev.examples, config.max_seq_len)?;
    let mut extra = Vec::new();
    for evaluation in task.spec().extra_evaluations {
        if let Some(set) = optional_set(run, task, evaluation.split, pre)? {
            extra.push((evaluation.prefix, set));
        }
    }
    let validation = dev.source.display().to_string();
    tracing::info!(%task, train = train_set.len(), validation = %validation, "task");
    let mut result = TaskResult {
        task: task.name().to_string(),
        validation,
        train_examples: train_set.len(),
        validation_examples: dev_set.len(),
        recipe: config.recipe(task, &pre.config),
        seeds: Vec::new(),
        summary: Default::default(),
        prediction_files: Vec::new(),
    };
    let mut best: Option<(f64, ElectraForSequenceClassification<B::InnerBackend>)> = None;
    for &seed in &run.seeds {
        observer.seed_started(task, seed);
        let trained = finetune::train(
            pre.encoder.clone(),
            &pre.config,
            task,
            &train_set,
            config,
            seed,
            device,
            observer,
        )?;
        let (scores, _) = finetune::evaluate(
            &trained.model,
            task,
            &dev_set,
            config.eval_batch_size,
            device,
        )?;
        let mut named = named_scores(&scores, "");
        for (prefix, set) in &extra {
            let (s, _) =
                finetune::evaluate(&trained.model, task, set, config.eval_batch_size, device)?;
            named.extend(named_scores(&s, prefix));
        }
        let seed_result = SeedResult {
            seed,
            scores: named,
            final_train_loss: final_train_loss(&trained),
            train_seconds: trained.seconds,
        };
        observer.seed_finished(task, &seed_result);
        result.seeds.push(seed_result);
        let key = scores
            .get(&task.paper_metric())
            .copied()
            .unwrap_or(f64::NAN);
        if best.as_ref().is_none_or(|(b, _)| key > *b || b.is_nan()) {
            best = Some((key, trained.model));
        }
    }
    result.summarise();
    if let Some((_, model)) = &best {
        result.prediction_files = write_submissions(run, task, model, pre, device)?;
    }
    Ok(result)
}

/// Mean training loss of the last epoch.
fn final_train_loss<B: Backend>(trained: &Trained<B>) -> f64 {
    crate::tuning::epochs::final_loss(&trained.history, trained.recipe.epochs)
}

/// The task's test-server files (those whose test file exists), predicted by `model`.
fn write_submissions<B: Backend>(
    run: &GlueRun,
    task: Task,
    model: &ElectraForSequenceClassification<B>,
    pre: &Pretrained<impl Backend>,
    device: &B::Device,
) -> Result<Vec<String>, EvalError> {
    let mut written = Vec::new();
    for submission in task.spec().submissions {
        let Some(set) = optional_set(run, submission.task, submission.split, pre)? else {
            continue;
        };
        let predictions = finetune::predict(model, task, &set, run.config.eval_batch_size, device);
        let path = run.predictions_dir.join(submission.name);
        write_predictions(&path, submission.task, &set.ids, &predictions)?;
        written.push(path.display().to_string());
    }
    Ok(written)
}

/// Scores by metric name, each name after `prefix`.
fn named_scores(scores: &Scores, prefix: &str) -> BTreeMap<String, f64> {
    scores
        .iter()
        .map(|(m, v)| (format!("{prefix}{}", m.name()), *v))
        .collect()
}
