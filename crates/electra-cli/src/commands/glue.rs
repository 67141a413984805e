//! `electra glue`: fine-tune and evaluate a pre-trained discriminator on several GLUE tasks
//! (a results table over seeds and test-server prediction files), and `electra glue score`:
//! score a prediction file against a labelled GLUE file. `electra finetune` (one task) runs
//! through the same code: `electra_eval::glue::job`.

use std::path::PathBuf;

use anyhow::Context;
use burn::backend::Autodiff;
use burn::tensor::backend::Backend;
use electra_backend::BackendTask;
use electra_eval::Task;
use electra_eval::finetune::FinetuneConfig;
use electra_eval::glue::job::{self, GlueJob};
use electra_eval::report::{Report, score_file};

use super::tuning::{RecipeArgs, StartArgs};

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

impl TuneArgs {
    /// The library's job for these flags.
    pub fn job(self, tasks: Vec<Task>, strict: bool) -> anyhow::Result<GlueJob> {
        let defaults = FinetuneConfig::default();
        let config = FinetuneConfig {
            learning_rate: self.recipe.lr,
            layerwise_lr_decay: self.recipe.layerwise_decay,
            corrected_layerwise_decay: self.recipe.corrected_layerwise_decay,
            batch_size: self.batch_size,
            epochs: self.epochs,
            max_seq_len: self.max_seq_len.unwrap_or(defaults.max_seq_len),
            double_unordered: !self.no_double_unordered,
            loss_reduction: self.recipe.loss_reduction(),
            validation_fraction: self.validation_fraction,
            max_train_examples: self.max_train_examples,
            ..defaults
        };
        Ok(GlueJob {
            start: self.start.start()?,
            glue_dir: self.glue_dir.clone().context("--glue-dir is required")?,
            tasks,
            config,
            max_seq_len_given: self.max_seq_len.is_some(),
            strict,
            out: self.out,
            overwrite: self.overwrite,
        })
    }
}

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

#[derive(Debug, clap::Subcommand)]
pub enum GlueCommand {
    /// Score a prediction file (test-server format) against a labelled GLUE file.
    Score(ScoreArgs),
}

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

impl GlueArgs {
    /// The run these arguments ask for.
    pub fn into_run(self) -> anyhow::Result<GlueRun> {
        Ok(GlueRun(
            self.tune.job(job::parse_tasks(&self.tasks)?, false)?,
        ))
    }
}

/// A GLUE job, ready to dispatch on a backend.
#[derive(Debug)]
pub struct GlueRun(pub GlueJob);

impl BackendTask for GlueRun {
    type Output = anyhow::Result<Report>;

    fn run<B: Backend>(self, device: B::Device) -> anyhow::Result<Report> {
        let done = job::run_job::<Autodiff<B>>(&self.0, &device)?;
        println!("\n{}", done.report.to_markdown());
        let [md, json, metrics] = &done.files;
        println!(
            "wrote {}, {} and {}",
            md.display(),
            json.display(),
            metrics.display()
        );
        Ok(done.report)
    }
}
