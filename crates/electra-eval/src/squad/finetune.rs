//! Fine-tuning and evaluating one SQuAD model with one seed: paper Table 7's recipe (learning
//! rate by size, layer-wise decay 0.8/0.8/0.9, 2 epochs, batch 32, 10 % warmup, no weight
//! decay) over the training windows, then predictions for every window of the evaluation set
//! in batches sorted by length, post-processed into answers and scored with the official
//! metrics.

use burn::module::AutodiffModule;
use burn::prelude::*;
use burn::tensor::backend::AutodiffBackend;
use electra_model::{ElectraConfig, ElectraModel};
use electra_optim::AdamConfig;
use serde::{Deserialize, Serialize};

use crate::error::EvalError;
use crate::glue::model::LossReduction;
use crate::squad::features::{QaBatch, QaSet, WindowConfig};
use crate::squad::metrics::{self, AnswerTexts, NullOdds, Scores};
use crate::squad::model::{
    ElectraForSquad, HeadConfig, HeadKind, REFERENCE_HIDDEN, Targets, WindowOutput,
};
use crate::squad::postprocess::{self, AnswerConfig, Prediction};
use crate::tuning::batching;
use crate::tuning::epochs::{Progress, run_epochs};
use crate::tuning::optimizer::FinetuneOptimizer;
use crate::tuning::recipe::{Recipe, size_defaults, validate_recipe};

/// The no-answer threshold the reference applies to test files (`qa_na_threshold`).
pub const REFERENCE_NULL_THRESHOLD: f64 = -2.75;

/// SQuAD fine-tuning settings; the defaults are the paper's and the reference's.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SquadConfig {
    /// The head (`reference`).
    pub head: HeadKind,
    /// The reference head's answerability classifier (on, as in the reference, for both
    /// versions).
    pub answerable_classifier: bool,
    /// Weight of its loss (0.5).
    pub answerable_weight: f64,
    /// Width of the reference head's hidden layers (512; smaller only for tiny models).
    pub joint_hidden: usize,
    /// Peak learning rate; `None` = by model size (3e-4 Small, 1e-4 Base, 5e-5 Large).
    pub learning_rate: Option<f64>,
    /// Layer-wise decay α; `None` = 0.8 (Small, Base) or 0.9 (Large).
    pub layerwise_lr_decay: Option<f64>,
    /// The intended layer-wise formula (top layer ×α) instead of the reference's (×α²).
    pub corrected_layerwise_decay: bool,
    /// Windows per step (32).
    pub batch_size: usize,
    /// Epochs (2).
    pub epochs: usize,
    /// Share of all steps spent warming up (0.1).
    pub warmup_fraction: f64,
    /// Sum (reference) or mean of the per-window losses.
    pub loss_reduction: LossReduction,
    /// The reference Adam, weight decay 0 (paper Table 7), clipping at global norm 1.
    pub optimizer: AdamConfig,
    /// Windows.
    pub windows: WindowConfig,
    /// Starts kept by the reference head's beam, and ends per start (20).
    pub beam_size: usize,
    /// N-best and answer length.
    pub answers: AnswerConfig,
    /// Windows per batch when predicting (16).
    pub eval_batch_size: usize,
    /// Train on a seeded subset of this many questions (for bounded runs; `None` = all).
    pub max_train_questions: Option<usize>,
    /// The 2.0 no-answer threshold for `answers.json`; `None` = the best-F1 threshold on the
    /// evaluation set.
    pub null_threshold: Option<f64>,
}

impl Default for SquadConfig {
    fn default() -> Self {
        Self {
            head: HeadKind::Reference,
            answerable_classifier: true,
            answerable_weight: 0.5,
            joint_hidden: REFERENCE_HIDDEN,
            learning_rate: None,
            layerwise_lr_decay: None,
            corrected_layerwise_decay: false,
            batch_size: 32,
            epochs: 2,
            warmup_fraction: 0.1,
            loss_reduction: LossReduction::Sum,
            optimizer: AdamConfig {
                weight_decay: 0.0,
                ..AdamConfig::default()
            },
            windows: WindowConfig::default(),
            beam_size: 20,
            answers: AnswerConfig::default(),
            eval_batch_size: 16,
            max_train_questions: None,
            null_threshold: None,
        }
    }
}

impl SquadConfig {
    /// Checks the ranges; the error names the field.
    pub fn validate(&self) -> Result<(), EvalError> {
        let bad = |m: String| Err(EvalError::InvalidConfig(m));
        validate_recipe(
            self.learning_rate,
            self.layerwise_lr_decay,
            self.warmup_fraction,
        )?;
        if !(self.answerable_weight >= 0.0 && self.answerable_weight.is_finite()) {
            return bad(format!(
                "answerable_weight must be ≥ 0, got {}",
                self.answerable_weight
            ));
        }
        if self.batch_size == 0 || self.eval_batch_size == 0 || self.epochs == 0 {
            return bad("batch_size, eval_batch_size and epochs must be > 0".into());
        }
        if self.joint_hidden == 0 {
            return bad("joint_hidden must be > 0".into());
        }
        if self.beam_size == 0
            || self.answers.n_best_size == 0
            || self.answers.max_answer_length == 0
        {
            return bad("beam_size, n_best_size and max_answer_length must be > 0".into());
        }
        if self.null_threshold.is_some_and(|t| !t.is_finite()) {
            return bad("null_threshold must be a finite number".into());
        }
        self.windows.validate()?;
        self.optimizer.validate()?;
        Ok(())
    }

    /// The head these settings ask for.
    pub fn head_config(&self) -> HeadConfig {
        HeadConfig {
            kind: self.head,
            answerable_classifier: self.answerable_classifier,
            joint_hidden: self.joint_hidden,
        }
    }

    /// The recipe for a model of `model`'s size (paper Table 7).
    pub fn recipe(&self, model: &ElectraConfig) -> Recipe {
        let (lr, alpha) = size_defaults(model);
        Recipe {
            learning_rate: self.learning_rate.unwrap_or(lr),
            layerwise_lr_decay: self.layerwise_lr_decay.unwrap_or(alpha),
            corrected_layerwise_decay: self.corrected_layerwise_decay,
            epochs: self.epochs,
            batch_size: self.batch_size,
            warmup_fraction: self.warmup_fraction,
        }
    }
}

/// A SQuAD model being fine-tuned: the model, its optimizer with the layer-wise multipliers,
/// and the loss settings. [`SquadTuner::step_batch`] is one training step on any `[b, s]`
/// batch (what the speed benchmark times).
#[derive(Debug)]
pub struct SquadTuner<B: AutodiffBackend> {
    /// The model.
    pub model: ElectraForSquad<B>,
    optimizer: FinetuneOptimizer<B>,
    reduction: LossReduction,
    answerable_weight: f64,
}

impl<B: AutodiffBackend> SquadTuner<B> {
    /// Puts a fresh head on `encoder` (seed the backend first) and sets up the optimizer.
    pub fn new(
        encoder: ElectraModel<B>,
        model_config: &ElectraConfig,
        recipe: &Recipe,
        config: &SquadConfig,
        device: &B::Device,
    ) -> Result<Self, EvalError> {
        let model = ElectraForSquad::new(encoder, model_config, &config.head_config(), device);
        Self::from_model(model, model_config, recipe, config)
    }

    /// Continues training `model` (e.g. a question-answering checkpoint).
    pub fn from_model(
        model: ElectraForSquad<B>,
        model_config: &ElectraConfig,
        recipe: &Recipe,
        config: &SquadConfig,
    ) -> Result<Self, EvalError> {
        let optimizer = FinetuneOptimizer::new(
            &model,
            model_config.num_hidden_layers,
            recipe,
            &config.optimizer,
        )?;
        Ok(Self {
            model,
            optimizer,
            reduction: config.loss_reduction,
            answerable_weight: config.answerable_weight,
        })
    }

    /// The learning-rate multiplier of every parameter path.
    pub fn multipliers(&self) -> &std::collections::BTreeMap<String, f64> {
        self.optimizer.multipliers()
    }

    /// One optimizer step on `batch` with its `targets` (start, end, is_impossible per row) at
    /// base learning rate `lr`; returns the loss and the gradient norm.
    pub fn step_batch(
        &mut self,
        batch: &QaBatch<B>,
        targets: &[Targets],
        lr: f64,
    ) -> Result<(f64, f64), EvalError> {
        let losses = self.model.losses(batch, targets, self.answerable_weight);
        let loss = match self.reduction {
            LossReduction::Sum => losses.sum(),
            LossReduction::Mean => losses.mean(),
        };
        self.optimizer.step(&mut self.model, loss, lr, &"SQuAD")
    }

    /// One optimizer step on the windows `indices` of `set`.
    pub fn step(
        &mut self,
        set: &QaSet,
        indices: &[usize],
        lr: f64,
        device: &B::Device,
    ) -> Result<(f64, f64), EvalError> {
        let batch = set.batch::<B>(indices, device);
        let targets: Vec<Targets> = indices.iter().map(|&w| set.targets(w)).collect();
        self.step_batch(&batch, &targets, lr)
    }
}

/// A fine-tuned model and how training went.
pub type Trained<B> = crate::tuning::epochs::Trained<ElectraForSquad<B>>;

/// Fine-tunes `encoder` on the windows of `train` with `seed` (which seeds the head, dropout
/// and the window order).
#[allow(clippy::too_many_arguments)]
pub fn train<B: AutodiffBackend>(
    encoder: ElectraModel<B>,
    model_config: &ElectraConfig,
    train: &QaSet,
    config: &SquadConfig,
    seed: u64,
    device: &B::Device,
    progress: &mut dyn Progress,
) -> Result<Trained<B::InnerBackend>, EvalError> {
    config.validate()?;
    if train.is_empty() {
        return Err(EvalError::InvalidConfig(format!(
            "{}: no training question left (see the skipped ones above)",
            train.file.path.display()
        )));
    }
    let recipe = config.recipe(model_config);
    B::seed(device, seed);
    let mut tuner = SquadTuner::new(encoder, model_config, &recipe, config, device)?;
    let (history, seconds) = run_epochs(train.len(), &recipe, seed, progress, |chunk, lr| {
        tuner.step(train, chunk, lr, device)
    })?;
    Ok(Trained {
        model: tuner.model.valid(),
        history,
        recipe,
        seconds,
    })
}

/// The head's outputs for every window of `set`, in the set's order, computed in batches of
/// windows of similar length (each padded to its longest). `done(windows)` hears progress.
pub fn infer<B: Backend>(
    model: &ElectraForSquad<B>,
    set: &QaSet,
    config: &SquadConfig,
    device: &B::Device,
    done: &mut dyn FnMut(usize),
) -> Vec<WindowOutput> {
    let lengths: Vec<usize> = (0..set.len()).map(|w| set.input_len(w)).collect();
    let batches = batching::by_length(&lengths, config.eval_batch_size);
    let mut results = Vec::with_capacity(batches.len());
    for indices in &batches {
        let batch = set.batch::<B>(indices, device);
        results.push(model.infer(&batch, config.beam_size));
        done(indices.len());
    }
    batching::restore_order(set.len(), &batches, results)
}

/// Predictions for every question of `set`, and their official scores.
#[derive(Clone, Debug)]
pub struct Evaluation {
    /// One per question, in file order.
    pub predictions: Vec<Prediction>,
    /// The official metrics; for 2.0 at the reference's no-answer threshold
    /// ([`REFERENCE_NULL_THRESHOLD`]), with the best thresholds.
    pub scores: Scores,
}

/// The predictions as `predictions.json` and `null_odds.json` hold them.
pub fn prediction_files(predictions: &[Prediction]) -> (AnswerTexts, Option<NullOdds>) {
    let texts = predictions
        .iter()
        .map(|p| (p.id.clone(), p.text.clone()))
        .collect();
    let odds = predictions
        .iter()
        .map(|p| p.null_odds.map(|o| (p.id.clone(), o)))
        .collect::<Option<NullOdds>>();
    (texts, odds.filter(|o| !o.is_empty()))
}

/// Predicts every question of `set` and scores the predictions with the official metrics
/// (`set`'s file must have gold answers).
pub fn evaluate<B: Backend>(
    model: &ElectraForSquad<B>,
    set: &QaSet,
    config: &SquadConfig,
    device: &B::Device,
    done: &mut dyn FnMut(usize),
) -> Result<Evaluation, EvalError> {
    let outputs = infer(model, set, config, device, done);
    let predictions = postprocess::predictions(set, &outputs, &config.answers);
    let (texts, odds) = prediction_files(&predictions);
    let scores = metrics::evaluate(
        &set.file,
        set.version,
        &texts,
        odds.as_ref(),
        REFERENCE_NULL_THRESHOLD,
    )?;
    Ok(Evaluation {
        predictions,
        scores,
    })
}

/// A deterministic batch for timing one SQuAD training step ([`SquadTuner::step_batch`]) at
/// a given shape, no data file needed: `batch` rows of `seq` tokens, `[CLS]`, a question of
/// `query` tokens, `[SEP]`, context, `[SEP]` (ids in `5..vocab`: after the five special
/// tokens of every ELECTRA vocabulary, `[CLS]` = 2, `[SEP]` = 3), each row answered by a
/// 3-token span of its context (not impossible). `seq` must exceed `query + 6`.
pub fn synthetic_batch<B: Backend>(
    batch: usize,
    seq: usize,
    query: usize,
    vocab: usize,
    device: &B::Device,
) -> (QaBatch<B>, Vec<Targets>) {
    let context = seq.saturating_sub(query + 3).max(3);
    let mut ids = Vec::with_capacity(batch * seq);
    let mut types = Vec::with_capacity(batch * seq);
    let mut answer_mask = Vec::with_capacity(batch * seq);
    let mut targets = Vec::with_capacity(batch);
    let span = vocab.saturating_sub(5).max(1) as i64;
    for row in 0..batch {
        let token = |i: usize| 5 + ((row * 7919 + i * 104_729) as i64 % span);
        let mut r = vec![2i64];
        r.extend((0..query).map(token));
        r.push(3);
        let doc_start = r.len();
        r.extend((0..context).map(|i| token(query + i)));
        r.push(3);
        r.truncate(seq);
        let segment_b = r.len() - doc_start;
        types.extend(std::iter::repeat_n(0i64, doc_start).chain(std::iter::repeat_n(1, segment_b)));
        answer_mask.push(1.0f32);
        answer_mask.extend(std::iter::repeat_n(0.0, doc_start - 1));
        answer_mask.extend(std::iter::repeat_n(1.0, segment_b));
        let start = doc_start + (row % context.saturating_sub(3).max(1));
        targets.push((start, (start + 2).min(seq - 2), false));
        ids.extend(r);
    }
    let tensor = |v: Vec<i64>| {
        Tensor::<B, 1, Int>::from_data(TensorData::new(v, [batch * seq]), device)
            .reshape([batch, seq])
    };
    let qa = QaBatch {
        input: electra_model::InputTensors {
            input_ids: tensor(ids),
            token_type_ids: tensor(types),
            attention_mask: tensor(vec![1; batch * seq]),
        },
        answer_mask,
        lengths: vec![seq; batch],
        seq_len: seq,
    };
    (qa, targets)
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::backend::{Autodiff, Flex};

    /// Paper Table 7 and the reference's SQuAD defaults: LR 3e-4 / 1e-4 / 5e-5 and layer-wise
    /// decay 0.8 / 0.8 / 0.9 by size, 2 epochs, batch 32, 10 % warmup, no weight decay; 512
    /// tokens, stride 128, query 64, beam 20, n-best 20, answers of at most 30 tokens, the
    /// answerability classifier with weight 0.5.
    #[test]
    fn the_recipe_is_table_7_and_the_reference_defaults() {
        let config = SquadConfig::default();
        for (model, lr, alpha) in [
            (ElectraConfig::small(), 3e-4, 0.8),
            (ElectraConfig::base(), 1e-4, 0.8),
            (ElectraConfig::large(), 5e-5, 0.9),
        ] {
            let r = config.recipe(&model);
            assert_eq!((r.learning_rate, r.layerwise_lr_decay), (lr, alpha));
            assert_eq!((r.epochs, r.batch_size, r.warmup_fraction), (2, 32, 0.1));
            assert!(!r.corrected_layerwise_decay);
        }
        assert_eq!(config.optimizer.weight_decay, 0.0);
        let w = &config.windows;
        assert_eq!(
            (w.max_seq_length, w.doc_stride, w.max_query_length),
            (512, 128, 64)
        );
        assert_eq!(
            (
                config.beam_size,
                config.answers.n_best_size,
                config.answers.max_answer_length
            ),
            (20, 20, 30)
        );
        assert!(config.answerable_classifier && config.answerable_weight == 0.5);
        assert_eq!(
            (config.head, config.joint_hidden),
            (HeadKind::Reference, 512)
        );
        config.validate().expect("the defaults are valid");
        let bad = SquadConfig {
            learning_rate: Some(-1.0),
            ..SquadConfig::default()
        };
        assert!(
            bad.validate()
                .expect_err("lr")
                .to_string()
                .contains("learning_rate")
        );
    }

    /// The benchmark's step: one `step_batch` on a synthetic `[b, s]` batch, with each head,
    /// changes the encoder and gives a finite loss and gradient norm.
    #[test]
    fn a_training_step_on_a_synthetic_batch() {
        type AB = Autodiff<Flex>;
        let device = Default::default();
        let model_config = ElectraConfig::micro(40);
        for head in [HeadKind::Reference, HeadKind::HuggingFace] {
            AB::seed(&device, 1);
            let config = SquadConfig {
                head,
                joint_hidden: 16,
                ..SquadConfig::default()
            };
            let recipe = config.recipe(&model_config);
            let encoder = ElectraModel::<AB>::new(&model_config, &device);
            let mut tuner =
                SquadTuner::new(encoder, &model_config, &recipe, &config, &device).expect("tuner");
            let (batch, targets) = synthetic_batch::<AB>(3, 20, 5, 40, &device);
            assert_eq!(batch.input.input_ids.dims(), [3, 20]);
            assert!(targets.iter().all(|t| t.0 >= 7 && t.1 < 19 && t.0 <= t.1));
            let before = tuner.model.electra.embeddings.word_embeddings.weight.val();
            let (loss, norm) = tuner.step_batch(&batch, &targets, 1e-3).expect("step");
            assert!(
                loss.is_finite() && loss > 0.0 && norm.is_finite(),
                "{head:?}"
            );
            let after = tuner.model.electra.embeddings.word_embeddings.weight.val();
            let moved = (after - before).abs().max().into_scalar();
            assert!(moved > 0.0, "{head:?}: the encoder moved");
        }
    }
}
