//! The forward pass of each objective, one function each, over a shared generator pass.
//!
//! [`ElectraPretrainingModel::forward`] validates the batch, moves it to the device once
//! ([`StepTensors`]) and calls the objective's function. Every objective but `mlm` starts with
//! [`ElectraPretrainingModel::generator_pass`]: generator MLM on the masked input, samples (or
//! given replacements), the corrupted input and the discriminator's hidden states over it.
//! Adding an objective means one [`ObjectiveKind`] variant, one function here and one arm in
//! `forward`'s match (and, if it needs a head of its own, a line in
//! [`ElectraPretrainingModel::new`]).
//!
//! The order of the backend's random draws (generator dropout, sampling uniforms,
//! discriminator dropout) is the same for every objective and must stay so: the exact-resume
//! tests and the PyTorch-reference losses pin it.

use burn::prelude::*;
use electra_model::{GeneratorHead, additive_attention_mask};

use crate::batch::{HostBatch, float_tensor, int_tensor};
use crate::config::ObjectiveKind;
use crate::error::ObjectiveError;
use crate::losses::{copy_mlm_loss, masked_lm_loss, rtd_loss};
use crate::masking::{MaskedBatch, corrupt};
use crate::model::{
    ElectraPretrainingModel, ObjectiveOutput, Replacements, gather_positions, missing,
};
use crate::sampling::sample_from_softmax;

/// One batch on the device: `b` rows, `s` tokens, `n` slots per row.
pub(crate) struct StepTensors<B: Backend> {
    b: usize,
    s: usize,
    n: usize,
    /// `[b, s]`.
    token_type_ids: Tensor<B, 2, Int>,
    /// Additive key mask, `[b, 1, 1, s]`.
    attention_mask: Tensor<B, 4>,
    /// The generator's (or the `mlm` model's) input, `[b, s]`.
    masked_ids: Tensor<B, 2, Int>,
    /// Slot positions, `[b, n]`.
    positions: Tensor<B, 2, Int>,
    /// Original ids per slot, `[b·n]`.
    targets: Tensor<B, 1, Int>,
    /// 1.0 for active slots, `[b·n]`.
    slot_weights: Tensor<B, 1>,
    /// 1.0 for non-pad tokens, `[b, s]` (host).
    non_pad: Vec<f32>,
}

impl<B: Backend> StepTensors<B> {
    pub(crate) fn new(batch: &HostBatch, masked: &MaskedBatch, device: &B::Device) -> Self {
        let (b, s, n) = (batch.batch, batch.seq, masked.slots);
        Self {
            b,
            s,
            n,
            token_type_ids: int_tensor::<B>(&batch.token_type_ids, b, s, device),
            attention_mask: additive_attention_mask(int_tensor::<B>(
                &batch.attention_mask,
                b,
                s,
                device,
            )),
            masked_ids: int_tensor::<B>(&masked.masked_input_ids, b, s, device),
            positions: int_tensor::<B>(&masked.positions, b, n, device),
            targets: int_tensor::<B>(&masked.targets, b, n, device).reshape([b * n]),
            slot_weights: float_tensor::<B>(&masked.weights, b, n, device).reshape([b * n]),
            non_pad: batch.attention_mask.iter().map(|&m| m as f32).collect(),
        }
    }
}

/// What every generator-based objective shares: the generator's MLM and the discriminator-sized
/// network's hidden states over the corrupted input.
pub(crate) struct GeneratorPass<B: Backend> {
    /// Generator MLM logits at the slots, `[b·N, V]`.
    logits: Tensor<B, 2>,
    /// The generator's MLM loss, `[1]`.
    mlm_loss: Tensor<B, 1>,
    /// Replacement per slot, `[b, N]`.
    sampled: Vec<i64>,
    /// The discriminator's input, `[b, s]`.
    disc_ids: Vec<i64>,
    /// 1 where `disc_ids` differs from the original, `[b, s]`.
    labels: Vec<i64>,
    /// The discriminator tower's last hidden states, `[b, s, H]`.
    hidden: Tensor<B, 3>,
}

impl<B: Backend> GeneratorPass<B> {
    /// The output of an objective that trains the discriminator-sized model on `target`
    /// (`replace-mlm`, `all-tokens-mlm`): `loss = gen_weight·mlm_loss + target`.
    fn with_target(
        self,
        target: Tensor<B, 1>,
        gen_weight: f64,
        masked: &MaskedBatch,
    ) -> ObjectiveOutput<B> {
        let loss = self.mlm_loss.clone().mul_scalar(gen_weight) + target.clone();
        let mut out = self.output(loss, masked);
        out.target_loss = Some(target);
        out
    }

    /// The output with `loss` and the generator's fields; the objective fills in the rest.
    fn output(self, loss: Tensor<B, 1>, masked: &MaskedBatch) -> ObjectiveOutput<B> {
        ObjectiveOutput {
            loss,
            mlm_loss: self.mlm_loss,
            rtd_loss: None,
            target_loss: None,
            mlm_logits: self.logits,
            mlm_targets: masked.targets.clone(),
            mlm_weights: masked.weights.clone(),
            sampled_ids: Some(self.sampled),
            discriminator_input_ids: Some(self.disc_ids),
            labels: Some(self.labels),
            discriminator_logits: None,
            rtd_weights: None,
        }
    }
}

impl<B: Backend> ElectraPretrainingModel<B> {
    /// The objective's forward pass on a masked batch (paper §2, spec 1.3-1.5, and the §3.5
    /// baselines). `batch` holds the original ids, `masked` the generator input and slots.
    pub fn forward(
        &self,
        batch: &HostBatch,
        masked: &MaskedBatch,
        replacements: Replacements<'_>,
    ) -> Result<ObjectiveOutput<B>, ObjectiveError> {
        self.check_batch(batch, masked)?;
        let t = StepTensors::new(batch, masked, &self.device());
        match self.objective.objective {
            ObjectiveKind::Mlm => self.mlm(masked, t),
            ObjectiveKind::Electra => {
                self.replaced_token_detection(batch, masked, t, replacements, false)
            }
            ObjectiveKind::Electra15 => {
                self.replaced_token_detection(batch, masked, t, replacements, true)
            }
            ObjectiveKind::ReplaceMlm => self.replace_mlm(batch, masked, t, replacements),
            ObjectiveKind::AllTokensMlm => self.all_tokens_mlm(batch, masked, t, replacements),
        }
    }

    /// Generator MLM on the masked input (spec 1.3; one forward feeds loss and sampler), the
    /// replacements (stop-gradient samples, or `replacements`' given ids), the corrupted input
    /// (spec 1.4) and the discriminator tower over it.
    fn generator_pass(
        &self,
        batch: &HostBatch,
        masked: &MaskedBatch,
        t: &StepTensors<B>,
        replacements: Replacements<'_>,
    ) -> Result<GeneratorPass<B>, ObjectiveError> {
        let logits = self.generator_logits(
            t.masked_ids.clone(),
            t.token_type_ids.clone(),
            t.attention_mask.clone(),
            t.positions.clone(),
        )?;
        let mlm_loss = masked_lm_loss(logits.clone(), t.targets.clone(), t.slot_weights.clone());
        let sampled = match replacements {
            Replacements::Sample => {
                let disallow = self
                    .objective
                    .disallow_correct
                    .then_some(&masked.targets[..]);
                sample_from_softmax(logits.clone(), self.objective.temperature, disallow)
            }
            Replacements::Given(ids) => self.check_given(ids, t.b * t.n)?.to_vec(),
        };
        let (disc_ids, labels) = corrupt(batch, masked, &sampled);
        let hidden = self.discriminator_hidden(
            int_tensor::<B>(&disc_ids, t.b, t.s, &self.device()),
            t.token_type_ids.clone(),
            t.attention_mask.clone(),
        );
        Ok(GeneratorPass {
            logits,
            mlm_loss,
            sampled,
            disc_ids,
            labels,
            hidden,
        })
    }

    /// The discriminator-sized model's MLM logits at the slots: `hidden [b, s, H]` gathered at
    /// `positions [b, N]` through `head`, tied to the discriminator's word embeddings →
    /// `[b·N, V]`.
    fn slot_logits(
        &self,
        head: &GeneratorHead<B>,
        hidden: Tensor<B, 3>,
        positions: Tensor<B, 2, Int>,
    ) -> Tensor<B, 2> {
        head.forward(
            gather_positions(hidden, positions),
            self.discriminator_word_table(),
        )
    }

    /// Given replacements must be one in-vocabulary id per slot.
    fn check_given<'a>(&self, ids: &'a [i64], slots: usize) -> Result<&'a [i64], ObjectiveError> {
        if ids.len() != slots {
            return Err(ObjectiveError::InvalidBatch(format!(
                "{} given replacements for {slots} slots",
                ids.len()
            )));
        }
        let vocab = self.vocab_size();
        match ids.iter().find(|&&id| id < 0 || id as usize >= vocab) {
            Some(id) => Err(ObjectiveError::InvalidBatch(format!(
                "given replacement {id} is outside the vocabulary"
            ))),
            None => Ok(ids),
        }
    }

    /// BERT baseline (paper §3.5): MLM on the discriminator-sized model, no generator.
    fn mlm(
        &self,
        masked: &MaskedBatch,
        t: StepTensors<B>,
    ) -> Result<ObjectiveOutput<B>, ObjectiveError> {
        let head = required(&self.mlm_predictions, "MLM head")?;
        let hidden = self.discriminator_hidden(t.masked_ids, t.token_type_ids, t.attention_mask);
        let logits = self.slot_logits(head, hidden, t.positions);
        let mlm_loss = masked_lm_loss(logits.clone(), t.targets, t.slot_weights);
        Ok(ObjectiveOutput {
            loss: mlm_loss.clone(),
            mlm_loss,
            rtd_loss: None,
            target_loss: None,
            mlm_logits: logits,
            mlm_targets: masked.targets.clone(),
            mlm_weights: masked.weights.clone(),
            sampled_ids: None,
            discriminator_input_ids: None,
            labels: None,
            discriminator_logits: None,
            rtd_weights: None,
        })
    }

    /// ELECTRA (spec 1.5): RTD over every non-pad token; with `masked_only` (ELECTRA 15 %,
    /// §3.5) over the masked positions only.
    fn replaced_token_detection(
        &self,
        batch: &HostBatch,
        masked: &MaskedBatch,
        t: StepTensors<B>,
        replacements: Replacements<'_>,
        masked_only: bool,
    ) -> Result<ObjectiveOutput<B>, ObjectiveError> {
        let head = required(&self.discriminator_predictions, "discriminator head")?;
        let pass = self.generator_pass(batch, masked, &t, replacements)?;
        let (b, s, device) = (t.b, t.s, self.device());
        let logits = head.forward(pass.hidden.clone());
        let weights = if masked_only {
            masked.position_indicator(b, s)
        } else {
            t.non_pad
        };
        let label_values: Vec<f32> = pass.labels.iter().map(|&l| l as f32).collect();
        let rtd = rtd_loss(
            logits.clone(),
            float_tensor::<B>(&label_values, b, s, &device),
            float_tensor::<B>(&weights, b, s, &device),
        );
        let cfg = &self.objective;
        let loss = pass.mlm_loss.clone().mul_scalar(cfg.gen_weight)
            + rtd.clone().mul_scalar(cfg.disc_weight);
        let mut out = pass.output(loss, masked);
        out.rtd_loss = Some(rtd);
        out.discriminator_logits = Some(logits);
        out.rtd_weights = Some(weights);
        Ok(out)
    }

    /// Replace MLM (§3.5): predict the originals at the slots from the corrupted input.
    fn replace_mlm(
        &self,
        batch: &HostBatch,
        masked: &MaskedBatch,
        t: StepTensors<B>,
        replacements: Replacements<'_>,
    ) -> Result<ObjectiveOutput<B>, ObjectiveError> {
        let head = required(&self.mlm_predictions, "MLM head")?;
        let pass = self.generator_pass(batch, masked, &t, replacements)?;
        let logits = self.slot_logits(head, pass.hidden.clone(), t.positions);
        let target = masked_lm_loss(logits, t.targets, t.slot_weights);
        Ok(pass.with_target(target, self.objective.gen_weight, masked))
    }

    /// All-Tokens MLM (§3.5): predict every non-pad token through the copy gate.
    fn all_tokens_mlm(
        &self,
        batch: &HostBatch,
        masked: &MaskedBatch,
        t: StepTensors<B>,
        replacements: Replacements<'_>,
    ) -> Result<ObjectiveOutput<B>, ObjectiveError> {
        let (Some(mlm_head), Some(gate)) = (&self.mlm_predictions, &self.discriminator_predictions)
        else {
            return Err(missing("MLM head and copy gate"));
        };
        let pass = self.generator_pass(batch, masked, &t, replacements)?;
        let (b, s, device) = (t.b, t.s, self.device());
        let copy_logits = gate.forward(pass.hidden.clone());
        let h = pass.hidden.dims()[2];
        let logits = mlm_head.forward(
            pass.hidden.clone().reshape([b * s, h]),
            self.discriminator_word_table(),
        );
        let is_copy: Vec<f32> = pass.labels.iter().map(|&l| (1 - l) as f32).collect();
        let target = copy_mlm_loss(
            logits,
            copy_logits.clone().reshape([b * s]),
            int_tensor::<B>(&batch.input_ids, b, s, &device).reshape([b * s]),
            float_tensor::<B>(&is_copy, b, s, &device).reshape([b * s]),
            float_tensor::<B>(&t.non_pad, b, s, &device).reshape([b * s]),
        );
        let mut out = pass.with_target(target, self.objective.gen_weight, masked);
        out.discriminator_logits = Some(copy_logits);
        Ok(out)
    }
}

/// The model's `part` (a head built only for some objectives), or an error naming it.
fn required<'a, T>(part: &'a Option<T>, name: &str) -> Result<&'a T, ObjectiveError> {
    part.as_ref().ok_or_else(|| missing(name))
}
