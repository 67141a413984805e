//! One fine-tuning update, whatever the head: the loss's backward pass, then one step of the
//! reference Adam (`electra-optim`) with each parameter's layer-wise learning-rate multiplier.

use std::collections::BTreeMap;
use std::fmt::Display;

use burn::module::AutodiffModule;
use burn::optim::GradientsParams;
use burn::prelude::*;
use burn::tensor::backend::AutodiffBackend;
use electra_optim::{AdamConfig, ElectraAdam};

use crate::error::EvalError;
use crate::tuning::recipe::{Recipe, lr_multipliers};

/// The optimizer of one fine-tuning run: Adam state and the multiplier of every parameter.
#[derive(Debug)]
pub struct FinetuneOptimizer<B: AutodiffBackend> {
    adam: ElectraAdam<B>,
    multipliers: BTreeMap<String, f64>,
}

impl<B: AutodiffBackend> FinetuneOptimizer<B> {
    /// Fresh moments, and the multipliers of `model`'s parameters under `recipe`'s layer-wise
    /// decay for an encoder of `num_layers` layers.
    pub fn new<M: Module<B>>(
        model: &M,
        num_layers: usize,
        recipe: &Recipe,
        adam: &AdamConfig,
    ) -> Result<Self, EvalError> {
        Ok(Self {
            adam: ElectraAdam::new(adam.clone())?,
            multipliers: lr_multipliers(
                model,
                num_layers,
                recipe.layerwise_lr_decay,
                recipe.corrected_layerwise_decay,
            ),
        })
    }

    /// The learning-rate multiplier of every parameter path.
    pub fn multipliers(&self) -> &BTreeMap<String, f64> {
        &self.multipliers
    }

    /// Updates `model` from `loss` (computed by `model`) at base learning rate `lr`; returns
    /// the loss and the gradient norm before clipping. A loss that is not finite is an error
    /// naming `what` (the task), and leaves `model` as it was.
    pub fn step<M: AutodiffModule<B>>(
        &mut self,
        model: &mut M,
        loss: Tensor<B, 1>,
        lr: f64,
        what: &dyn Display,
    ) -> Result<(f64, f64), EvalError> {
        let value = loss.clone().into_scalar().elem::<f64>();
        if !value.is_finite() {
            return Err(EvalError::Mismatch(format!(
                "{what}: the fine-tuning loss is not finite ({value}); lower the learning rate"
            )));
        }
        let grads = GradientsParams::from_grads(loss.backward(), &*model);
        let multipliers = &self.multipliers;
        let lookup = |path: &str| multipliers.get(path).copied().unwrap_or(1.0);
        let (updated, stats) = self.adam.step(lr, model.clone(), grads, &lookup);
        *model = updated;
        Ok((value, stats.grad_norm))
    }
}
