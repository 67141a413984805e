//! `electra glue`: fine-tune and evaluate a pre-trained discriminator on several GLUE tasks
//! (a results table over seeds and test-server prediction files), and `electra glue score`:
//! score a prediction file against a labelled GLUE file. `electra finetune` (one task) runs
//! through the same code.

use std::path::PathBuf;

use anyhow::{Context, bail};
use burn::backend::Autodiff;
use burn::tensor::backend::Backend;
use electra_eval::Task;
use electra_eval::finetune::FinetuneConfig;
use electra_eval::glue::{self, GlueObserver};
use electra_eval::report::{Report, SeedResult, score_file};

use super::tuning::{RecipeArgs, StartArgs, StepBars};
use crate::backend::BackendTask;

/// What `electra finetune` and `electra glue` share: the checkpoint, the data and the recipe.
#[derive(Debug, Clone, clap::Args)]
pub struct TuneArgs {
    /// The GLUE directory in the `glue_data` layout (CoLA/, SST-2/, MRPC/, STS-B/, QQP/, MNLI/,
    /// QNLI/, RTE/, WNLI/, diagnostic/).
    #[arg(long, required = true)]
    pub glue_dir: Option<PathBuf>,
    /// The pre-trained model and the seeds.
    #[command(flatten)]
    pub start: StartArgs,
    /// Output directory: results.md, results.json, metrics.jsonl, predictions/. A directory
    /// that already holds any of them is refused unless --overwrite is given.
    #[arg(long, default_value = "glue-results")]
    pub out: PathBuf,
    /// Replace the results already in --out: results.md, results.json, metrics.jsonl and the
    /// whole predictions/ folder are removed (once the checkpoint has loaded), so no file of an
    /// earlier run stays beside the new ones.
    #[arg(long)]
    pub overwrite: bool,
    /// Learning rate, layer-wise decay, loss reduction.
    #[command(flatten)]
    pub recipe: RecipeArgs,
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
}

/// `--max-seq-len` when not given, unless the model's positions are fewer.
const DEFAULT_MAX_SEQ_LEN: usize = 128;

/// What `--out` receives.
const OUTPUTS: [&str; 4] = ["results.md", "results.json", "metrics.jsonl", "predictions"];

impl TuneArgs {
    fn config(&self) -> FinetuneConfig {
        FinetuneConfig {
            learning_rate: self.recipe.lr,
            layerwise_lr_decay: self.recipe.layerwise_decay,
            corrected_layerwise_decay: self.recipe.corrected_layerwise_decay,
            batch_size: self.batch_size,
            epochs: self.epochs,
            max_seq_len: self.max_seq_len.unwrap_or(DEFAULT_MAX_SEQ_LEN),
            double_unordered: !self.no_double_unordered,
            loss_reduction: self.recipe.loss_reduction(),
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
        return Ok(Task::ALL
            .into_iter()
            .filter(|t| t.spec().trainable)
            .collect());
    }
    let mut tasks = Vec::new();
    for name in text.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let task: Task = name.parse()?;
        if !task.spec().trainable {
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
        println!(
            "{task} seed {}: {} (train loss {:.4}, {:.0} s)",
            r.seed,
            format_scores(&r.scores),
            r.final_train_loss,
            r.train_seconds
        );
    }
}

impl BackendTask for GlueRun {
    type Output = Report;

    fn run<B: Backend>(self, device: B::Device) -> anyhow::Result<Report> {
        type AB<B> = Autodiff<B>;
        let tune = &self.tune;
        let glue_dir = tune.glue_dir.clone().context("--glue-dir is required")?;
        let seeds = tune.start.seed_list()?;
        let old_outputs =
            super::outdir::check(&tune.out, &OUTPUTS, "GLUE results", tune.overwrite)?;
        let mut config = tune.config();
        config.validate()?;
        let pre = tune.start.load::<AB<B>>(&device)?;
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
        for path in &old_outputs {
            super::outdir::remove(path)?;
        }
        std::fs::create_dir_all(&tune.out)
            .with_context(|| format!("cannot create {}", tune.out.display()))?;
        let metrics_path = tune.out.join("metrics.jsonl");
        let metrics = std::fs::File::create(&metrics_path)
            .with_context(|| format!("cannot create {}", metrics_path.display()))?;
        let run = glue::GlueRun {
            glue_dir: glue_dir.clone(),
            tasks: self.tasks.clone(),
            seeds,
            config,
            strict: self.strict,
            predictions_dir: tune.out.join("predictions"),
        };
        let mut bars = StepBars::new(metrics, Task::Rte.name());
        let report = glue::run(&pre, &run, &device, &mut bars)?;
        let (md_path, json_path) =
            super::tuning::write_results(&tune.out, &report.to_markdown(), &report)?;
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

fn format_scores(scores: &std::collections::BTreeMap<String, f64>) -> String {
    scores
        .iter()
        .map(|(k, v)| format!("{k} {:.2}", v * 100.0))
        .collect::<Vec<_>>()
        .join(", ")
}
