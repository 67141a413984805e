//! A SQuAD run (`electra squad`): fine-tune one pre-trained encoder on a training file over
//! several seeds, evaluate each on the dev file, and collect a [`SquadReport`] with medians
//! over seeds, the best seed's prediction files and its model.
//!
//! **Resumable.** Each finished seed is recorded in `OUT/seeds/` (its scores and its
//! prediction files, each written atomically) before the next starts; running the same
//! command again skips the finished seeds (same data, checkpoint and settings: `seeds/run.json`
//! records them, and a directory holding another run's seeds is refused). The best seed so far
//! keeps its model in `OUT/model/`, replaced whole when a better seed finishes. The final
//! files (`predictions.json`, `null_odds.json`, `answers.json`, `nbest_predictions.json`,
//! `results.json`, `results.md`) are written atomically once every seed is done.
//!
//! **Which seed is best**: the highest F1 (1.1) or best-threshold F1 (2.0) on the dev file, the
//! reference's dev-set model selection. **2.0's threshold**: the scores are reported at the
//! reference's default threshold (−2.75 on the no-answer score) and at the best threshold on
//! the dev file (`best_exact`, `best_f1` and the thresholds that reach them); `answers.json`
//! (the final answers, "" for no answer) uses `null_threshold` if set, else the best-F1
//! threshold.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use burn::tensor::backend::{AutodiffBackend, Backend};
use rand::SeedableRng;
use rand::seq::SliceRandom;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::EvalError;
use crate::squad::data::{SquadFile, Version};
use crate::squad::features::{Purpose, QaSet};
use crate::squad::finetune::{self, Evaluation, REFERENCE_NULL_THRESHOLD, SquadConfig};
use crate::squad::hf;
use crate::squad::metrics::Scores;
use crate::squad::model::ElectraForSquad;
use crate::squad::postprocess::{Prediction, answers_at};
use crate::tuning::epochs::{Progress, final_loss};
use crate::tuning::pretrained::Pretrained;
use crate::tuning::recipe::Recipe;
use crate::tuning::seeds::SeedStore;
use crate::tuning::stats::Stat;

/// What a SQuAD run fine-tunes, on what data, with which recipe, and where it writes.
#[derive(Clone, Debug)]
pub struct SquadRun {
    /// The training file (official JSON).
    pub train: PathBuf,
    /// The evaluation file (official JSON, with gold answers).
    pub dev: PathBuf,
    /// The version; `None` = the training file's.
    pub version: Option<Version>,
    /// Fine-tuning seeds.
    pub seeds: Vec<u64>,
    /// The recipe.
    pub config: SquadConfig,
    /// The output directory.
    pub out: PathBuf,
    /// Replace the seeds of another run found in `out/seeds` (else that is an error).
    pub overwrite: bool,
}

/// One seed's outcome.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SeedResult {
    /// The seed.
    pub seed: u64,
    /// The official metrics (×100): 1.1 `exact_match`, `f1`; 2.0 `exact`, `f1`,
    /// `HasAns_*`, `NoAns_*` at the reference's threshold −2.75, and `best_exact`, `best_f1`
    /// with their thresholds.
    pub scores: BTreeMap<String, f64>,
    /// Mean training loss of the last epoch.
    pub final_train_loss: f64,
    /// Optimizer steps.
    pub steps: usize,
    /// Wall-clock seconds of training.
    pub train_seconds: f64,
}

impl SeedResult {
    /// The model-selection score (F1, or 2.0's best-threshold F1).
    pub fn selection_score(&self) -> f64 {
        self.scores
            .get("best_f1")
            .or_else(|| self.scores.get("f1"))
            .copied()
            .unwrap_or(f64::NAN)
    }
}

/// A whole run's results.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SquadReport {
    /// The pre-trained checkpoint, in words.
    pub checkpoint: String,
    /// The version.
    pub version: Version,
    /// The settings.
    pub config: SquadConfig,
    /// The resolved recipe.
    pub recipe: Recipe,
    /// The training file.
    pub train: String,
    /// Training questions used.
    pub train_questions: usize,
    /// Training windows (model inputs).
    pub train_windows: usize,
    /// Training questions left out, with why.
    pub skipped: Vec<(String, String)>,
    /// Questions cut to `max_query_length` (training and dev).
    pub truncated_questions: usize,
    /// The evaluation file.
    pub dev: String,
    /// Evaluation questions.
    pub dev_questions: usize,
    /// Evaluation windows.
    pub dev_windows: usize,
    /// Per seed, in seed order.
    pub seeds: Vec<SeedResult>,
    /// Per metric over the seeds.
    pub summary: BTreeMap<String, Stat>,
    /// The seed whose files and model were kept.
    pub best_seed: u64,
    /// 2.0: the threshold `answers.json` used.
    pub null_threshold: Option<f64>,
    /// The files written.
    pub files: Vec<String>,
}

/// Hears about a run's progress: the fine-tuning steps ([`Progress`]) and the run's events.
pub trait SquadObserver: Progress {
    /// The data is tokenised and windowed.
    fn data_ready(&mut self, _train: &QaSet, _dev: &QaSet) {}
    /// `seed` finished in an earlier invocation and is not run again.
    fn seed_resumed(&mut self, _result: &SeedResult) {}
    /// `seed` starts fine-tuning.
    fn seed_started(&mut self, _seed: u64) {}
    /// Evaluation of `windows` windows starts.
    fn evaluation_started(&mut self, _windows: usize) {}
    /// `windows` more windows were predicted.
    fn evaluated(&mut self, _windows: usize) {}
    /// `seed` finished and was scored.
    fn seed_finished(&mut self, _result: &SeedResult) {}
}

impl SquadObserver for crate::tuning::epochs::NoProgress {}

/// The scores of an evaluation by official key.
pub fn score_map(evaluation: &Evaluation) -> BTreeMap<String, f64> {
    let text = evaluation.scores.to_official_json();
    let value: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
    value
        .as_object()
        .map(|o| {
            o.iter()
                .filter_map(|(k, v)| Some((k.clone(), v.as_f64()?)))
                .collect()
        })
        .unwrap_or_default()
}

/// FNV-1a over `bytes`: identifies a data file in `seeds/run.json`.
fn fingerprint(path: &Path) -> Result<Value, EvalError> {
    let bytes = std::fs::read(path).map_err(|e| EvalError::io(path, e))?;
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in &bytes {
        h = (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3);
    }
    Ok(serde_json::json!({
        "path": path.display().to_string(),
        "bytes": bytes.len(),
        "fnv1a64": format!("{h:016x}"),
    }))
}

/// Runs `run` from `pre` (the pre-trained encoder on the autodiff backend `B`).
pub fn run<B: AutodiffBackend>(
    pre: &Pretrained<B>,
    run: &SquadRun,
    device: &B::Device,
    observer: &mut impl SquadObserver,
) -> Result<SquadReport, EvalError> {
    if run.seeds.is_empty() {
        return Err(EvalError::InvalidConfig(
            "a SQuAD run needs at least one seed".into(),
        ));
    }
    let config = &run.config;
    config.validate()?;
    if config.windows.max_seq_length > pre.config.max_position_embeddings {
        return Err(EvalError::InvalidConfig(format!(
            "max_seq_length {} exceeds the model's max_position_embeddings {}",
            config.windows.max_seq_length, pre.config.max_position_embeddings
        )));
    }
    let mut train_file = SquadFile::read(&run.train)?;
    let version = train_file.resolve_version(run.version);
    let dev_file = SquadFile::read(&run.dev)?;
    if dev_file.resolve_version(None) != version && run.version.is_none() {
        tracing::warn!(
            "{} reads as SQuAD {}, {} as {}; both are scored as {version}",
            run.train.display(),
            version,
            run.dev.display(),
            dev_file.resolve_version(None)
        );
    }
    if let Some(n) = config.max_train_questions {
        subset(&mut train_file, n);
    }
    let train = QaSet::build(
        train_file,
        version,
        &pre.tokenizer,
        &config.windows,
        Purpose::Train,
    )?;
    let dev = QaSet::build(
        dev_file,
        version,
        &pre.tokenizer,
        &config.windows,
        Purpose::Evaluate,
    )?;
    observer.data_ready(&train, &dev);
    let identity = serde_json::json!({
        "checkpoint": pre.description,
        "version": version,
        "config": config,
        "train": fingerprint(&run.train)?,
        "dev": fingerprint(&run.dev)?,
    });
    let store = SeedStore::open(&run.out.join("seeds"), &identity, run.overwrite)?;
    let mut results: Vec<SeedResult> = Vec::new();
    for &seed in &run.seeds {
        if let Some(done) = store.load::<SeedResult>(seed)? {
            observer.seed_resumed(&done);
            results.push(done);
            continue;
        }
        let result = run_seed(
            pre, run, &train, &dev, &store, &results, seed, device, observer,
        )?;
        // Test-only fault injection (debug builds): a crash between two seeds.
        electra_fs::kill_point(&format!("squad.seed-recorded@{seed}"));
        observer.seed_finished(&result);
        results.push(result);
    }
    finish(pre, run, version, &train, &dev, &store, results)
}

/// Keeps a seeded subset of `n` questions (their paragraphs stay; unused ones cost nothing).
fn subset(file: &mut SquadFile, n: usize) {
    if n < file.questions.len() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
        let mut order: Vec<usize> = (0..file.questions.len()).collect();
        order.shuffle(&mut rng);
        order.truncate(n);
        order.sort_unstable();
        file.questions = order
            .into_iter()
            .map(|i| file.questions[i].clone())
            .collect();
    }
}

/// One seed: train, evaluate, record its files, keep its model if it is the best so far,
/// then record it as finished.
#[allow(clippy::too_many_arguments)]
fn run_seed<B: AutodiffBackend>(
    pre: &Pretrained<B>,
    run: &SquadRun,
    train: &QaSet,
    dev: &QaSet,
    store: &SeedStore,
    finished: &[SeedResult],
    seed: u64,
    device: &B::Device,
    observer: &mut impl SquadObserver,
) -> Result<SeedResult, EvalError> {
    observer.seed_started(seed);
    let config = &run.config;
    let trained = finetune::train(
        pre.encoder.clone(),
        &pre.config,
        train,
        config,
        seed,
        device,
        observer,
    )?;
    observer.evaluation_started(dev.len());
    let evaluation = finetune::evaluate(&trained.model, dev, config, device, &mut |n| {
        observer.evaluated(n)
    })?;
    let result = SeedResult {
        seed,
        scores: score_map(&evaluation),
        final_train_loss: final_loss(&trained.history, trained.recipe.epochs),
        steps: trained.history.len(),
        train_seconds: trained.seconds,
    };
    write_prediction_files(
        store.dir(),
        &format!("seed-{seed}-"),
        &evaluation.predictions,
    )?;
    let best_so_far = finished
        .iter()
        .all(|r| result.selection_score() > r.selection_score());
    if best_so_far {
        let threshold = answers_threshold(config, &evaluation.scores);
        let recorded = Recorded {
            seed,
            version: dev.version,
            threshold,
            config,
        };
        save_model(&trained.model, pre, &run.out, &recorded)?;
    }
    store.save(seed, &result)?;
    Ok(result)
}

/// The threshold `answers.json` uses: the configured one, else the best-F1 one.
fn answers_threshold(config: &SquadConfig, scores: &Scores) -> Option<f64> {
    match scores {
        Scores::V1(_) => None,
        Scores::V2(s) => config
            .null_threshold
            .or_else(|| s.best.as_ref().map(|b| b.f1_thresh))
            .or(Some(REFERENCE_NULL_THRESHOLD)),
    }
}

/// What a saved model records about its fine-tuning (in its `config.json`).
struct Recorded<'a> {
    seed: u64,
    version: Version,
    threshold: Option<f64>,
    config: &'a SquadConfig,
}

/// Writes `OUT/model/` (replacing an earlier one whole): the model as an HF-style directory,
/// with the seed, version, no-answer threshold and fine-tuning settings in its `config.json`
/// (`electra squad predict` reads them), and the tokenizer.
fn save_model<B: Backend>(
    model: &ElectraForSquad<B>,
    pre: &Pretrained<impl Backend>,
    out: &Path,
    recorded: &Recorded<'_>,
) -> Result<(), EvalError> {
    let staging = electra_fs::StagingDir::create(out.join(".model.tmp"))?;
    hf::save(model, &pre.config, staging.path())?;
    let config_path = staging.path().join("config.json");
    let text = std::fs::read_to_string(&config_path).map_err(|e| EvalError::io(&config_path, e))?;
    let mut value: Value = serde_json::from_str(&text)
        .map_err(|e| EvalError::format(&config_path, e.line(), e.to_string()))?;
    if let Some(map) = value.as_object_mut() {
        map.insert("squad_seed".into(), Value::from(recorded.seed));
        map.insert(hf::VERSION_KEY.into(), Value::from(recorded.version.name()));
        if let Some(t) = recorded.threshold {
            map.insert(hf::NULL_THRESHOLD_KEY.into(), Value::from(t));
        }
        map.insert(
            hf::CONFIG_KEY.into(),
            serde_json::to_value(recorded.config).unwrap_or(Value::Null),
        );
    }
    let text = serde_json::to_string_pretty(&value).unwrap_or(text);
    std::fs::write(&config_path, text).map_err(|e| EvalError::io(&config_path, e))?;
    pre.tokenizer.save(staging.path())?;
    staging.commit(&out.join("model"))?;
    Ok(())
}

/// A JSON object of `(key, value)` pairs in the given order (the official files are keyed by
/// question id in file order; the order matters to `find_best_thresh`'s ties).
pub fn ordered_object(entries: &[(String, Value)]) -> String {
    let body: Vec<String> = entries
        .iter()
        .map(|(k, v)| {
            format!(
                "  {}: {}",
                Value::from(k.as_str()),
                serde_json::to_string(v).unwrap_or_else(|_| "null".into())
            )
        })
        .collect();
    if body.is_empty() {
        "{}\n".to_string()
    } else {
        format!("{{\n{}\n}}\n", body.join(",\n"))
    }
}

/// Writes `{prefix}predictions.json`, `{prefix}nbest_predictions.json` and, for 2.0,
/// `{prefix}null_odds.json` into `dir`; returns the paths.
pub fn write_prediction_files(
    dir: &Path,
    prefix: &str,
    predictions: &[Prediction],
) -> Result<Vec<PathBuf>, EvalError> {
    let mut written = Vec::new();
    let mut write = |name: &str, entries: Vec<(String, Value)>| -> Result<(), EvalError> {
        let path = dir.join(format!("{prefix}{name}"));
        electra_fs::write_atomic(&path, ordered_object(&entries).as_bytes())?;
        written.push(path);
        Ok(())
    };
    write(
        "predictions.json",
        predictions
            .iter()
            .map(|p| (p.id.clone(), Value::from(p.text.as_str())))
            .collect(),
    )?;
    if predictions.iter().any(|p| p.null_odds.is_some()) {
        write(
            "null_odds.json",
            predictions
                .iter()
                .map(|p| (p.id.clone(), Value::from(p.null_odds.unwrap_or(0.0))))
                .collect(),
        )?;
    }
    write(
        "nbest_predictions.json",
        predictions
            .iter()
            .map(|p| {
                (
                    p.id.clone(),
                    serde_json::to_value(&p.nbest).unwrap_or(Value::Null),
                )
            })
            .collect(),
    )?;
    Ok(written)
}

/// Reads back `{prefix}predictions.json` / `null_odds.json` of a finished seed as
/// predictions (for the final files).
fn read_seed_predictions(
    store: &SeedStore,
    seed: u64,
) -> Result<Vec<(String, String, Option<f64>)>, EvalError> {
    use crate::squad::metrics::{AnswerTexts, NullOdds, read_keyed};
    let texts: AnswerTexts = read_keyed(
        &store.file(seed, "predictions.json"),
        "answer texts (strings)",
    )?;
    let odds_path = store.file(seed, "null_odds.json");
    let odds: Option<NullOdds> = odds_path
        .is_file()
        .then(|| read_keyed(&odds_path, "no-answer scores"))
        .transpose()?;
    Ok(texts
        .entries
        .into_iter()
        .map(|(id, text)| {
            let o = odds.as_ref().and_then(|o| o.get(&id).copied());
            (id, text, o)
        })
        .collect())
}

/// The final files and the report, from every seed's recorded result.
fn finish<B: Backend>(
    pre: &Pretrained<B>,
    run: &SquadRun,
    version: Version,
    train: &QaSet,
    dev: &QaSet,
    store: &SeedStore,
    seeds: Vec<SeedResult>,
) -> Result<SquadReport, EvalError> {
    let best = seeds
        .iter()
        .fold(None::<&SeedResult>, |b, r| match b {
            Some(b) if b.selection_score() >= r.selection_score() => Some(b),
            _ => Some(r),
        })
        .map_or(run.seeds[0], |r| r.seed);
    let mut by_metric: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    for s in &seeds {
        for (k, v) in &s.scores {
            by_metric.entry(k.clone()).or_default().push(*v);
        }
    }
    let summary = by_metric
        .into_iter()
        .map(|(k, v)| (k, Stat::of(&v)))
        .collect();
    let mut files = Vec::new();
    for name in [
        "predictions.json",
        "null_odds.json",
        "nbest_predictions.json",
    ] {
        let from = store.file(best, name);
        if from.is_file() {
            let to = run.out.join(name);
            let bytes = std::fs::read(&from).map_err(|e| EvalError::io(&from, e))?;
            electra_fs::write_atomic(&to, &bytes)?;
            files.push(to.display().to_string());
        }
    }
    let best_scores = seeds
        .iter()
        .find(|s| s.seed == best)
        .map(|s| s.scores.clone())
        .unwrap_or_default();
    let null_threshold = match version {
        Version::V1_1 => None,
        Version::V2_0 => run
            .config
            .null_threshold
            .or_else(|| best_scores.get("best_f1_thresh").copied())
            .or(Some(REFERENCE_NULL_THRESHOLD)),
    };
    if let Some(t) = null_threshold {
        let predictions: Vec<Prediction> = read_seed_predictions(store, best)?
            .into_iter()
            .map(|(id, text, null_odds)| Prediction {
                id,
                text,
                char_span: None,
                null_odds,
                nbest: Vec::new(),
            })
            .collect();
        let entries: Vec<(String, Value)> = answers_at(&predictions, t)
            .into_iter()
            .map(|(id, text)| (id, Value::from(text)))
            .collect();
        let path = run.out.join("answers.json");
        electra_fs::write_atomic(&path, ordered_object(&entries).as_bytes())?;
        files.push(path.display().to_string());
    }
    if run.out.join("model").is_dir() {
        files.push(run.out.join("model").display().to_string());
    } else {
        tracing::warn!(
            "{}: the best seed's model is missing (removed after it was written?); rerun with \
             --overwrite to train it again",
            run.out.join("model").display()
        );
    }
    Ok(SquadReport {
        checkpoint: pre.description.clone(),
        version,
        config: run.config.clone(),
        recipe: run.config.recipe(&pre.config),
        train: run.train.display().to_string(),
        train_questions: train.examples.len(),
        train_windows: train.len(),
        skipped: train.skipped.clone(),
        truncated_questions: train.truncated_questions + dev.truncated_questions,
        dev: run.dev.display().to_string(),
        dev_questions: dev.examples.len(),
        dev_windows: dev.len(),
        seeds,
        summary,
        best_seed: best,
        null_threshold,
        files,
    })
}

impl SquadReport {
    /// The results table in markdown: per metric the median, mean and spread over seeds,
    /// then the per-seed scores, the data and the recipe.
    pub fn to_markdown(&self) -> String {
        use std::fmt::Write as _;
        let mut s = String::new();
        let _ = writeln!(s, "# SQuAD {} fine-tuning results\n", self.version);
        let _ = writeln!(s, "- checkpoint: {}", self.checkpoint);
        let _ = writeln!(
            s,
            "- train: {} ({} questions, {} windows{}); dev: {} ({} questions, {} windows)",
            self.train,
            self.train_questions,
            self.train_windows,
            if self.skipped.is_empty() {
                String::new()
            } else {
                format!(", {} skipped", self.skipped.len())
            },
            self.dev,
            self.dev_questions,
            self.dev_windows
        );
        let r = &self.recipe;
        let _ = writeln!(
            s,
            "- head {}, LR {:e}, layer-wise decay {}, {} epochs, batch {}, warmup {}, max_seq_length {}, doc_stride {}",
            self.config.head.name(),
            r.learning_rate,
            r.layerwise_lr_decay,
            r.epochs,
            r.batch_size,
            r.warmup_fraction,
            self.config.windows.max_seq_length,
            self.config.windows.doc_stride
        );
        let seeds: Vec<String> = self.seeds.iter().map(|x| x.seed.to_string()).collect();
        let _ = writeln!(
            s,
            "- seeds: {} (best: {})",
            seeds.join(", "),
            self.best_seed
        );
        if self.version == Version::V2_0 {
            let _ = writeln!(
                s,
                "- `exact`, `f1`, `HasAns_*`, `NoAns_*` at the reference's no-answer threshold {REFERENCE_NULL_THRESHOLD}; `best_*` at the best threshold on this dev file; answers.json uses {}",
                self.null_threshold.map_or("-".into(), |t| format!("{t}"))
            );
        }
        let _ = writeln!(s, "\n| Metric | Median | Mean | Std |");
        let _ = writeln!(s, "|---|---|---|---|");
        for (metric, st) in &self.summary {
            let _ = writeln!(
                s,
                "| {metric} | {:.2} | {:.2} | {:.2} |",
                st.median, st.mean, st.std
            );
        }
        let _ = writeln!(
            s,
            "\n| Seed | Scores | Final train loss | Steps | Train s |"
        );
        let _ = writeln!(s, "|---|---|---|---|---|");
        for seed in &self.seeds {
            let scores: Vec<String> = seed
                .scores
                .iter()
                .filter(|(k, _)| !k.ends_with("total"))
                .map(|(k, v)| format!("{k} {v:.2}"))
                .collect();
            let _ = writeln!(
                s,
                "| {} | {} | {:.4} | {} | {:.0} |",
                seed.seed,
                scores.join(", "),
                seed.final_train_loss,
                seed.steps,
                seed.train_seconds
            );
        }
        if !self.skipped.is_empty() {
            let _ = writeln!(s, "\nTraining questions skipped:");
            for (id, why) in self.skipped.iter().take(20) {
                let _ = writeln!(s, "- {id}: {why}");
            }
            if self.skipped.len() > 20 {
                let _ = writeln!(s, "- ... and {} more", self.skipped.len() - 20);
            }
        }
        s
    }
}
