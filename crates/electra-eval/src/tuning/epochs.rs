//! The fine-tuning loop every task family runs (spec 5.2): `epochs` passes over the training
//! examples in a seeded random order, `batch_size` examples a step (the last batch of an
//! epoch may be smaller), under the reference's warmup-times-linear-decay schedule over all
//! steps with `warmup_fraction` of them warming up. What one step does is the caller's.

use std::time::Instant;

use electra_optim::{LrSchedule, ScheduleKind};
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::error::EvalError;
use crate::tuning::recipe::Recipe;

/// What one optimizer step did.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct StepRecord {
    /// 0-based step.
    pub step: u64,
    /// 0-based epoch.
    pub epoch: usize,
    /// The batch's loss (reduced as configured).
    pub loss: f64,
    /// The base learning rate of the step.
    pub lr: f64,
    /// Global gradient norm before clipping.
    pub grad_norm: f64,
}

/// A fine-tuned model `M` and how its training went.
#[derive(Debug)]
pub struct Trained<M> {
    /// The model, for inference (dropout off).
    pub model: M,
    /// One record per step.
    pub history: Vec<StepRecord>,
    /// The recipe used.
    pub recipe: Recipe,
    /// Wall-clock seconds of training.
    pub seconds: f64,
}

/// Callbacks for progress display; every method has a no-op default.
pub trait Progress {
    /// An epoch of `steps` steps starts.
    fn epoch_start(&mut self, _epoch: usize, _epochs: usize, _steps: usize) {}
    /// A step finished.
    fn step(&mut self, _record: &StepRecord) {}
    /// An epoch finished with this mean loss.
    fn epoch_end(&mut self, _epoch: usize, _mean_loss: f64) {}
}

/// No progress display.
#[derive(Debug, Default)]
pub struct NoProgress;

impl Progress for NoProgress {}

/// Steps per epoch (`ceil(n / batch)`, as the reference's padded dataset gives) and the
/// learning-rate schedule of `recipe` over `examples` training examples.
pub fn schedule(recipe: &Recipe, examples: usize) -> (usize, LrSchedule) {
    let steps_per_epoch = examples.div_ceil(recipe.batch_size.max(1));
    let total = (steps_per_epoch * recipe.epochs) as u64;
    let schedule = LrSchedule {
        kind: ScheduleKind::Electra,
        peak: recipe.learning_rate,
        warmup_steps: (recipe.warmup_fraction * total as f64).round() as u64,
        total_steps: total,
        power: 1.0,
    };
    (steps_per_epoch, schedule)
}

/// Runs the loop over `examples` training examples: `step(indices, lr)` trains on one batch
/// and returns its loss and gradient norm. `seed` seeds the example order. Returns one record
/// per step and the wall-clock seconds.
pub fn run_epochs(
    examples: usize,
    recipe: &Recipe,
    seed: u64,
    progress: &mut dyn Progress,
    mut step: impl FnMut(&[usize], f64) -> Result<(f64, f64), EvalError>,
) -> Result<(Vec<StepRecord>, f64), EvalError> {
    let (steps_per_epoch, schedule) = schedule(recipe, examples);
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut order: Vec<usize> = (0..examples).collect();
    let mut history = Vec::with_capacity(steps_per_epoch * recipe.epochs);
    let started = Instant::now();
    let mut t = 0u64;
    for epoch in 0..recipe.epochs {
        order.shuffle(&mut rng);
        progress.epoch_start(epoch, recipe.epochs, steps_per_epoch);
        let mut sum = 0.0;
        for chunk in order.chunks(recipe.batch_size.max(1)) {
            let lr = schedule.lr(t);
            let (loss, grad_norm) = step(chunk, lr)?;
            let record = StepRecord {
                step: t,
                epoch,
                loss,
                lr,
                grad_norm,
            };
            progress.step(&record);
            history.push(record);
            sum += loss;
            t += 1;
        }
        progress.epoch_end(epoch, sum / steps_per_epoch as f64);
    }
    Ok((history, started.elapsed().as_secs_f64()))
}

/// Mean training loss over the last epoch of `history` (`epochs` epochs).
pub fn final_loss(history: &[StepRecord], epochs: usize) -> f64 {
    let last: Vec<f64> = history
        .iter()
        .filter(|r| r.epoch + 1 == epochs)
        .map(|r| r.loss)
        .collect();
    last.iter().sum::<f64>() / last.len().max(1) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn recipe(batch_size: usize, epochs: usize) -> Recipe {
        Recipe {
            learning_rate: 1.0,
            layerwise_lr_decay: 0.8,
            corrected_layerwise_decay: false,
            epochs,
            batch_size,
            warmup_fraction: 0.1,
        }
    }

    /// `ceil(n/32)` steps an epoch, every example once an epoch in a seeded order, warmup over
    /// 10 % of all steps (the first step at learning rate 0).
    #[test]
    fn every_example_once_an_epoch_in_a_seeded_order() {
        let r = recipe(32, 2);
        let (per_epoch, s) = schedule(&r, 70);
        assert_eq!((per_epoch, s.total_steps, s.warmup_steps), (3, 6, 1));
        let mut seen = Vec::new();
        let (history, _) = run_epochs(70, &r, 5, &mut NoProgress, |idx, _| {
            seen.push(idx.to_vec());
            Ok((1.0, 0.0))
        })
        .expect("loop");
        assert_eq!(history.len(), 6);
        assert_eq!(history[0].lr, 0.0);
        assert!(history[1].lr > 0.0);
        assert_eq!(
            seen[2].len(),
            6,
            "the last batch of an epoch holds the rest"
        );
        for epoch in seen.chunks(3) {
            let mut all: Vec<usize> = epoch.concat();
            all.sort_unstable();
            assert_eq!(all, (0..70).collect::<Vec<_>>());
        }
        let mut again = Vec::new();
        run_epochs(70, &r, 5, &mut NoProgress, |idx, _| {
            again.push(idx.to_vec());
            Ok((1.0, 0.0))
        })
        .expect("loop");
        assert_eq!(seen, again, "same seed, same order");
        assert_ne!(seen[0], seen[3], "a new order each epoch");
    }
}
