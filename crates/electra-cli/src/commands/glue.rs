//! `electra glue`: fine-tune and evaluate a pre-trained discriminator on several GLUE tasks
//! (a results table over seeds and test-server prediction files), and `electra glue score`:
//! score a prediction file against a labelled GLUE file. `electra finetune` (one task) runs
//! through the same code.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use burn::backend::Autodiff;
use burn::tensor::backend::Backend;
use electra_eval::data::{self, Dataset};
use electra_eval::features::{EncodedSet, encode, with_swapped_pairs};
use electra_eval::finetune::{self, FinetuneConfig, Progress, StepRecord};
use electra_eval::metrics::{Predictions, Scores};
use electra_eval::model::{ElectraForSequenceClassification, LossReduction};
use electra_eval::pretrained::{self, Pretrained};
use electra_eval::report::{Report, SeedResult, TaskResult, score_file, write_predictions};
use electra_eval::{EvalError, Split, Task};
use indicatif::{ProgressBar, ProgressStyle};
use rand::SeedableRng;
use rand::seq::SliceRandom;

use crate::backend::BackendTask;

/// What `electra finetune` and `electra glue` share: the checkpoint, the data and the recipe.
#[derive(Debug, Clone, clap::Args)]
pub struct TuneArgs {
    /// The GLUE directory in the `glue_data` layout (CoLA/, SST-2/, MRPC/, STS-B/, QQP/, MNLI/,
    /// QNLI/, RTE/, WNLI/, diagnostic/).
    #[arg(long, required = true)]
    pub glue_dir: Option<PathBuf>,
    /// The pre-trained model: a Hugging Face ELECTRA directory (config.json +
    /// model.safetensors, e.g. `OUT/discriminator` from `electra export`; ElectraForPreTraining
    /// or ElectraForMaskedLM, the head is dropped) or an `electra pretrain` run directory of any
    /// objective (its newest complete checkpoint's discriminator-sized encoder).
    #[arg(long, required = true)]
    pub checkpoint: Option<PathBuf>,
    /// The tokenizer (vocab.txt or tokenizer.json); default: the one beside the checkpoint.
    #[arg(long)]
    pub tokenizer: Option<PathBuf>,
    /// Ignore the checkpoint's weights: fine-tune a freshly initialised encoder of the same
    /// configuration (a baseline).
    #[arg(long)]
    pub random_init: bool,
    /// Number of fine-tuning seeds per task (the paper reports the median of 10).
    #[arg(long, default_value_t = 5)]
    pub seeds: u64,
    /// The first seed; seeds are first, first+1, ...
    #[arg(long, default_value_t = 1)]
    pub first_seed: u64,
    /// Output directory: results.md, results.json, metrics.jsonl, predictions/. A directory
    /// that already holds any of them is refused unless --overwrite is given.
    #[arg(long, default_value = "glue-results")]
    pub out: PathBuf,
    /// Replace the results already in --out: results.md, results.json, metrics.jsonl and the
    /// whole predictions/ folder are removed (once the checkpoint has loaded), so no file of an
    /// earlier run stays beside the new ones.
    #[arg(long)]
    pub overwrite: bool,
    /// Peak learning rate (default by model size: 3e-4 Small, 1e-4 Base, 5e-5 Large).
    #[arg(long)]
    pub lr: Option<f64>,
    /// Layer-wise LR decay α (default 0.8; 0.9 for Large; 1 disables).
    #[arg(long)]
    pub layerwise_decay: Option<f64>,
    /// Use the corrected layer-wise formula (top layer ×α) instead of the reference's (×α²).
    #[arg(long)]
    pub corrected_layerwise_decay: bool,
    /// Epochs (default: 3; 10 for RTE and STS-B).
    #[arg(long)]
    pub epochs: Option<usize>,
    /// Examples per step.
    #[arg(long, default_value_t = 32)]
    pub batch_size: usize,
    /// Tokens per example (default: 128, or the model's max_position_embeddings if smaller).
    #[arg(long)]
    pub max_seq_len: Option<usize>,
    /// Train on at most this many examples (a seeded subset; for bounded measurements).
    #[arg(long)]
    pub max_train_examples: Option<usize>,
    /// Share of train held out for validation when a task has no dev file.
    #[arg(long, default_value_t = 0.1)]
    pub validation_fraction: f64,
    /// Do not double the MRPC and STS-B training sets with swapped pairs.
    #[arg(long)]
    pub no_double_unordered: bool,
    /// Average the per-example losses of a batch instead of summing them (the reference sums).
    #[arg(long)]
    pub mean_loss: bool,
}

/// `--max-seq-len` when not given, unless the model's positions are fewer.
const DEFAULT_MAX_SEQ_LEN: usize = 128;

/// What `--out` receives.
const OUTPUTS: [&str; 4] = ["results.md", "results.json", "metrics.jsonl", "predictions"];

impl TuneArgs {
    fn config(&self) -> FinetuneConfig {
        FinetuneConfig {
            learning_rate: self.lr,
            layerwise_lr_decay: self.layerwise_decay,
            corrected_layerwise_decay: self.corrected_layerwise_decay,
            batch_size: self.batch_size,
            epochs: self.epochs,
            max_seq_len: self.max_seq_len.unwrap_or(DEFAULT_MAX_SEQ_LEN),
            double_unordered: !self.no_double_unordered,
            loss_reduction: if self.mean_loss {
                LossReduction::Mean
            } else {
                LossReduction::Sum
            },
            validation_fraction: self.validation_fraction,
            max_train_examples: self.max_train_examples,
            ..FinetuneConfig::default()
        }
    }
}

/// Arguments of `electra glue`.
#[derive(Debug, clap::Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct GlueArgs {
    /// `score`: score a prediction file instead of fine-tuning.
    #[command(subcommand)]
    pub command: Option<GlueCommand>,
    /// Tasks: `all`, or a comma-separated list (cola,sst-2,mrpc,sts-b,qqp,mnli,qnli,rte,wnli).
    /// Tasks whose folder or train.tsv is missing are skipped with a note.
    #[arg(long, default_value = "all")]
    pub tasks: String,
    /// Checkpoint, data and recipe.
    #[command(flatten)]
    pub tune: TuneArgs,
}

/// `electra glue ...` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum GlueCommand {
    /// Score a prediction file (test-server format) against a labelled GLUE file.
    Score(ScoreArgs),
}

/// Arguments of `electra glue score`.
#[derive(Debug, clap::Args)]
pub struct ScoreArgs {
    /// The task (cola, sst-2, mrpc, sts-b, qqp, mnli, qnli, rte, wnli).
    #[arg(long)]
    pub task: String,
    /// The predictions: `index<TAB>prediction` rows after a header, as written for the GLUE
    /// server.
    #[arg(long)]
    pub predictions: PathBuf,
    /// The labelled file (e.g. the task's dev.tsv).
    #[arg(long)]
    pub gold: PathBuf,
}

/// `electra glue score`.
pub fn score(args: &ScoreArgs) -> anyhow::Result<()> {
    let task: Task = args.task.parse()?;
    let scores = score_file(task, &args.predictions, &args.gold)?;
    for (metric, value) in &scores {
        println!("{task} {}: {:.2}", metric.name(), value * 100.0);
    }
    Ok(())
}

/// Parses `all` or a comma-separated task list.
pub fn parse_tasks(text: &str) -> anyhow::Result<Vec<Task>> {
    if text.trim().eq_ignore_ascii_case("all") {
        return Ok(Task::ALL.into_iter().filter(|t| *t != Task::Ax).collect());
    }
    let mut tasks = Vec::new();
    for name in text.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let task: Task = name.parse()?;
        if task == Task::Ax {
            bail!("AX has no training data: it is predicted with the MNLI model (run mnli)");
        }
        if !tasks.contains(&task) {
            tasks.push(task);
        }
    }
    if tasks.is_empty() {
        bail!("--tasks is empty: name at least one task, or `all`");
    }
    Ok(tasks)
}

/// A fine-tuning run over tasks, ready to dispatch on a backend.
#[derive(Debug)]
pub struct GlueRun {
    /// The tasks.
    pub tasks: Vec<Task>,
    /// Checkpoint, data and recipe.
    pub tune: TuneArgs,
    /// Fail (instead of skipping) when a task cannot be fine-tuned.
    pub strict: bool,
}

impl GlueArgs {
    /// The run these arguments ask for.
    pub fn into_run(self) -> anyhow::Result<GlueRun> {
        Ok(GlueRun {
            tasks: parse_tasks(&self.tasks)?,
            tune: self.tune,
            strict: false,
        })
    }
}

/// Per-epoch progress bars and the per-step metrics file.
struct Bars {
    label: String,
    bar: Option<ProgressBar>,
    metrics: std::fs::File,
    task: Task,
    seed: u64,
}

impl Progress for Bars {
    fn epoch_start(&mut self, epoch: usize, epochs: usize, steps: usize) {
        let bar = ProgressBar::new(steps as u64);
        if let Ok(style) = ProgressStyle::with_template(
            "{prefix} [{elapsed_precise}] {bar:30} {pos}/{len} steps {msg}",
        ) {
            bar.set_style(style);
        }
        bar.set_prefix(format!("{} epoch {}/{epochs}", self.label, epoch + 1));
        bar.enable_steady_tick(Duration::from_millis(500));
        self.bar = Some(bar);
    }

    fn step(&mut self, r: &StepRecord) {
        if let Some(bar) = &self.bar {
            bar.inc(1);
            bar.set_message(format!("loss {:.4} lr {:.2e}", r.loss, r.lr));
        }
        let line = serde_json::json!({
            "task": self.task.name(), "seed": self.seed, "step": r.step, "epoch": r.epoch,
            "loss": r.loss, "lr": r.lr, "grad_norm": r.grad_norm,
        });
        if let Err(e) = writeln!(self.metrics, "{line}") {
            tracing::warn!("cannot write metrics.jsonl: {e}");
        }
    }

    fn epoch_end(&mut self, _epoch: usize, mean_loss: f64) {
        if let Some(bar) = self.bar.take() {
            bar.finish_with_message(format!("mean loss {mean_loss:.4}"));
        }
    }
}

/// The train and validation sets of a task (validation carved from train when there is no
/// dev file), or why the task cannot be fine-tuned.
fn task_data(
    glue_dir: &Path,
    task: Task,
    config: &FinetuneConfig,
) -> Result<(Dataset, Dataset), EvalError> {
    let full = data::load(glue_dir, task, Split::Train)?;
    let (mut train, dev) = match data::load(glue_dir, task, Split::Dev) {
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

fn optional_set(
    glue_dir: &Path,
    task: Task,
    split: Split,
    pre: &Pretrained<impl Backend>,
    max_len: usize,
) -> anyhow::Result<Option<EncodedSet>> {
    match data::load(glue_dir, task, split) {
        Ok(d) => Ok(Some(encode(&pre.tokenizer, &d.examples, max_len)?)),
        Err(EvalError::Missing { .. }) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

impl BackendTask for GlueRun {
    type Output = Report;

    fn run<B: Backend>(self, device: B::Device) -> anyhow::Result<Report> {
        type AB<B> = Autodiff<B>;
        let tune = &self.tune;
        let glue_dir = tune.glue_dir.clone().context("--glue-dir is required")?;
        let checkpoint = tune
            .checkpoint
            .clone()
            .context("--checkpoint is required")?;
        if tune.seeds == 0 {
            bail!("--seeds must be at least 1");
        }
        let old_outputs =
            super::outdir::check(&tune.out, &OUTPUTS, "GLUE results", tune.overwrite)?;
        let mut config = tune.config();
        config.validate()?;
        <AB<B> as Backend>::seed(&device, tune.first_seed);
        let pre = pretrained::load::<AB<B>>(
            &checkpoint,
            tune.tokenizer.as_deref(),
            tune.random_init,
            &device,
        )
        .with_context(|| format!("cannot load the checkpoint {}", checkpoint.display()))?;
        if tune.max_seq_len.is_none() {
            // The default fits the model it is given (a demo run has 64 positions).
            config.max_seq_len = config.max_seq_len.min(pre.config.max_position_embeddings);
        }
        if config.max_seq_len > pre.config.max_position_embeddings {
            bail!(
                "--max-seq-len {} exceeds the model's max_position_embeddings {}",
                config.max_seq_len,
                pre.config.max_position_embeddings
            );
        }
        tracing::info!(checkpoint = %pre.description, "fine-tuning");
        for path in &old_outputs {
            super::outdir::remove(path)?;
        }
        std::fs::create_dir_all(&tune.out)
            .with_context(|| format!("cannot create {}", tune.out.display()))?;
        let metrics_path = tune.out.join("metrics.jsonl");
        let metrics = std::fs::File::create(&metrics_path)
            .with_context(|| format!("cannot create {}", metrics_path.display()))?;
        let seeds: Vec<u64> = (0..tune.seeds).map(|i| tune.first_seed + i).collect();
        let mut report = Report {
            checkpoint: pre.description.clone(),
            config: config.clone(),
            seeds: seeds.clone(),
            tasks: Vec::new(),
            skipped: Vec::new(),
            paper_average: None,
            paper_average_tasks: Vec::new(),
            leaderboard_average: None,
            leaderboard_average_tasks: Vec::new(),
        };
        let mut bars = Bars {
            label: String::new(),
            bar: None,
            metrics,
            task: Task::Rte,
            seed: 0,
        };
        for &task in &self.tasks {
            let (train_data, dev_data) = match task_data(&glue_dir, task, &config) {
                Ok(d) => d,
                Err(e @ EvalError::Missing { .. }) if !self.strict => {
                    let note = format!(
                        "{task}: {e}; skipped (a labelled file can still be scored with `electra glue score`)"
                    );
                    eprintln!("{note}");
                    report.skipped.push(note);
                    continue;
                }
                Err(e) => return Err(e).with_context(|| format!("cannot read {task}")),
            };
            let train_examples = if config.double_unordered && task.symmetric() {
                with_swapped_pairs(&train_data.examples)
            } else {
                train_data.examples.clone()
            };
            let train_set = encode(&pre.tokenizer, &train_examples, config.max_seq_len)?;
            let dev_set = encode(&pre.tokenizer, &dev_data.examples, config.max_seq_len)?;
            let mismatched = if task == Task::Mnli {
                optional_set(
                    &glue_dir,
                    task,
                    Split::DevMismatched,
                    &pre,
                    config.max_seq_len,
                )?
            } else {
                None
            };
            let validation = dev_data.source.display().to_string();
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
            let mut best: Option<(f64, ElectraForSequenceClassification<B>)> = None;
            for &seed in &seeds {
                bars.label = format!("{task} seed {seed}");
                bars.task = task;
                bars.seed = seed;
                let trained = finetune::train(
                    pre.encoder.clone(),
                    &pre.config,
                    task,
                    &train_set,
                    &config,
                    seed,
                    &device,
                    &mut bars,
                )?;
                let (scores, _) = finetune::evaluate(
                    &trained.model,
                    task,
                    &dev_set,
                    config.eval_batch_size,
                    &device,
                )?;
                let mut named = named_scores(&scores);
                if let Some(mm) = &mismatched {
                    let (s, _) = finetune::evaluate(
                        &trained.model,
                        task,
                        mm,
                        config.eval_batch_size,
                        &device,
                    )?;
                    for (k, v) in named_scores(&s) {
                        named.insert(format!("mismatched_{k}"), v);
                    }
                }
                let key = scores
                    .get(&task.paper_metric())
                    .copied()
                    .unwrap_or(f64::NAN);
                let epochs = trained.recipe.epochs;
                let last: Vec<f64> = trained
                    .history
                    .iter()
                    .filter(|r| r.epoch + 1 == epochs)
                    .map(|r| r.loss)
                    .collect();
                let final_train_loss = last.iter().sum::<f64>() / last.len().max(1) as f64;
                println!(
                    "{task} seed {seed}: {} (train loss {final_train_loss:.4}, {:.0} s)",
                    format_scores(&named),
                    trained.seconds
                );
                result.seeds.push(SeedResult {
                    seed,
                    scores: named,
                    final_train_loss,
                    train_seconds: trained.seconds,
                });
                if best.as_ref().is_none_or(|(b, _)| key > *b || b.is_nan()) {
                    best = Some((key, trained.model));
                }
            }
            result.summarise();
            if let Some((_, model)) = &best {
                let mut files: Vec<(Task, Split, &str)> = task
                    .submission_files()
                    .iter()
                    .map(|&(split, name)| (task, split, name))
                    .collect();
                if task == Task::Mnli {
                    files.extend(
                        Task::Ax
                            .submission_files()
                            .iter()
                            .map(|&(s, n)| (Task::Ax, s, n)),
                    );
                }
                for (file_task, split, name) in files {
                    let Some(set) =
                        optional_set(&glue_dir, file_task, split, &pre, config.max_seq_len)?
                    else {
                        continue;
                    };
                    let predictions: Predictions =
                        finetune::predict(model, task, &set, config.eval_batch_size, &device);
                    let path = tune.out.join("predictions").join(name);
                    write_predictions(&path, file_task, &set.ids, &predictions)?;
                    result.prediction_files.push(path.display().to_string());
                }
            }
            report.tasks.push(result);
        }
        report.compute_averages();
        let md = report.to_markdown();
        let md_path = tune.out.join("results.md");
        std::fs::write(&md_path, &md)
            .with_context(|| format!("cannot write {}", md_path.display()))?;
        let json_path = tune.out.join("results.json");
        std::fs::write(&json_path, serde_json::to_string_pretty(&report)?)
            .with_context(|| format!("cannot write {}", json_path.display()))?;
        println!("\n{md}");
        println!(
            "wrote {}, {} and {}",
            md_path.display(),
            json_path.display(),
            metrics_path.display()
        );
        if report.tasks.is_empty() {
            bail!(
                "no task could be fine-tuned from {} (see the notes above)",
                glue_dir.display()
            );
        }
        Ok(report)
    }
}

fn named_scores(scores: &Scores) -> std::collections::BTreeMap<String, f64> {
    scores
        .iter()
        .map(|(m, v)| (m.name().to_string(), *v))
        .collect()
}

fn format_scores(scores: &std::collections::BTreeMap<String, f64>) -> String {
    scores
        .iter()
        .map(|(k, v)| format!("{k} {:.2}", v * 100.0))
        .collect::<Vec<_>>()
        .join(", ")
}
