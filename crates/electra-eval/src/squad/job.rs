//! A SQuAD fine-tuning as `electra squad` runs it, into an output directory (resumable: a run
//! records each finished seed; see [`run`](super::run::run)), and answering questions with a
//! fine-tuned model into a file, as `electra squad predict` does.
//!
//! The output directory's rule: the final files ([`OUTPUTS`]) exist only once every seed is
//! done, and a directory that holds any of them is refused unless `overwrite`. A run's
//! resumable state ([`STATE`]: `seeds/`, `model/`, `metrics.jsonl`) is continued from, or
//! removed with `overwrite`.

use std::path::PathBuf;

use burn::tensor::backend::{AutodiffBackend, Backend};

use super::finetune::{REFERENCE_NULL_THRESHOLD, SquadConfig};
use super::run::{self, SeedResult, SquadObserver, SquadReport, SquadRun};
use super::{Version, hf, predict};
use crate::error::EvalError;
use crate::tuning::bars::StepBars;
use crate::tuning::job::{self, Start};

/// What `out` receives once a run is complete.
pub const OUTPUTS: [&str; 6] = [
    "results.md",
    "results.json",
    "predictions.json",
    "null_odds.json",
    "answers.json",
    "nbest_predictions.json",
];

/// A run's resumable state in `out`, removed by `overwrite`.
pub const STATE: [&str; 3] = ["seeds", "model", "metrics.jsonl"];

/// A SQuAD fine-tuning into an output directory.
#[derive(Clone, Debug)]
pub struct SquadJob {
    /// The pre-trained model and the seeds.
    pub start: Start,
    /// The training file (official JSON).
    pub train: PathBuf,
    /// The evaluation file with gold answers.
    pub dev: PathBuf,
    /// The version; `None`: the training file's.
    pub version: Option<Version>,
    /// The recipe; its windows are fitted to the model unless `max_seq_len_given`.
    pub config: SquadConfig,
    /// The user chose the window length.
    pub max_seq_len_given: bool,
    /// The output directory.
    pub out: PathBuf,
    /// Replace earlier results and the seeds of another run.
    pub overwrite: bool,
}

/// Runs `job` on `device` with progress bars; returns the report and the results files.
pub fn run_job<B: AutodiffBackend>(
    job: &SquadJob,
    device: &B::Device,
) -> Result<(SquadReport, PathBuf, PathBuf), EvalError> {
    let seeds = job.start.seed_list()?;
    let old = job::claim_outputs(&job.out, &OUTPUTS, "SQuAD results", job.overwrite)?;
    let mut config = job.config.clone();
    config.validate()?;
    let pre = job.start.load::<B>(device)?;
    if !job.max_seq_len_given {
        // The default fits the model it is given (the reference's 512 tokens otherwise).
        config.windows = config.windows.fitted(pre.config.max_position_embeddings);
        config.windows.validate()?;
    }
    old.remove()?;
    if job.overwrite {
        electra_fs::Outputs::find(&job.out, &STATE).remove()?;
    }
    let (_, metrics) = job::open_metrics(&job.out, job.overwrite)?;
    let squad_run = SquadRun {
        train: job.train.clone(),
        dev: job.dev.clone(),
        version: job.version,
        seeds,
        config,
        out: job.out.clone(),
        overwrite: job.overwrite,
    };
    let mut bars = StepBars::new(metrics, "squad");
    let report = run::run(&pre, &squad_run, device, &mut bars)?;
    let (md, json) = job::write_results(&job.out, &report.to_markdown(), &report)?;
    Ok((report, md, json))
}

/// Answering questions with a fine-tuned model (`electra squad predict`).
#[derive(Clone, Debug)]
pub struct PredictJob {
    /// A model written by a SQuAD run (`OUT/model`) or an HF ElectraForQuestionAnswering.
    pub checkpoint: PathBuf,
    /// The questions (see [`predict::read_questions`]).
    pub input: PathBuf,
    /// Where the answers go (JSON, written atomically).
    pub output: PathBuf,
    /// The tokenizer; `None`: the one in the checkpoint directory.
    pub tokenizer: Option<PathBuf>,
    /// The version; `None`: recorded in the model's config.json, else 2.0.
    pub version: Option<Version>,
    /// 2.0's no-answer threshold; `None`: recorded at training, else the reference's.
    pub null_threshold: Option<f64>,
    /// Tokens per window; `None`: recorded, fitted to the model.
    pub max_seq_len: Option<usize>,
    /// Keep each question's n-best answers.
    pub nbest: bool,
}

/// What [`predict_file`] did: questions answered, the version and the threshold used.
#[derive(Clone, Copy, Debug)]
pub struct Predicted {
    /// Questions answered.
    pub answered: usize,
    /// The version the model was read as.
    pub version: Version,
    /// The no-answer threshold applied.
    pub null_threshold: f64,
}

/// Answers the questions of `job.input` into `job.output`, with the settings the model was
/// fine-tuned with (windows, beam, answers) where the job does not name them.
pub fn predict_file<B: Backend>(
    job: &PredictJob,
    device: &B::Device,
) -> Result<Predicted, EvalError> {
    let (model, hf_config) = hf::load::<B>(&job.checkpoint, device)?;
    let tokenizer_path = job.tokenizer.clone().unwrap_or(job.checkpoint.clone());
    let tokenizer = electra_data::Tokenizer::from_path(&tokenizer_path)?;
    let recorded = |key: &str| hf_config.extra.get(key).cloned();
    let version = job.version.unwrap_or_else(|| {
        recorded(hf::VERSION_KEY)
            .and_then(|v| v.as_str().and_then(|s| s.parse().ok()))
            .unwrap_or(Version::V2_0)
    });
    let null_threshold = job
        .null_threshold
        .or_else(|| recorded(hf::NULL_THRESHOLD_KEY).and_then(|v| v.as_f64()))
        .unwrap_or(REFERENCE_NULL_THRESHOLD);
    let mut config: SquadConfig = recorded(hf::CONFIG_KEY)
        .and_then(|v| serde_json::from_value(v).ok())
        .unwrap_or_default();
    if let Some(n) = job.max_seq_len {
        config.windows.max_seq_length = n;
    }
    config.windows = config
        .windows
        .fitted(hf_config.model.max_position_embeddings);
    config.windows.validate()?;
    let questions = predict::read_questions(&job.input)?;
    let answers = predict::answer(
        &model,
        &tokenizer,
        questions,
        version,
        &config,
        null_threshold,
        job.nbest,
        device,
    )?;
    let text = serde_json::to_string_pretty(&answers)
        .map_err(|e| EvalError::Mismatch(format!("cannot serialise the answers: {e}")))?;
    electra_fs::write_atomic(&job.output, (text + "\n").as_bytes())?;
    Ok(Predicted {
        answered: answers.len(),
        version,
        null_threshold,
    })
}

impl SquadObserver for StepBars {
    fn data_ready(&mut self, train: &super::features::QaSet, dev: &super::features::QaSet) {
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
        println!("seed {} (finished earlier): {}", r.seed, headline(r));
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
            headline(r),
            r.final_train_loss,
            r.train_seconds
        );
    }
}

/// A seed's headline scores (EM and F1, and 2.0's best-threshold ones).
fn headline(r: &SeedResult) -> String {
    r.scores
        .iter()
        .filter(|(k, _)| {
            ["exact_match", "exact", "f1", "best_exact", "best_f1"].contains(&k.as_str())
        })
        .map(|(k, v)| format!("{k} {v:.2}"))
        .collect::<Vec<_>>()
        .join(", ")
}
