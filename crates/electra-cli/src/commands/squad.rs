//! `electra squad`: fine-tune and evaluate a pre-trained discriminator on SQuAD 1.1 or 2.0
//! over several seeds (resumable); `electra squad predict`: answer questions with a
//! fine-tuned model; `electra squad score`: score any predictions with the official
//! metrics. The work, the output directory's rules included, is `electra_eval::squad`'s
//! (`job.rs`); this file maps flags and prints.

use std::path::PathBuf;

use anyhow::Context;
use burn::backend::Autodiff;
use burn::tensor::backend::Backend;
use electra_backend::BackendTask;
use electra_eval::squad::finetune::SquadConfig;
use electra_eval::squad::job::{self, PredictJob, SquadJob};
use electra_eval::squad::model::HeadKind;
use electra_eval::squad::run::SquadReport;
use electra_eval::squad::{Version, metrics};

use super::tuning::{RecipeArgs, StartArgs};

/// The defaults of the recipe flags: the library's (stated once).
static D: std::sync::LazyLock<SquadConfig> = std::sync::LazyLock::new(SquadConfig::default);

#[derive(Debug, clap::Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct SquadArgs {
    /// `predict` or `score` instead of fine-tuning.
    #[command(subcommand)]
    pub command: Option<SquadCommand>,
    /// Checkpoint, data and recipe.
    #[command(flatten)]
    pub tune: TuneArgs,
}

#[derive(Debug, clap::Subcommand)]
pub enum SquadCommand {
    /// Answer questions (JSON in, JSON out) with a model fine-tuned by `electra squad`.
    Predict(PredictArgs),
    /// Score predictions against a SQuAD file exactly as the official scripts do.
    Score(ScoreArgs),
}

/// What `electra squad` fine-tunes, on what, and how.
#[derive(Debug, Clone, clap::Args)]
pub struct TuneArgs {
    /// The pre-trained model and the seeds.
    #[command(flatten)]
    pub start: StartArgs,
    /// The training file (official SQuAD JSON, e.g. train-v2.0.json).
    #[arg(long, required = true)]
    pub train: Option<PathBuf>,
    /// The evaluation file with gold answers (e.g. dev-v2.0.json).
    #[arg(long, required = true)]
    pub dev: Option<PathBuf>,
    /// SQuAD version: 1.1 or 2.0 (default: the training file's `version`).
    #[arg(long)]
    pub version: Option<Version>,
    /// Output directory. Running the same command again resumes after the finished seeds.
    #[arg(long, default_value = "squad-results")]
    pub out: PathBuf,
    /// Replace earlier results (and the seeds of another run) in --out.
    #[arg(long)]
    pub overwrite: bool,
    /// The head: `reference` (the ELECTRA reference's joint head with the answerability
    /// classifier) or `hf` (Hugging Face's ElectraForQuestionAnswering, exported as one).
    #[arg(long, default_value = "reference")]
    pub head: HeadKind,
    /// Leave out the reference head's answerability classifier.
    #[arg(long)]
    pub no_answerable_classifier: bool,
    /// Learning rate, layer-wise decay, loss reduction.
    #[command(flatten)]
    pub recipe: RecipeArgs,
    /// Epochs.
    #[arg(long, default_value_t = D.epochs)]
    pub epochs: usize,
    /// Windows per step.
    #[arg(long, default_value_t = D.batch_size)]
    pub batch_size: usize,
    /// Tokens per window (default 512, or the model's max_position_embeddings if smaller).
    #[arg(long)]
    pub max_seq_len: Option<usize>,
    /// Tokens between the starts of consecutive windows of a long context.
    #[arg(long, default_value_t = D.windows.doc_stride)]
    pub doc_stride: usize,
    /// Question tokens kept (longer questions are cut).
    #[arg(long, default_value_t = D.windows.max_query_length)]
    pub max_query_len: usize,
    /// Windows a context may need before it is refused.
    #[arg(long, default_value_t = D.windows.max_windows)]
    pub max_windows: usize,
    /// The reference head's beam: best starts, and ends per start.
    #[arg(long, default_value_t = D.beam_size)]
    pub beam: usize,
    /// N-best answers kept per question.
    #[arg(long, default_value_t = D.answers.n_best_size)]
    pub n_best: usize,
    /// Longest answer, in tokens.
    #[arg(long, default_value_t = D.answers.max_answer_length)]
    pub max_answer_len: usize,
    /// 2.0: the no-answer threshold of answers.json (default: the best-F1 one on --dev).
    #[arg(long, allow_hyphen_values = true)]
    pub null_threshold: Option<f64>,
    /// Windows per batch when predicting.
    #[arg(long, default_value_t = D.eval_batch_size)]
    pub eval_batch_size: usize,
    /// Train on a seeded subset of this many questions (for bounded measurements).
    #[arg(long)]
    pub max_train_questions: Option<usize>,
}

#[derive(Debug, clap::Args)]
pub struct PredictArgs {
    /// A model written by `electra squad` (OUT/model) or a Hugging Face
    /// ElectraForQuestionAnswering directory.
    #[arg(long)]
    pub checkpoint: PathBuf,
    /// Questions: an official SQuAD file, a list of {"id", "question", "context"} objects, or
    /// one such object.
    #[arg(long)]
    pub input: PathBuf,
    /// Where the answers go (JSON; written atomically).
    #[arg(long)]
    pub output: PathBuf,
    /// The tokenizer; default: the one in the checkpoint directory.
    #[arg(long)]
    pub tokenizer: Option<PathBuf>,
    /// SQuAD version of the model (default: recorded in its config.json, else 2.0).
    #[arg(long)]
    pub version: Option<Version>,
    /// 2.0: answer "" when the no-answer score exceeds this (default: the threshold chosen
    /// on the dev set at training, else the reference's -2.75).
    #[arg(long, allow_hyphen_values = true)]
    pub null_threshold: Option<f64>,
    /// Tokens per window (default 512, or the model's max_position_embeddings if smaller).
    #[arg(long)]
    pub max_seq_len: Option<usize>,
    /// Include each question's n-best answers.
    #[arg(long)]
    pub nbest: bool,
}

#[derive(Debug, clap::Args)]
pub struct ScoreArgs {
    /// The SQuAD file with gold answers (e.g. dev-v2.0.json).
    pub data: PathBuf,
    /// The predictions: a JSON object mapping question ids to answer texts.
    pub predictions: PathBuf,
    /// 2.0: the no-answer scores (a JSON object mapping question ids to numbers).
    #[arg(long)]
    pub na_prob: Option<PathBuf>,
    /// 2.0: predict "" where the no-answer score exceeds this (the official default 1.0).
    #[arg(long, default_value_t = 1.0, allow_hyphen_values = true)]
    pub na_prob_thresh: f64,
    /// The version whose script to follow (default: the data file's `version`).
    #[arg(long)]
    pub version: Option<Version>,
}

/// `electra squad score`: prints the official script's output.
pub fn score(args: &ScoreArgs) -> anyhow::Result<()> {
    let (version, scores) = metrics::score_files(
        &args.data,
        &args.predictions,
        args.na_prob.as_deref(),
        args.version,
        args.na_prob_thresh,
    )?;
    if let metrics::Scores::V1(s) = &scores {
        for id in &s.missing {
            eprintln!("Unanswered question {id} will receive score 0.");
        }
    }
    eprintln!("SQuAD {version} ({})", args.data.display());
    println!("{}", scores.to_official_json());
    Ok(())
}

impl TuneArgs {
    fn config(&self) -> anyhow::Result<SquadConfig> {
        let mut config = SquadConfig {
            head: self.head,
            answerable_classifier: !self.no_answerable_classifier,
            learning_rate: self.recipe.lr,
            layerwise_lr_decay: self.recipe.layerwise_decay,
            corrected_layerwise_decay: self.recipe.corrected_layerwise_decay,
            batch_size: self.batch_size,
            epochs: self.epochs,
            loss_reduction: self.recipe.loss_reduction(),
            beam_size: self.beam,
            eval_batch_size: self.eval_batch_size,
            max_train_questions: self.max_train_questions,
            null_threshold: self.null_threshold,
            ..SquadConfig::default()
        };
        config.windows.doc_stride = self.doc_stride;
        config.windows.max_query_length = self.max_query_len;
        config.windows.max_windows = self.max_windows;
        if let Some(n) = self.max_seq_len {
            config.windows.max_seq_length = n;
        }
        config.answers.n_best_size = self.n_best;
        config.answers.max_answer_length = self.max_answer_len;
        Ok(config)
    }
}

impl BackendTask for TuneArgs {
    type Output = anyhow::Result<SquadReport>;

    fn run<B: Backend>(self, device: B::Device) -> anyhow::Result<SquadReport> {
        let job = SquadJob {
            start: self.start.start()?,
            train: self.train.clone().context("--train is required")?,
            dev: self.dev.clone().context("--dev is required")?,
            version: self.version,
            config: self.config()?,
            max_seq_len_given: self.max_seq_len.is_some(),
            out: self.out.clone(),
            overwrite: self.overwrite,
        };
        let (report, md, json) = job::run_job::<Autodiff<B>>(&job, &device)?;
        println!("\n{}", report.to_markdown());
        println!("wrote {} and {}", md.display(), json.display());
        Ok(report)
    }
}

impl BackendTask for PredictArgs {
    type Output = anyhow::Result<()>;

    fn run<B: Backend>(self, device: B::Device) -> anyhow::Result<()> {
        let job = PredictJob {
            checkpoint: self.checkpoint.clone(),
            input: self.input,
            output: self.output,
            tokenizer: self.tokenizer,
            version: self.version,
            null_threshold: self.null_threshold,
            max_seq_len: self.max_seq_len,
            nbest: self.nbest,
        };
        let done = job::predict_file::<B>(&job, &device)
            .with_context(|| format!("cannot answer with {}", self.checkpoint.display()))?;
        println!(
            "answered {} questions (SQuAD {}, no-answer threshold {}); wrote {}",
            done.answered,
            done.version,
            done.null_threshold,
            job.output.display()
        );
        Ok(())
    }
}
