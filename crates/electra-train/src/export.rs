//! From a pre-training checkpoint to Hugging Face checkpoints: the discriminator as
//! `ElectraForPreTraining` and the generator as `ElectraForMaskedLM`, each with the embedding
//! block it used in training (the shared one, spec 2.3), as HF's converter does for the
//! released models (spec 8.3).

use std::path::{Path, PathBuf};

use burn::prelude::*;
use electra_model::hf::{self, Architecture};
use electra_model::{ElectraConfig, ElectraForMaskedLM, ElectraForPreTraining, ElectraModel};
use electra_objective::ElectraPretrainingModel;

use crate::error::TrainError;
use crate::pretrained::{RunCheckpoint, load_newest};

/// The discriminator of a pre-training model as an HF-shaped `ElectraForPreTraining`.
pub fn discriminator<B: Backend>(
    model: &ElectraPretrainingModel<B>,
) -> Result<ElectraForPreTraining<B>, TrainError> {
    let head = model.discriminator_predictions.clone().ok_or_else(|| {
        TrainError::InvalidConfig(
            "this model has no replaced-token-detection head (objective without one); \
             there is no ElectraForPreTraining to export"
                .to_string(),
        )
    })?;
    Ok(ElectraForPreTraining {
        electra: ElectraModel {
            embeddings: model.embeddings.clone(),
            encoder: model.discriminator.clone(),
        },
        discriminator_predictions: head,
    })
}

/// The generator of a pre-training model as an HF-shaped `ElectraForMaskedLM`, if it has one.
pub fn generator<B: Backend>(model: &ElectraPretrainingModel<B>) -> Option<ElectraForMaskedLM<B>> {
    let (tower, head) = (
        model.generator.clone()?,
        model.generator_predictions.clone()?,
    );
    let embeddings = model
        .generator_embeddings
        .clone()
        .unwrap_or_else(|| model.embeddings.clone());
    Some(ElectraForMaskedLM {
        electra: ElectraModel {
            embeddings,
            encoder: tower,
        },
        generator_predictions: head,
    })
}

/// What [`export_run`] wrote.
#[derive(Debug)]
pub struct Exported {
    /// The checkpoint exported.
    pub checkpoint: PathBuf,
    /// `OUT/discriminator`.
    pub discriminator: PathBuf,
    /// `OUT/generator`, when the objective has a generator.
    pub generator: Option<PathBuf>,
}

/// Writes the newest checkpoint of `run_dir` as HF checkpoints under `out/discriminator` and
/// `out/generator` (config.json and model.safetensors; the caller adds the tokenizer files).
pub fn export_run<B: Backend>(
    run_dir: &Path,
    out: &Path,
    device: &B::Device,
) -> Result<Exported, TrainError> {
    let RunCheckpoint {
        config, model, dir, ..
    } = load_newest::<B>(run_dir, device)?;

    let disc_dir = out.join("discriminator");
    hf::save(
        &discriminator(&model)?,
        &config.model,
        Architecture::PreTraining,
        &disc_dir,
    )?;
    let generator_dir = match generator(&model) {
        Some(g) => {
            let gen_config: ElectraConfig = config.model.generator_config(
                config.objective.generator_hidden_multiplier,
                config.objective.generator_layers_multiplier,
            )?;
            let gen_dir = out.join("generator");
            hf::save(&g, &gen_config, Architecture::MaskedLm, &gen_dir)?;
            Some(gen_dir)
        }
        None => None,
    };
    Ok(Exported {
        checkpoint: dir,
        discriminator: disc_dir,
        generator: generator_dir,
    })
}
