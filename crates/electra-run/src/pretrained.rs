//! A run directory's newest checkpoint as a model, for the commands that start from it
//! (`electra export`, `electra finetune`, `electra glue`, `electra squad`), and the
//! discriminator-sized encoder fine-tuning starts from.

use std::path::{Path, PathBuf};

use burn::prelude::*;
use electra_model::ElectraModel;
use electra_objective::ElectraPretrainingModel;

use crate::checkpoint;
use crate::config::RunConfig;
use crate::error::RunError;

/// The newest complete checkpoint of a run, loaded.
#[derive(Debug)]
pub struct RunCheckpoint<B: Backend> {
    /// The run's resolved configuration (`RUN_DIR/config.toml`).
    pub config: RunConfig,
    /// The pre-training model (both towers, shared embeddings).
    pub model: ElectraPretrainingModel<B>,
    /// The checkpoint directory loaded.
    pub dir: PathBuf,
    /// Its step.
    pub step: u64,
}

/// Loads the newest complete checkpoint of `run_dir` (one that is still being written is not
/// listed, so this is safe while the run goes on). A damaged newest checkpoint is skipped with
/// a warning for the newest intact one (see [`checkpoint::newest_intact`]).
pub fn load_newest<B: Backend>(
    run_dir: &Path,
    device: &B::Device,
) -> Result<RunCheckpoint<B>, RunError> {
    let config_path = run_dir.join("config.toml");
    let config = RunConfig::resolve(None, Some(&config_path), &[])?;
    let mut objective = config.objective.clone();
    objective.seed = config.objective_seed();
    let model = ElectraPretrainingModel::<B>::new(&config.model, &objective, device)?;
    let (step, dir, model) = checkpoint::newest_intact(run_dir, |_, dir| {
        let mut candidate = model.clone();
        checkpoint::load_model(dir, &mut candidate)?;
        Ok(candidate)
    })?
    .ok_or_else(|| {
        RunError::InvalidConfig(format!("{}: the run has no checkpoint", run_dir.display()))
    })?;
    Ok(RunCheckpoint {
        config,
        model,
        dir,
        step,
    })
}

/// The discriminator-sized encoder (shared embeddings and discriminator tower, no head) of the
/// newest checkpoint of `run_dir`, with the checkpoint it came from. Works for every
/// objective: fine-tuning needs the encoder, not the head pre-training used.
pub fn load_encoder<B: Backend>(
    run_dir: &Path,
    device: &B::Device,
) -> Result<(ElectraModel<B>, RunCheckpoint<B>), RunError> {
    let run = load_newest::<B>(run_dir, device)?;
    let encoder = encoder(&run.model);
    Ok((encoder, run))
}

/// The discriminator-sized encoder of a pre-training model, whatever its objective and
/// embedding sharing: the discriminator's embedding block (under `gdes` the folded
/// `E_G + E_Δ`, see [`ElectraPretrainingModel::discriminator_embeddings`]) and the
/// discriminator tower (no head), what export and fine-tuning start from.
pub fn encoder<B: Backend>(model: &ElectraPretrainingModel<B>) -> ElectraModel<B> {
    ElectraModel {
        embeddings: model.discriminator_embeddings(),
        encoder: model.discriminator.clone(),
    }
}

#[cfg(test)]
mod tests {
    use burn::backend::Flex;
    use burn::prelude::*;
    use electra_model::ElectraConfig;
    use electra_objective::{EmbeddingSharing, ObjectiveConfig};

    use super::*;

    /// Fine-tuning and export start from [`encoder`]: under GDES its embedding block must give
    /// what the discriminator read in pre-training, `sg(E_G) + E_Δ`, not `E_G` alone.
    #[test]
    fn the_gdes_encoder_embeds_with_the_delta() {
        let device = Default::default();
        let model_config = ElectraConfig {
            max_position_embeddings: 8,
            ..ElectraConfig::micro(20)
        };
        let objective = ObjectiveConfig {
            embedding_sharing: EmbeddingSharing::Gdes,
            generator_hidden_multiplier: 0.5,
            cls_token_id: 1,
            sep_token_id: 2,
            mask_token_id: 3,
            ..ObjectiveConfig::default()
        };
        let mut model = ElectraPretrainingModel::<Flex>::new(&model_config, &objective, &device)
            .expect("model");
        // A trained-looking E_Δ (not a constant per row, which the LayerNorm would cancel).
        let deltas = model.embedding_deltas.take().expect("E_Δ");
        let moved = deltas
            .tables()
            .map(|t| t.random_like(burn::tensor::Distribution::Uniform(-1.0, 1.0)));
        model.embedding_deltas = Some(deltas.with_tables(moved));
        let ids = Tensor::<Flex, 2, Int>::from_data([[1, 5, 6, 7, 2]], &device);
        let types = ids.zeros_like();
        let trained = model.discriminator_embedding_output(ids.clone(), types.clone());
        let ours = encoder(&model)
            .embeddings
            .forward(ids.clone(), types.clone());
        let diff: f32 = (trained.clone() - ours).abs().max().into_scalar();
        assert!(diff < 1e-6, "{diff}");
        let without: f32 = (trained - model.embeddings.forward(ids, types))
            .abs()
            .max()
            .into_scalar();
        assert!(without > 1e-3, "E_Δ must matter here: {without}");
    }
}
