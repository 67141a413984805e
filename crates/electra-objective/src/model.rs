//! `ElectraPretrainingModel`: the generator and the discriminator around their embeddings
//! (paper §2 and §3.2, spec 2.3-2.6), shared as [`EmbeddingSharing`] says (`sharing.rs`). The
//! forward pass of each objective is in `objectives.rs`.

use burn::prelude::*;
use electra_model::{
    DiscriminatorHead, ElectraConfig, ElectraEmbeddings, ElectraEncoder, ElectraForMaskedLM,
    ElectraForPreTraining, GeneratorHead,
};

use crate::batch::HostBatch;
use crate::config::{EmbeddingSharing, ObjectiveConfig, ObjectiveKind};
use crate::error::ObjectiveError;
use crate::masking::{MaskedBatch, mask_batch, step_rng};
use crate::sampling::device_seed;

/// Where the replacements written into the discriminator's input come from.
#[derive(Clone, Copy, Debug)]
pub enum Replacements<'a> {
    /// Samples from the generator's softmax (training; spec 1.3).
    Sample,
    /// Fixed ids, one per slot `[batch, slots]` (tests and reference comparisons).
    Given(&'a [i64]),
}

/// The pre-training model.
///
/// Sharing by ownership (spec 2.3): with `embedding_sharing = "tied"` (the default)
/// `embeddings` (word, position and token-type tables and the embedding LayerNorm) is stored
/// once and both towers read it, so it is saved once, updated once and receives the sum of both
/// towers' gradients. Each tower owns its own `embeddings_project` (inside [`ElectraEncoder`]),
/// layers and head. `"untied"` gives the generator its own `generator_embeddings` at its own
/// width; `"gdes"` adds `embedding_deltas`, the discriminator's `E_Δ` on top of the
/// stop-gradient `embeddings` ([`EmbeddingSharing`]).
///
/// Which parts exist depends on the objective:
///
/// | objective | generator | `discriminator_predictions` | `mlm_predictions` |
/// |---|---|---|---|
/// | `electra`, `electra-15` | yes | RTD head | – |
/// | `mlm` | – | – | MLM head |
/// | `replace-mlm` | yes | – | MLM head |
/// | `all-tokens-mlm` | yes | copy gate | MLM head |
///
/// "Discriminator" names the discriminator-sized network in every objective (for the MLM
/// baselines it is the model being pre-trained, with an MLM head instead of the RTD head).
#[derive(Module, Debug)]
pub struct ElectraPretrainingModel<B: Backend> {
    /// The embedding block shared by both towers (`tied`); the discriminator's own
    /// (`untied`); the generator's `E_G`, under the discriminator's stop-gradient (`gdes`).
    pub embeddings: ElectraEmbeddings<B>,
    /// The generator's own embedding block at its own width `H_g`; `Some` only when untied.
    pub generator_embeddings: Option<ElectraEmbeddings<B>>,
    /// `gdes` only: the discriminator's `E_Δ` tables (zero at initialisation), added to
    /// `sg(embeddings)`, and its own embedding LayerNorm.
    pub embedding_deltas: Option<ElectraEmbeddings<B>>,
    /// The generator's projection and layers (hidden `H_g`); `None` for `mlm`.
    pub generator: Option<ElectraEncoder<B>>,
    /// The generator's MLM head, tied to the generator's word embeddings; `None` for `mlm`.
    pub generator_predictions: Option<GeneratorHead<B>>,
    /// The discriminator's projection and layers (hidden `H`).
    pub discriminator: ElectraEncoder<B>,
    /// The RTD head (`electra`, `electra-15`) or the copy gate (`all-tokens-mlm`).
    pub discriminator_predictions: Option<DiscriminatorHead<B>>,
    /// An MLM head on the discriminator-sized network (`mlm`, `replace-mlm`,
    /// `all-tokens-mlm`), tied to the shared word embeddings.
    pub mlm_predictions: Option<GeneratorHead<B>>,
    /// The objective's configuration.
    #[module(skip)]
    pub objective: ObjectiveConfig,
}

/// Everything one forward pass computed. Losses are `[1]`; `b` batch, `s` sequence, `N` slots
/// per row, `V` vocabulary.
#[derive(Debug, Clone)]
pub struct ObjectiveOutput<B: Backend> {
    /// The loss to back-propagate (see [`ObjectiveKind`] for its formula per objective).
    pub loss: Tensor<B, 1>,
    /// The generator's MLM loss (for `mlm`: the model's MLM loss).
    pub mlm_loss: Tensor<B, 1>,
    /// The discriminator's RTD loss (`electra`, `electra-15`).
    pub rtd_loss: Option<Tensor<B, 1>>,
    /// The discriminator-sized model's loss in `replace-mlm` and `all-tokens-mlm`.
    pub target_loss: Option<Tensor<B, 1>>,
    /// Logits of [`Self::mlm_loss`] at the slots, `[b·N, V]`.
    pub mlm_logits: Tensor<B, 2>,
    /// MLM targets (original ids) per slot, `[b, N]`.
    pub mlm_targets: Vec<i64>,
    /// 1.0 for active slots, `[b, N]`.
    pub mlm_weights: Vec<f32>,
    /// The generator's samples per slot, `[b, N]` (not for `mlm`).
    pub sampled_ids: Option<Vec<i64>>,
    /// The discriminator's input ids, `[b, s]` (not for `mlm`).
    pub discriminator_input_ids: Option<Vec<i64>>,
    /// 1 where the discriminator's input differs from the original, `[b, s]` (not for `mlm`).
    pub labels: Option<Vec<i64>>,
    /// RTD logits (`electra`, `electra-15`) or copy-gate logits (`all-tokens-mlm`), `[b, s]`.
    pub discriminator_logits: Option<Tensor<B, 2>>,
    /// Which tokens the RTD loss covers, `[b, s]` (`electra`: non-pad; `electra-15`: the
    /// masked positions).
    pub rtd_weights: Option<Vec<f32>>,
}

/// Gathers `hidden [b, s, d]` at `positions [b, n]` → `[b·n, d]`.
pub fn gather_positions<B: Backend>(
    hidden: Tensor<B, 3>,
    positions: Tensor<B, 2, Int>,
) -> Tensor<B, 2> {
    let [b, s, d] = hidden.dims();
    let n = positions.dims()[1];
    let offsets = Tensor::<B, 1, Int>::arange(0..b as i64, &hidden.device())
        .mul_scalar(s as i64)
        .unsqueeze_dim::<2>(1);
    let flat = (positions + offsets).reshape([b * n]);
    hidden.reshape([b * s, d]).select(0, flat)
}

pub(crate) fn missing(part: &str) -> ObjectiveError {
    ObjectiveError::InvalidBatch(format!(
        "this model has no {part}; it was built for another objective"
    ))
}

impl<B: Backend> ElectraPretrainingModel<B> {
    /// The pre-training model of two Hugging Face checkpoints that share their embeddings (as
    /// HF's ELECTRA release does): the discriminator's embedding block serves both towers, the
    /// generator brings its encoder and MLM head. For oracle comparisons and continued
    /// pre-training of imported models.
    pub fn from_hf(
        discriminator: ElectraForPreTraining<B>,
        generator: ElectraForMaskedLM<B>,
        objective: ObjectiveConfig,
    ) -> Self {
        Self {
            embeddings: discriminator.electra.embeddings,
            generator_embeddings: None,
            embedding_deltas: None,
            generator: Some(generator.electra.encoder),
            generator_predictions: Some(generator.generator_predictions),
            discriminator: discriminator.electra.encoder,
            discriminator_predictions: Some(discriminator.discriminator_predictions),
            mlm_predictions: None,
            objective,
        }
    }

    /// A freshly initialised model for `objective`: the discriminator has `model` sizes, the
    /// generator [`ObjectiveConfig::generator_config`] (spec 2.4). Seed the backend first for
    /// reproducibility. `tied` and `gdes` draw the same random numbers in the same order
    /// (`E_Δ` starts at zero), so both start from the same weights.
    pub fn new(
        model: &ElectraConfig,
        objective: &ObjectiveConfig,
        device: &B::Device,
    ) -> Result<Self, ObjectiveError> {
        model.validate()?;
        objective.validate(model.vocab_size)?;
        let kind = objective.objective;
        let generator_config = objective.generator_config(model)?;
        let uses_generator = kind.uses_generator();
        let sharing = objective.embedding_sharing;
        Ok(Self {
            embeddings: ElectraEmbeddings::new(model, device),
            generator_embeddings: (uses_generator && sharing == EmbeddingSharing::Untied)
                .then(|| ElectraEmbeddings::new(&generator_config, device)),
            embedding_deltas: (uses_generator && sharing == EmbeddingSharing::Gdes)
                .then(|| ElectraEmbeddings::zeros(model, device)),
            generator: uses_generator.then(|| ElectraEncoder::new(&generator_config, device)),
            generator_predictions: uses_generator
                .then(|| GeneratorHead::new(&generator_config, device)),
            discriminator: ElectraEncoder::new(model, device),
            discriminator_predictions: matches!(
                kind,
                ObjectiveKind::Electra | ObjectiveKind::Electra15 | ObjectiveKind::AllTokensMlm
            )
            .then(|| DiscriminatorHead::new(model, device)),
            mlm_predictions: matches!(
                kind,
                ObjectiveKind::Mlm | ObjectiveKind::ReplaceMlm | ObjectiveKind::AllTokensMlm
            )
            .then(|| GeneratorHead::new(model, device)),
            objective: objective.clone(),
        })
    }

    /// The device the parameters live on.
    pub fn device(&self) -> B::Device {
        self.embeddings.word_embeddings.weight.val().device()
    }

    /// Vocabulary size `V`.
    pub fn vocab_size(&self) -> usize {
        self.embeddings.word_embeddings.weight.val().dims()[0]
    }

    /// Checks that `batch` fits the position and token-type tables.
    fn check_positions_and_types(&self, batch: &HostBatch) -> Result<(), ObjectiveError> {
        let max_positions = self.embeddings.position_embeddings.weight.val().dims()[0];
        if batch.seq > max_positions {
            return Err(ObjectiveError::InvalidBatch(format!(
                "sequences have {} tokens; the model's max_position_embeddings is {max_positions}",
                batch.seq
            )));
        }
        let types = self.embeddings.token_type_embeddings.weight.val().dims()[0];
        match batch
            .token_type_ids
            .iter()
            .position(|&t| t < 0 || t as u64 >= types as u64)
        {
            Some(i) => Err(ObjectiveError::InvalidBatch(format!(
                "token_type_ids[{}][{}] = {} is out of range (type_vocab_size {types})",
                i / batch.seq,
                i % batch.seq,
                batch.token_type_ids[i]
            ))),
            None => Ok(()),
        }
    }

    /// The generator's embedding block: the shared one unless untied.
    fn generator_embedding_block(&self) -> &ElectraEmbeddings<B> {
        self.generator_embeddings
            .as_ref()
            .unwrap_or(&self.embeddings)
    }

    /// Generator MLM logits at the slots (spec 1.3, 2.5): the generator runs on `input_ids
    /// [b, s]` (the masked ids), its last hidden states are gathered at `positions [b, N]`
    /// and fed to the tied MLM head → `[b·N, V]`.
    pub fn generator_logits(
        &self,
        input_ids: Tensor<B, 2, Int>,
        token_type_ids: Tensor<B, 2, Int>,
        attention_mask: Tensor<B, 4>,
        positions: Tensor<B, 2, Int>,
    ) -> Result<Tensor<B, 2>, ObjectiveError> {
        let (Some(tower), Some(head)) = (&self.generator, &self.generator_predictions) else {
            return Err(missing("generator"));
        };
        let block = self.generator_embedding_block();
        let hidden = tower.forward(block.forward(input_ids, token_type_ids), attention_mask);
        Ok(head.forward(
            gather_positions(hidden, positions),
            block.word_embeddings.weight.val(),
        ))
    }

    /// The discriminator's last hidden states `[b, s, H]` for `input_ids [b, s]`.
    pub fn discriminator_hidden(
        &self,
        input_ids: Tensor<B, 2, Int>,
        token_type_ids: Tensor<B, 2, Int>,
        attention_mask: Tensor<B, 4>,
    ) -> Tensor<B, 3> {
        self.discriminator.forward(
            self.discriminator_embedding_output(input_ids, token_type_ids),
            attention_mask,
        )
    }

    /// One training step's forward pass: seeds the backend with [`device_seed`]`(seed, step)`
    /// (sampling uniforms and dropout), masks `batch` with [`step_rng`]`(seed, step)` and runs
    /// [`Self::forward`] with generator samples. The same `(seed, step)` gives the same masks
    /// on every backend and the same losses on the same backend. The backend RNG is
    /// process-wide (on flex one mutex-guarded stream), so this holds when no other thread
    /// draws from it during the step.
    pub fn step(&self, batch: &HostBatch, step: u64) -> Result<ObjectiveOutput<B>, ObjectiveError> {
        let device = self.device();
        B::seed(&device, device_seed(self.objective.seed, step));
        let mut rng = step_rng(self.objective.seed, step);
        let masked = mask_batch(batch, &self.objective, self.vocab_size(), &mut rng);
        self.forward(batch, &masked, Replacements::Sample)
    }

    /// Checks the batch and its masks against the model (shapes, vocabulary, positions,
    /// token types) before any tensor is built.
    pub(crate) fn check_batch(
        &self,
        batch: &HostBatch,
        masked: &MaskedBatch,
    ) -> Result<(), ObjectiveError> {
        check_shapes(batch, masked, self.vocab_size())?;
        self.check_positions_and_types(batch)
    }
}

/// Checks that `masked` fits `batch` and that every id is inside the vocabulary.
fn check_shapes(
    batch: &HostBatch,
    masked: &MaskedBatch,
    vocab_size: usize,
) -> Result<(), ObjectiveError> {
    let (b, s, n) = (batch.batch, batch.seq, masked.slots);
    batch.check_vocab(vocab_size)?;
    if n == 0 {
        let l = batch.max_seq_len;
        return Err(ObjectiveError::InvalidBatch(format!(
            "no prediction slots: a configured sequence length (max_seq_len) of {l} tokens \
             leaves floor((mask_prob + 0.005)·{l}) = 0"
        )));
    }
    let lengths = [
        ("masked_input_ids", masked.masked_input_ids.len(), b * s),
        ("positions", masked.positions.len(), b * n),
        ("targets", masked.targets.len(), b * n),
        ("weights", masked.weights.len(), b * n),
    ];
    for (name, len, expected) in lengths {
        if len != expected {
            return Err(ObjectiveError::InvalidBatch(format!(
                "masked batch field {name} has {len} entries, expected {expected}"
            )));
        }
    }
    if let Some(p) = masked.positions.iter().find(|&&p| p < 0 || p as usize >= s) {
        return Err(ObjectiveError::InvalidBatch(format!(
            "masked position {p} is outside the sequence (length {s})"
        )));
    }
    if let Some(id) = masked
        .masked_input_ids
        .iter()
        .chain(&masked.targets)
        .find(|&&id| id < 0 || id as u64 >= vocab_size as u64)
    {
        return Err(ObjectiveError::InvalidBatch(format!(
            "masked batch id {id} is outside the vocabulary (size {vocab_size})"
        )));
    }
    Ok(())
}
