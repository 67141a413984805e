//! Embedding sharing between the generator and the discriminator ([`EmbeddingSharing`]): the
//! discriminator's view of the embeddings in each mode, the block that export and fine-tuning
//! keep, and the assembly of a pre-training model from a released Hugging Face pair.
//!
//! Gradient-disentangled sharing (DeBERTa-v3 §3.3) computes the discriminator's tables as
//! `sg(E_G) + E_Δ`: `E_G` is [`ElectraPretrainingModel::embeddings`] behind `detach()`, so the
//! RTD loss reaches only `E_Δ` (and the discriminator's own LayerNorm), while the generator
//! reads `E_G` directly and its MLM loss never sees `E_Δ`. With `E_Δ = 0` at initialisation the
//! discriminator's tables equal `E_G` bit for bit, so step 0 computes what tied sharing
//! computes. After training the discriminator's block is `E_G + E_Δ` with its own LayerNorm
//! ([`ElectraPretrainingModel::discriminator_embeddings`]), a plain embedding block that HF
//! export and fine-tuning use as any other.

use burn::prelude::*;
use electra_model::{
    ElectraEmbeddings, ElectraForMaskedLM, ElectraForPreTraining, ElectraModel, LayerNorm,
};

use crate::config::{EmbeddingSharing, ObjectiveConfig, ObjectiveKind};
use crate::error::ObjectiveError;
use crate::model::ElectraPretrainingModel;

impl<B: Backend> ElectraPretrainingModel<B> {
    /// The discriminator's embedding output `[b, s, E]` for `input_ids [b, s]`: the shared
    /// (or, untied, its own) block; under `gdes` the tables `sg(E_G) + E_Δ` with the
    /// discriminator's own LayerNorm.
    pub fn discriminator_embedding_output(
        &self,
        input_ids: Tensor<B, 2, Int>,
        token_type_ids: Tensor<B, 2, Int>,
    ) -> Tensor<B, 3> {
        match &self.embedding_deltas {
            Some(deltas) => {
                let tables = self.embeddings.tables().map(Tensor::detach) + deltas.tables();
                deltas.forward_tables(tables, input_ids, token_type_ids)
            }
            None => self.embeddings.forward(input_ids, token_type_ids),
        }
    }

    /// The discriminator's word table `[V, E]` (the output matrix of a discriminator-sized MLM
    /// head): `sg(E_G.word) + E_Δ.word` under `gdes`, else the block's own.
    pub fn discriminator_word_table(&self) -> Tensor<B, 2> {
        let word = self.embeddings.word_embeddings.weight.val();
        match &self.embedding_deltas {
            Some(deltas) => word.detach() + deltas.word_embeddings.weight.val(),
            None => word,
        }
    }

    /// The discriminator's embedding block as one plain block, what export and fine-tuning
    /// use: under `gdes` the folded `E_G + E_Δ` tables with the discriminator's LayerNorm;
    /// otherwise [`Self::embeddings`].
    pub fn discriminator_embeddings(&self) -> ElectraEmbeddings<B> {
        match &self.embedding_deltas {
            Some(deltas) => deltas.with_tables(self.embeddings.tables() + deltas.tables()),
            None => self.embeddings.clone(),
        }
    }

    /// The pre-training model of a released pair of Hugging Face checkpoints (an
    /// `ElectraForPreTraining` discriminator and an `ElectraForMaskedLM` generator), shared as
    /// `objective.embedding_sharing` says. The released models store their shared embedding
    /// block twice; [`PairReport`] says how the two copies differ and what became of them:
    ///
    /// - `tied`: one block is kept, the discriminator's (the copy fine-tuning reads);
    /// - `gdes`: the generator's copy becomes `E_G`, the difference (discriminator − generator)
    ///   `E_Δ`, and the discriminator's LayerNorm its own, so both networks compute what they
    ///   computed before;
    /// - `untied`: each keeps its own block; the generator's must be of its own hidden width
    ///   (as the reference's untied generator is), which the released pairs are not.
    pub fn from_hf_pair(
        discriminator: ElectraForPreTraining<B>,
        generator: ElectraForMaskedLM<B>,
        objective: ObjectiveConfig,
    ) -> Result<(Self, PairReport), ObjectiveError> {
        let (d, g) = (
            &discriminator.electra.embeddings,
            &generator.electra.embeddings,
        );
        let sharing = objective.embedding_sharing;
        if !matches!(
            objective.objective,
            ObjectiveKind::Electra | ObjectiveKind::Electra15
        ) {
            return Err(ObjectiveError::InvalidConfig {
                field: "objective",
                message: format!(
                    "is `{}`; a released generator and discriminator continue ELECTRA \
                     (`electra` or `electra-15`)",
                    objective.objective.name()
                ),
            });
        }
        let differences = if sharing == EmbeddingSharing::Untied {
            let tower = &generator.electra.encoder;
            if tower.embeddings_project.is_some() {
                return Err(ObjectiveError::InvalidConfig {
                    field: "embedding_sharing",
                    message: "is \"untied\", whose generator embeds at its own hidden width, \
                              but the generator checkpoint has an embeddings_project (its \
                              embedding_size differs from its hidden_size); continue it with \
                              \"tied\" or \"gdes\""
                        .into(),
                });
            }
            Vec::new()
        } else {
            copy_differences(d, g)?
        };
        let ElectraModel {
            embeddings: d_block,
            encoder: d_tower,
        } = discriminator.electra;
        let ElectraModel {
            embeddings: g_block,
            encoder: g_tower,
        } = generator.electra;
        let (embeddings, generator_embeddings, embedding_deltas, kept) = match sharing {
            EmbeddingSharing::Tied => (
                d_block,
                None,
                None,
                "the discriminator's copy (both towers read it)",
            ),
            EmbeddingSharing::Untied => (
                d_block,
                Some(g_block),
                None,
                "both: each network keeps its own block",
            ),
            EmbeddingSharing::Gdes => {
                let deltas = d_block.tables() + g_block.tables().map(Tensor::neg);
                (
                    g_block,
                    None,
                    Some(d_block.with_tables(deltas)),
                    "both: the generator's copy is E_G, the discriminator's minus it E_Δ",
                )
            }
        };
        let model = Self {
            embeddings,
            generator_embeddings,
            embedding_deltas,
            generator: Some(g_tower),
            generator_predictions: Some(generator.generator_predictions),
            discriminator: d_tower,
            discriminator_predictions: Some(discriminator.discriminator_predictions),
            mlm_predictions: None,
            objective,
        };
        Ok((model, PairReport { differences, kept }))
    }
}

/// How the two stored copies of a released pair's embedding block compare
/// ([`ElectraPretrainingModel::from_hf_pair`]).
#[derive(Clone, Debug, PartialEq)]
pub struct PairReport {
    /// Each tensor of the block whose copies differ, with the largest absolute difference
    /// (empty when they agree bit for bit, and under `untied`, which compares nothing).
    pub differences: Vec<(String, f32)>,
    /// Which copy the model keeps, in words.
    pub kept: &'static str,
}

/// The block's tensors whose discriminator and generator copies differ, with the largest
/// absolute difference of each; an error naming the first whose shapes differ.
fn copy_differences<B: Backend>(
    d: &ElectraEmbeddings<B>,
    g: &ElectraEmbeddings<B>,
) -> Result<Vec<(String, f32)>, ObjectiveError> {
    let (dl, gl): (&LayerNorm<B>, &LayerNorm<B>) = (&d.layer_norm, &g.layer_norm);
    let (dt, gt) = (d.tables(), g.tables());
    let ((dg, db), (gg, gb)) = (dl.parameters(), gl.parameters());
    let pairs: [(&str, Tensor<B, 2>, Tensor<B, 2>); 5] = [
        ("word_embeddings", dt.word, gt.word),
        ("position_embeddings", dt.position, gt.position),
        ("token_type_embeddings", dt.token_type, gt.token_type),
        ("LayerNorm.weight", dg.unsqueeze(), gg.unsqueeze()),
        ("LayerNorm.bias", db.unsqueeze(), gb.unsqueeze()),
    ];
    let mut out = Vec::new();
    for (name, a, b) in pairs {
        if a.dims() != b.dims() {
            return Err(ObjectiveError::InvalidConfig {
                field: "embedding_sharing",
                message: format!(
                    "shares the embeddings, but embeddings.{name} is {:?} in the discriminator \
                     and {:?} in the generator; continue such a pair with \"untied\"",
                    a.dims(),
                    b.dims()
                ),
            });
        }
        let diff = (a - b).abs().max().into_scalar().elem::<f32>();
        if diff != 0.0 {
            out.push((format!("embeddings.{name}"), diff));
        }
    }
    Ok(out)
}
