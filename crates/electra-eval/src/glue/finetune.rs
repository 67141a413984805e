//! Fine-tuning one task with one seed (spec 5.2): the reference optimizer without weight
//! decay, the reference's warmup-times-linear-decay schedule over all steps with 10 % warmup,
//! layer-wise learning-rate decay, batch 32, 3 epochs (10 for RTE and STS-B), and the
//! learning rate of the model's size.

use std::collections::BTreeMap;

use burn::module::AutodiffModule;
use burn::prelude::*;
use burn::tensor::backend::AutodiffBackend;
use electra_model::{ElectraConfig, ElectraModel};
use electra_optim::AdamConfig;
use serde::{Deserialize, Serialize};

use crate::error::EvalError;
use crate::glue::data::Label;
use crate::glue::features::{EncodedSet, batch};
use crate::glue::metrics::{Predictions, Scores, task_scores};
use crate::glue::model::{
    ElectraForSequenceClassification, LossReduction, classification_loss, regression_loss,
};
use crate::glue::task::Task;
use crate::tuning::batching;
use crate::tuning::epochs::run_epochs;
pub use crate::tuning::epochs::{NoProgress, Progress, StepRecord};
use crate::tuning::optimizer::FinetuneOptimizer;
pub use crate::tuning::recipe::{Recipe, lr_multipliers};
use crate::tuning::recipe::{size_defaults, validate_recipe};

/// STS-B scores are divided by this for training (targets in 0-1, spec 5.1) and predictions
/// multiplied by it for prediction files.
pub const STSB_MAX_SCORE: f32 = 5.0;

/// The fine-tuning hyper-parameters; the defaults are the paper's (Table 7, spec 5.2).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FinetuneConfig {
    /// Peak learning rate; `None` = by model size: 3e-4 (Small, hidden ≤ 256), 1e-4 (Base,
    /// hidden ≤ 768), 5e-5 (Large).
    pub learning_rate: Option<f64>,
    /// Layer-wise decay factor α; `None` = 0.8 (Small, Base) or 0.9 (Large). 1 disables it.
    pub layerwise_lr_decay: Option<f64>,
    /// `false` (default): the reference formula `α^(L+2−depth)` (top layer ×α², issues #51,
    /// #64), which produced the published numbers; `true`: the intended one (top layer ×α).
    pub corrected_layerwise_decay: bool,
    /// Examples per step (32).
    pub batch_size: usize,
    /// Epochs; `None` = the task's recipe (3; 10 for RTE and STS-B).
    pub epochs: Option<usize>,
    /// Share of all steps spent warming up (0.1).
    pub warmup_fraction: f64,
    /// Tokens per example, `[CLS]` and `[SEP]`s included (128 for GLUE).
    pub max_seq_len: usize,
    /// Double MRPC and STS-B training sets with A and B swapped (reference default: true).
    pub double_unordered: bool,
    /// Sum (reference) or mean of the per-example losses.
    pub loss_reduction: LossReduction,
    /// The optimizer: the reference Adam; weight decay 0 for fine-tuning (paper Table 7; the
    /// code's default was 0.01), clipping at global norm 1.0.
    pub optimizer: AdamConfig,
    /// Examples per batch when predicting (64).
    pub eval_batch_size: usize,
    /// Share of train held out for validation when a task has no dev file (0.1).
    pub validation_fraction: f64,
    /// Seed of that held-out split (the same for every fine-tuning seed) (0).
    pub validation_seed: u64,
    /// Use only the first N training examples after shuffling with `validation_seed` (for
    /// bounded measurements; `None` = all).
    pub max_train_examples: Option<usize>,
}

impl Default for FinetuneConfig {
    fn default() -> Self {
        Self {
            learning_rate: None,
            layerwise_lr_decay: None,
            corrected_layerwise_decay: false,
            batch_size: 32,
            epochs: None,
            warmup_fraction: 0.1,
            max_seq_len: 128,
            double_unordered: true,
            loss_reduction: LossReduction::Sum,
            optimizer: AdamConfig {
                weight_decay: 0.0,
                ..AdamConfig::default()
            },
            eval_batch_size: 64,
            validation_fraction: 0.1,
            validation_seed: 0,
            max_train_examples: None,
        }
    }
}

impl FinetuneConfig {
    /// Checks the ranges; the error names the field.
    pub fn validate(&self) -> Result<(), EvalError> {
        let bad = |m: String| Err(EvalError::InvalidConfig(m));
        validate_recipe(
            self.learning_rate,
            self.layerwise_lr_decay,
            self.warmup_fraction,
        )?;
        if self.batch_size == 0 || self.eval_batch_size == 0 {
            return bad("batch_size and eval_batch_size must be > 0".to_string());
        }
        if self.epochs == Some(0) {
            return bad("epochs must be > 0".to_string());
        }
        let held = self.validation_fraction;
        if !(held > 0.0 && held < 1.0) {
            return bad(format!("validation_fraction must be in (0, 1), got {held}"));
        }
        self.optimizer.validate()?;
        Ok(())
    }

    /// The recipe for `task` on a model of `model`'s size.
    pub fn recipe(&self, task: Task, model: &ElectraConfig) -> Recipe {
        let (lr, alpha) = size_defaults(model);
        Recipe {
            learning_rate: self.learning_rate.unwrap_or(lr),
            layerwise_lr_decay: self.layerwise_lr_decay.unwrap_or(alpha),
            corrected_layerwise_decay: self.corrected_layerwise_decay,
            epochs: self.epochs.unwrap_or_else(|| task.epochs()),
            batch_size: self.batch_size,
            warmup_fraction: self.warmup_fraction,
        }
    }
}

/// A model being fine-tuned with its optimizer and per-parameter LR multipliers.
#[derive(Debug)]
pub struct Finetuner<B: AutodiffBackend> {
    /// The model.
    pub model: ElectraForSequenceClassification<B>,
    optimizer: FinetuneOptimizer<B>,
    task: Task,
    reduction: LossReduction,
}

impl<B: AutodiffBackend> Finetuner<B> {
    /// Puts a fresh head for `task` on `encoder` (seed the backend first) and sets up the
    /// optimizer with the recipe's layer-wise multipliers.
    pub fn new(
        encoder: ElectraModel<B>,
        model_config: &ElectraConfig,
        task: Task,
        recipe: &Recipe,
        config: &FinetuneConfig,
        device: &B::Device,
    ) -> Result<Self, EvalError> {
        let model = ElectraForSequenceClassification::new(
            encoder,
            model_config,
            task.num_outputs(),
            device,
        );
        let optimizer = FinetuneOptimizer::new(
            &model,
            model_config.num_hidden_layers,
            recipe,
            &config.optimizer,
        )?;
        Ok(Self {
            model,
            optimizer,
            task,
            reduction: config.loss_reduction,
        })
    }

    /// The learning-rate multiplier of every parameter path.
    pub fn multipliers(&self) -> &BTreeMap<String, f64> {
        self.optimizer.multipliers()
    }

    /// One optimizer step on the examples `indices` of `set` at base learning rate `lr`;
    /// returns the loss and the gradient norm.
    pub fn step(
        &mut self,
        set: &EncodedSet,
        indices: &[usize],
        lr: f64,
        device: &B::Device,
    ) -> Result<(f64, f64), EvalError> {
        let labels = set.labels.as_ref().ok_or_else(|| {
            EvalError::Mismatch("the training set has unlabelled examples".to_string())
        })?;
        let input = batch::<B>(set, indices, device);
        let outputs = self.model.forward(input);
        let loss = if self.task.is_regression() {
            let targets: Vec<f32> = indices
                .iter()
                .map(|&i| labels[i].value() / STSB_MAX_SCORE)
                .collect();
            let targets = Tensor::<B, 1>::from_floats(targets.as_slice(), device);
            regression_loss(outputs, targets, self.reduction)
        } else {
            let classes: Vec<i64> = indices.iter().map(|&i| labels[i].class() as i64).collect();
            let classes =
                Tensor::<B, 1, Int>::from_data(TensorData::new(classes, [indices.len()]), device);
            classification_loss(outputs, classes, self.reduction)
        };
        self.optimizer.step(&mut self.model, loss, lr, &self.task)
    }
}

/// A fine-tuned model and how training went.
pub type Trained<B> = crate::tuning::epochs::Trained<ElectraForSequenceClassification<B>>;

/// Fine-tunes `encoder` (a copy of the pre-trained weights) on `train` for `task` with `seed`
/// (which seeds the head's initialisation, dropout and the example order).
#[allow(clippy::too_many_arguments)]
pub fn train<B: AutodiffBackend>(
    encoder: ElectraModel<B>,
    model_config: &ElectraConfig,
    task: Task,
    train: &EncodedSet,
    config: &FinetuneConfig,
    seed: u64,
    device: &B::Device,
    progress: &mut dyn Progress,
) -> Result<Trained<B::InnerBackend>, EvalError> {
    config.validate()?;
    if train.is_empty() {
        return Err(EvalError::InvalidConfig(format!(
            "{task}: the training set is empty"
        )));
    }
    let recipe = config.recipe(task, model_config);
    B::seed(device, seed);
    let mut tuner = Finetuner::new(encoder, model_config, task, &recipe, config, device)?;
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

/// The model's predictions for every example of `set`: class indices, or STS-B scores on the
/// 0-5 scale.
pub fn predict<B: Backend>(
    model: &ElectraForSequenceClassification<B>,
    task: Task,
    set: &EncodedSet,
    batch_size: usize,
    device: &B::Device,
) -> Predictions {
    let lengths: Vec<usize> = set.items.iter().map(|e| e.input_ids.len()).collect();
    predict_batched(
        model,
        task,
        set,
        &batching::by_length(&lengths, batch_size),
        device,
    )
}

/// [`predict`] over the given `batches` of indices into `set` (each padded to its longest
/// example); the predictions come back in `set`'s order whatever the batches' order.
pub fn predict_batched<B: Backend>(
    model: &ElectraForSequenceClassification<B>,
    task: Task,
    set: &EncodedSet,
    batches: &[Vec<usize>],
    device: &B::Device,
) -> Predictions {
    let mut classes = Vec::with_capacity(batches.len());
    let mut scores = Vec::with_capacity(batches.len());
    for chunk in batches {
        let outputs = model.forward(batch::<B>(set, chunk, device));
        if task.is_regression() {
            let values = outputs.reshape([chunk.len()]).into_data();
            scores.push(
                values
                    .iter::<f32>()
                    .map(|v| f64::from(v * STSB_MAX_SCORE))
                    .collect(),
            );
        } else {
            let best = outputs.argmax(1).reshape([chunk.len()]).into_data();
            classes.push(best.iter::<i64>().map(|c| c.max(0) as usize).collect());
        }
    }
    if task.is_regression() {
        Predictions::Scores(batching::restore_order(set.len(), batches, scores))
    } else {
        Predictions::Classes(batching::restore_order(set.len(), batches, classes))
    }
}

/// The official metrics of `model` on the labelled `set`.
pub fn evaluate<B: Backend>(
    model: &ElectraForSequenceClassification<B>,
    task: Task,
    set: &EncodedSet,
    batch_size: usize,
    device: &B::Device,
) -> Result<(Scores, Predictions), EvalError> {
    let gold: &[Label] = set.labels.as_deref().ok_or_else(|| {
        EvalError::Mismatch(format!(
            "{task}: the evaluation set has unlabelled examples"
        ))
    })?;
    let predictions = predict(model, task, set, batch_size, device);
    Ok((task_scores(task, &predictions, gold)?, predictions))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Paper Table 7 / spec 5.2: LR 3e-4 / 1e-4 / 5e-5 and layer-wise decay 0.8 / 0.8 / 0.9 for
    /// Small / Base / Large; 3 epochs, 10 for RTE and STS-B; batch 32, 10 % warmup; explicit
    /// settings win over the size defaults.
    #[test]
    fn recipe_follows_the_paper_by_model_size() {
        let config = FinetuneConfig::default();
        let sizes = [
            ("small", ElectraConfig::small(), 3e-4, 0.8),
            ("base", ElectraConfig::base(), 1e-4, 0.8),
            ("large", ElectraConfig::large(), 5e-5, 0.9),
        ];
        for (name, model, lr, alpha) in sizes {
            for (task, epochs) in [(Task::Rte, 10), (Task::Stsb, 10), (Task::Mnli, 3)] {
                let r = config.recipe(task, &model);
                assert_eq!(r.learning_rate, lr, "{name} LR");
                assert_eq!(r.layerwise_lr_decay, alpha, "{name} α");
                assert!(!r.corrected_layerwise_decay, "{name}: reference formula");
                assert_eq!(r.epochs, epochs, "{name} {task:?} epochs");
                assert_eq!((r.batch_size, r.warmup_fraction), (32, 0.1), "{name}");
            }
        }
        assert_eq!(
            config.optimizer.weight_decay, 0.0,
            "Table 7: no weight decay"
        );
        assert_eq!(config.optimizer.epsilon, 1e-6);
        assert_eq!(config.optimizer.clip_norm, Some(1.0));
        let explicit = FinetuneConfig {
            learning_rate: Some(2e-5),
            layerwise_lr_decay: Some(1.0),
            epochs: Some(2),
            ..FinetuneConfig::default()
        };
        let r = explicit.recipe(Task::Rte, &ElectraConfig::large());
        assert_eq!(
            (r.learning_rate, r.layerwise_lr_decay, r.epochs),
            (2e-5, 1.0, 2)
        );
    }

    /// Each float setting out of range, `nan` or infinite is refused up front, by name.
    #[test]
    fn validate_refuses_each_bad_float_by_name() {
        type Edit = fn(&mut FinetuneConfig, f64);
        let edits: [(&str, Edit); 6] = [
            ("learning_rate", |c, x| c.learning_rate = Some(x)),
            ("layerwise_lr_decay", |c, x| c.layerwise_lr_decay = Some(x)),
            ("warmup_fraction", |c, x| c.warmup_fraction = x),
            ("validation_fraction", |c, x| c.validation_fraction = x),
            ("epsilon", |c, x| c.optimizer.epsilon = x),
            ("weight_decay", |c, x| c.optimizer.weight_decay = x),
        ];
        assert!(FinetuneConfig::default().validate().is_ok());
        for (name, edit) in edits {
            for bad in [f64::NAN, f64::INFINITY, -1.0] {
                let mut config = FinetuneConfig::default();
                edit(&mut config, bad);
                let err = config.validate().expect_err(name).to_string();
                assert!(err.contains(name), "{name} = {bad}: {err}");
            }
        }
    }
}
