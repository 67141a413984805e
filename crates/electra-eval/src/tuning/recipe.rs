//! The fine-tuning recipe of paper Table 7 (spec 5.2) that every task family shares: the
//! learning rate and layer-wise decay factor by model size, and the per-parameter
//! learning-rate multipliers that layer-wise decay gives.

use std::collections::BTreeMap;

use burn::prelude::*;
use electra_model::ElectraConfig;
use electra_optim::{layerwise_lr_multiplier, parameter_paths};
use serde::{Deserialize, Serialize};

use crate::error::EvalError;

/// Paper Table 7's peak learning rate and layer-wise decay α for a model of `model`'s size:
/// 3e-4 and 0.8 up to hidden 256 (Small), 1e-4 and 0.8 up to 768 (Base), 5e-5 and 0.9 above
/// (Large).
pub fn size_defaults(model: &ElectraConfig) -> (f64, f64) {
    if model.hidden_size <= 256 {
        (3e-4, 0.8)
    } else if model.hidden_size <= 768 {
        (1e-4, 0.8)
    } else {
        (5e-5, 0.9)
    }
}

/// The settings one fine-tuning actually uses (a task family's config resolved for a model).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Recipe {
    /// Peak learning rate.
    pub learning_rate: f64,
    /// Layer-wise decay factor α.
    pub layerwise_lr_decay: f64,
    /// Whether the corrected layer-wise formula is used.
    pub corrected_layerwise_decay: bool,
    /// Epochs.
    pub epochs: usize,
    /// Examples per step.
    pub batch_size: usize,
    /// Share of warmup steps.
    pub warmup_fraction: f64,
}

/// Checks the recipe settings every task family has (an explicit learning rate > 0, a
/// layer-wise decay in (0, 1], a warmup share in [0, 1)); the error names the field.
pub fn validate_recipe(
    learning_rate: Option<f64>,
    layerwise_lr_decay: Option<f64>,
    warmup_fraction: f64,
) -> Result<(), EvalError> {
    let bad = |m: String| Err(EvalError::InvalidConfig(m));
    if let Some(lr) = learning_rate
        && !(lr > 0.0 && lr.is_finite())
    {
        return bad(format!("learning_rate must be > 0, got {lr}"));
    }
    if let Some(a) = layerwise_lr_decay
        && !(a > 0.0 && a <= 1.0)
    {
        return bad(format!("layerwise_lr_decay must be in (0, 1], got {a}"));
    }
    if !(0.0..1.0).contains(&warmup_fraction) {
        return bad(format!(
            "warmup_fraction must be in [0, 1), got {warmup_fraction}"
        ));
    }
    Ok(())
}

/// Every parameter path of `model` (an encoder with a task head) with its layer-wise
/// learning-rate multiplier: the head ×1, encoder layers and embeddings decayed by depth (see
/// `electra_optim::layerwise_lr_multiplier`).
pub fn lr_multipliers<B: Backend, M: Module<B>>(
    model: &M,
    num_layers: usize,
    alpha: f64,
    corrected: bool,
) -> BTreeMap<String, f64> {
    parameter_paths(model)
        .into_iter()
        .map(|(path, _)| {
            let m = layerwise_lr_multiplier(&path, num_layers, alpha, corrected);
            (path, m)
        })
        .collect()
}
