//! `electra squad`: fine-tune and evaluate a pre-trained discriminator on SQuAD 1.1 or 2.0
//! over several seeds (resumable); `electra squad predict`: answer questions with a
//! fine-tuned model; `electra squad score`: score any predictions with the official
//! metrics. The work is `electra_eval::squad`'s; this file reads flags, shows progress and
//! prints.

use std::path::PathBuf;

use anyhow::Context;
use burn::backend::Autodiff;
use burn::tensor::backend::Backend;
use electra_eval::squad::finetune::{REFERENCE_NULL_THRESHOLD, SquadConfig};
use electra_eval::squad::model::HeadKind;
use electra_eval::squad::run::{self, SeedResult, SquadObserver, SquadReport};
use electra_eval::squad::{Version, hf, metrics, predict};

use super::tuning::{RecipeArgs, StartArgs, StepBars};
use crate::backend::BackendTask;

/// Arguments of `electra squad`.
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

/// `electra squad ...` subcommands.
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
    pub version: Option<String>,
    /// Output directory. Running the same command again resumes after the finished seeds.
    #[arg(long, default_value = "squad-results")]
    pub out: PathBuf,
    /// Replace earlier results (and the seeds of another run) in --out.
    #[arg(long)]
    pub overwrite: bool,
    /// The head: `reference` (the ELECTRA reference's joint head with the answerability
    /// classifier) or `hf` (Hugging Face's ElectraForQuestionAnswering, exported as one).
    #[arg(long, default_value = "reference")]
    pub head: String,
    /// Leave out the reference head's answerability classifier.
    #[arg(long)]
    pub no_answerable_classifier: bool,
    /// Learning rate, layer-wise decay, loss reduction.
    #[command(flatten)]
    pub recipe: RecipeArgs,
    /// Epochs.
    #[arg(long, default_value_t = 2)]
    pub epochs: usize,
    /// Windows per step.
    #[arg(long, default_value_t = 32)]
    pub batch_size: usize,
    /// Tokens per window (default 512, or the model's max_position_embeddings if smaller).
    #[arg(long)]
    pub max_seq_len: Option<usize>,
    /// Tokens between the starts of consecutive windows of a long context.
    #[arg(long, default_value_t = 128)]
    pub doc_stride: usize,
    /// Question tokens kept (longer questions are cut).
    #[arg(long, default_value_t = 64)]
    pub max_query_len: usize,
    /// Windows a context may need before it is refused.
    #[arg(long, default_value_t = 100)]
    pub max_windows: usize,
    /// The reference head's beam: best starts, and ends per start.
    #[arg(long, default_value_t = 20)]
    pub beam: usize,
    /// N-best answers kept per question.
    #[arg(long, default_value_t = 20)]
    pub n_best: usize,
    /// Longest answer, in tokens.
    #[arg(long, default_value_t = 30)]
    pub max_answer_len: usize,
    /// 2.0: the no-answer threshold of answers.json (default: the best-F1 one on --dev).
    #[arg(long, allow_hyphen_values = true)]
    pub null_threshold: Option<f64>,
    /// Windows per batch when predicting.
    #[arg(long, default_value_t = 16)]
    pub eval_batch_size: usize,
    /// Train on a seeded subset of this many questions (for bounded measurements).
    #[arg(long)]
    pub max_train_questions: Option<usize>,
}

/// Arguments of `electra squad predict`.
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
    pub version: Option<String>,
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

/// Arguments of `electra squad score`.
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
    pub version: Option<String>,
}

fn version(text: &Option<String>) -> anyhow::Result<Option<Version>> {
    Ok(text.as_deref().map(str::parse).transpose()?)
}

/// `electra squad score`: prints the official script's output.
pub fn score(args: &ScoreArgs) -> anyhow::Result<()> {
    let (version, scores) = metrics::score_files(
        &args.data,
        &args.predictions,
        args.na_prob.as_deref(),
        version(&args.version)?,
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

/// What `--out` receives once a run is complete: a directory holding any of them is refused
/// without `--overwrite`. (`seeds/`, `model/` and `metrics.jsonl` are a run's resumable state:
/// an interrupted run resumes from them; `--overwrite` removes them too.)
const OUTPUTS: [&str; 6] = [
    "results.md",
    "results.json",
    "predictions.json",
    "null_odds.json",
    "answers.json",
    "nbest_predictions.json",
];

/// A run's resumable state, removed by `--overwrite`.
const STATE: [&str; 3] = ["seeds", "model", "metrics.jsonl"];

impl TuneArgs {
    fn config(&self) -> anyhow::Result<SquadConfig> {
        let mut config = SquadConfig {
            head: self.head.parse::<HeadKind>()?,
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

impl SquadObserver for StepBars {
    fn data_ready(
        &mut self,
        train: &electra_eval::squad::features::QaSet,
        dev: &electra_eval::squad::features::QaSet,
    ) {
        eprintln!(
            "train: {} questions in {} windows ({} skipped); dev: {} questions in {} windows",
            train.examples.len(),
            train.len(),
            train.skipped.len(),
            dev.examples.len(),
            dev.len()
        );
    }

    fn seed_resumed(&mut self, r: &SeedResult) {
        println!("seed {} (finished earlier): {}", r.seed, format_scores(r));
    }

    fn seed_started(&mut self, seed: u64) {
        self.label = format!("seed {seed}");
        self.seed = seed;
    }

    fn evaluation_started(&mut self, windows: usize) {
        self.start(windows, format!("seed {} dev", self.seed), "windows");
    }

    fn evaluated(&mut self, windows: usize) {
        self.advance(windows);
    }

    fn seed_finished(&mut self, r: &SeedResult) {
        self.finish(String::new());
        println!(
            "seed {}: {} (train loss {:.4}, {:.0} s)",
            r.seed,
            format_scores(r),
            r.final_train_loss,
            r.train_seconds
        );
    }
}

fn format_scores(r: &SeedResult) -> String {
    r.scores
        .iter()
        .filter(|(k, _)| {
            ["exact_match", "exact", "f1", "best_exact", "best_f1"].contains(&k.as_str())
        })
        .map(|(k, v)| format!("{k} {v:.2}"))
        .collect::<Vec<_>>()
        .join(", ")
}

impl BackendTask for TuneArgs {
    type Output = SquadReport;

    fn run<B: Backend>(self, device: B::Device) -> anyhow::Result<SquadReport> {
        type AB<B> = Autodiff<B>;
        let train = self.train.clone().context("--train is required")?;
        let dev = self.dev.clone().context("--dev is required")?;
        let seeds = self.start.seed_list()?;
        let old = super::outdir::check(&self.out, &OUTPUTS, "SQuAD results", self.overwrite)?;
        let mut config = self.config()?;
        config.validate()?;
        let pre = self.start.load::<AB<B>>(&device)?;
        if self.max_seq_len.is_none() {
            // The default fits the model it is given (the reference's 512 tokens otherwise).
            config.windows = config.windows.fitted(pre.config.max_position_embeddings);
            config.windows.validate()?;
        }
        for path in &old {
            super::outdir::remove(path)?;
        }
        if self.overwrite {
            for name in STATE {
                let path = self.out.join(name);
                if path.exists() {
                    super::outdir::remove(&path)?;
                }
            }
        }
        std::fs::create_dir_all(&self.out)
            .with_context(|| format!("cannot create {}", self.out.display()))?;
        let metrics_path = self.out.join("metrics.jsonl");
        let metrics = std::fs::OpenOptions::new()
            .create(true)
            .append(!self.overwrite)
            .write(true)
            .truncate(self.overwrite)
            .open(&metrics_path)
            .with_context(|| format!("cannot open {}", metrics_path.display()))?;
        let squad_run = run::SquadRun {
            train,
            dev,
            version: version(&self.version)?,
            seeds,
            config,
            out: self.out.clone(),
            overwrite: self.overwrite,
        };
        let mut bars = StepBars::new(metrics, "squad");
        let report = run::run(&pre, &squad_run, &device, &mut bars)?;
        let (md_path, json_path) =
            super::tuning::write_results(&self.out, &report.to_markdown(), &report)?;
        println!("wrote {} and {}", md_path.display(), json_path.display());
        Ok(report)
    }
}

impl BackendTask for PredictArgs {
    type Output = ();

    fn run<B: Backend>(self, device: B::Device) -> anyhow::Result<()> {
        let (model, hf_config) = hf::load::<B>(&self.checkpoint, &device)
            .with_context(|| format!("cannot load {}", self.checkpoint.display()))?;
        let tokenizer_path = self.tokenizer.clone().unwrap_or(self.checkpoint.clone());
        let tokenizer = electra_data::Tokenizer::from_path(&tokenizer_path)
            .context("pass --tokenizer (the vocab.txt or tokenizer.json of the model)")?;
        let recorded = |key: &str| hf_config.extra.get(key).cloned();
        let version = match version(&self.version)? {
            Some(v) => v,
            None => recorded(hf::VERSION_KEY)
                .and_then(|v| v.as_str().and_then(|s| s.parse().ok()))
                .unwrap_or(Version::V2_0),
        };
        let threshold = self
            .null_threshold
            .or_else(|| recorded(hf::NULL_THRESHOLD_KEY).and_then(|v| v.as_f64()))
            .unwrap_or(REFERENCE_NULL_THRESHOLD);
        // The settings the model was fine-tuned with (windows, beam, answers), else defaults.
        let mut config: SquadConfig = recorded(hf::CONFIG_KEY)
            .and_then(|v| serde_json::from_value(v).ok())
            .unwrap_or_default();
        if let Some(n) = self.max_seq_len {
            config.windows.max_seq_length = n;
        }
        config.windows = config
            .windows
            .fitted(hf_config.model.max_position_embeddings);
        config.windows.validate()?;
        let questions = predict::read_questions(&self.input)?;
        let answers = predict::answer(
            &model, &tokenizer, questions, version, &config, threshold, self.nbest, &device,
        )?;
        let text = serde_json::to_string_pretty(&answers)? + "\n";
        electra_fs::write_atomic(&self.output, text.as_bytes())
            .with_context(|| format!("cannot write {}", self.output.display()))?;
        println!(
            "answered {} questions (SQuAD {version}, no-answer threshold {threshold}); wrote {}",
            answers.len(),
            self.output.display()
        );
        Ok(())
    }
}
