//! One optimizer step on one device: the ELECTRA step as the paper's training loop takes it
//! (§2, spec 3), and the pieces that data parallelism reuses.
//!
//! [`State::step`] reads top to bottom: the learning rate from the schedule; for each of
//! `grad_accum_steps` micro-batches, the next batch, the objective's forward pass
//! ([`ElectraPretrainingModel::step`]: masking, sampling, losses), its typed
//! [`StepMetrics`], a non-finite check, backward of `loss / grad_accum_steps` and
//! accumulation; then the reference Adam step ([`ElectraAdam::step`], global-norm clipping
//! included) and a typed [`StepRecord`]. No peer, worker thread, channel or collective is
//! created or entered: several devices ([`crate::parallel`]) and several nodes
//! ([`crate::exchange`]) are layers around [`forward`], [`backward`] and [`State::apply`].
//!
//! Every random draw of micro-batch `i` of step `s` is derived from `(seed, micro_step)`
//! ([`micro_step`]), so a run resumed from a checkpoint (which holds the data cursor)
//! continues exactly where it stopped.

use std::path::Path;
use std::sync::{Mutex, MutexGuard};
use std::time::Instant;

use burn::optim::{GradientsAccumulator, GradientsParams};
use burn::tensor::Tensor;
use burn::tensor::backend::AutodiffBackend;
use electra_objective::{ElectraPretrainingModel, HostBatch, ObjectiveOutput, StepMetrics};

use crate::checkpoint::list_checkpoints;
use crate::config::RunConfig;
use crate::error::TrainError;
use crate::logging::StepRecord;
use crate::optim::ElectraAdam;
use crate::trainer::BatchSource;

/// The training state between steps: the model, the optimizer and the steps completed.
pub(crate) struct State<'a, B: AutodiffBackend> {
    pub config: &'a RunConfig,
    pub run_dir: &'a Path,
    pub model: ElectraPretrainingModel<B>,
    pub optimizer: ElectraAdam<B>,
    /// Optimizer steps completed.
    pub step: u64,
}

impl<B: AutodiffBackend> State<'_, B> {
    /// One optimizer step on one device (the state goes in and comes out): see the module
    /// docs. A non-finite loss is [`TrainError::NonFinite`], before any update.
    pub fn step(self, train: &mut dyn BatchSource) -> Result<(Self, StepRecord), TrainError> {
        let started = Instant::now();
        let t = &self.config.train;
        let accum = t.grad_accum_steps;
        let lr = self.config.schedule_resolved().lr(self.step);
        let mut grads = GradientsAccumulator::new();
        let (mut micro_metrics, mut tokens) = (Vec::with_capacity(accum), 0);
        for micro in 0..accum {
            let batch = train.next_batch(t.batch_size / accum)?;
            tokens += real_tokens(&batch);
            // Masking, sampling and dropout draw from (seed, micro-step); then the losses.
            let index = micro_step(self.step, accum, micro, 1, 0);
            let out = forward(&self.model, &batch, index)?;
            let metrics = StepMetrics::compute(&out);
            if !metrics.loss.is_finite() {
                return Err(self.non_finite(metrics.loss));
            }
            backward(&self.model, out.loss, accum, &mut grads);
            micro_metrics.push(metrics);
        }
        // The reference Adam step; global-norm clipping happens inside it.
        let (state, grad_norm) = self.apply(lr, grads.grads());
        let record = StepRecord::new(&micro_metrics, lr, grad_norm, tokens, started);
        Ok((state, record))
    }

    /// The reference Adam step with learning rate `lr` on the (accumulated, averaged)
    /// gradients, clipping included; returns the state one step on and the global gradient
    /// norm before clipping.
    pub fn apply(mut self, lr: f64, grads: GradientsParams) -> (Self, f64) {
        let (model, stats) = self.optimizer.step(lr, self.model, grads, &|_| 1.0);
        self.model = model;
        self.step += 1;
        (self, stats.grad_norm)
    }

    /// The error for a non-finite `loss` in the step being taken, naming the last good
    /// checkpoint.
    pub fn non_finite(&self, loss: f64) -> TrainError {
        match list_checkpoints(self.run_dir) {
            Ok(checkpoints) => TrainError::NonFinite {
                step: self.step + 1,
                loss,
                checkpoint: checkpoints.last().map(|(_, dir)| dir.clone()),
            },
            Err(e) => e.into(),
        }
    }
}

/// The randomness index of micro-batch `micro` of step `step` on peer `peer` of `peers` (one
/// device: peer 0 of 1, so `step · accum + micro`).
pub fn micro_step(step: u64, accum: usize, micro: usize, peers: usize, peer: usize) -> u64 {
    (step * accum as u64 + micro as u64) * peers as u64 + peer as u64
}

/// Serialises "seed the backend, run the forward pass" across the models of a process.
static FORWARD: Mutex<()> = Mutex::new(());

/// The lock that makes one micro-step's random draws contiguous in the backend's stream,
/// which is process-wide on the CPU backends (data-parallel peers are threads of one
/// process; see [`crate::parallel`]).
pub fn forward_lock() -> MutexGuard<'static, ()> {
    FORWARD.lock().unwrap_or_else(|e| e.into_inner())
}

/// The objective's forward pass on `batch` with the randomness of micro-step `index`
/// (masking, sampling, losses), under [`forward_lock`].
pub(crate) fn forward<B: AutodiffBackend>(
    model: &ElectraPretrainingModel<B>,
    batch: &HostBatch,
    index: u64,
) -> Result<ObjectiveOutput<B>, TrainError> {
    let _guard = forward_lock();
    Ok(model.step(batch, index)?)
}

/// Backward of one micro-batch's `loss` (`[1]`) scaled by `1/accum`, its gradients added to
/// `grads` (a peer's all-reduce mean then divides by the number of peers).
pub(crate) fn backward<B: AutodiffBackend>(
    model: &ElectraPretrainingModel<B>,
    loss: Tensor<B, 1>,
    accum: usize,
    grads: &mut GradientsAccumulator<ElectraPretrainingModel<B>>,
) {
    let loss = loss.div_scalar(accum as f64);
    grads.accumulate(model, GradientsParams::from_grads(loss.backward(), model));
}

/// The real (non-pad) tokens of a batch.
pub(crate) fn real_tokens(batch: &HostBatch) -> usize {
    batch.attention_mask.iter().filter(|&&m| m != 0).count()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_device_draws_the_micro_steps_in_order_and_peers_interleave() {
        // One device: step 3 of accumulation 2 is micro-steps 6 and 7.
        assert_eq!(micro_step(3, 2, 0, 1, 0), 6);
        assert_eq!(micro_step(3, 2, 1, 1, 0), 7);
        // Two peers with accumulation 1 draw what one device with accumulation 2 draws.
        assert_eq!(micro_step(3, 1, 0, 2, 0), micro_step(3, 2, 0, 1, 0));
        assert_eq!(micro_step(3, 1, 0, 2, 1), micro_step(3, 2, 1, 1, 0));
    }
}
