//! From a pre-training checkpoint to Hugging Face checkpoints: the discriminator-sized network
//! and the generator, each with the embedding block it used in training (the shared one, spec
//! 2.3), as HF's converter does for the released models (spec 8.3).
//!
//! Every objective exports its discriminator-sized network to `OUT/discriminator`, so every run
//! can be fine-tuned; the HF class follows the head pre-training trained:
//!
//! | objective | `OUT/discriminator` | `OUT/generator` |
//! |---|---|---|
//! | `electra`, `electra-15` | `ElectraForPreTraining` (RTD head) | `ElectraForMaskedLM` |
//! | `all-tokens-mlm` | `ElectraForPreTraining` (its head is the copy gate) | `ElectraForMaskedLM` |
//! | `replace-mlm` | `ElectraForMaskedLM` (discriminator-sized, its MLM head) | `ElectraForMaskedLM` |
//! | `mlm` | `ElectraForMaskedLM` (discriminator-sized, its MLM head) | – |
//!
//! The MLM baselines are exported as `ElectraForMaskedLM` rather than as an
//! `ElectraForPreTraining` with a made-up replaced-token head: their network *is* a masked LM
//! (HF's `ElectraGeneratorPredictions` + tied `generator_lm_head`, at the discriminator's
//! sizes), so every tensor in the file was trained, and `transformers` loads the directory with
//! `ElectraForMaskedLM.from_pretrained` or, dropping the head, with `ElectraModel` /
//! `ElectraForSequenceClassification.from_pretrained`, as it does any ELECTRA checkpoint.
//! `electra finetune` reads either class (it needs only the embeddings and the encoder).

use std::path::{Path, PathBuf};

use burn::prelude::*;
use electra_model::hf::{self, Architecture};
use electra_model::{ElectraConfig, ElectraForMaskedLM, ElectraForPreTraining, ElectraModel};
use electra_objective::ElectraPretrainingModel;
use electra_objective::ObjectiveKind;

use crate::error::TrainError;
use crate::pretrained::{RunCheckpoint, load_newest};

pub use electra_run::pretrained::encoder;

/// The discriminator of a pre-training model as an HF-shaped `ElectraForPreTraining`; an error
/// for the objectives without a replaced-token head (`mlm`, `replace-mlm`: see
/// [`discriminator_masked_lm`]).
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
        electra: encoder(model),
        discriminator_predictions: head,
    })
}

/// The discriminator-sized network of an MLM baseline (`mlm`, `replace-mlm`) with its MLM head
/// (tied to the shared word embeddings), as an HF-shaped `ElectraForMaskedLM`; `None` for the
/// objectives without that head.
pub fn discriminator_masked_lm<B: Backend>(
    model: &ElectraPretrainingModel<B>,
) -> Option<ElectraForMaskedLM<B>> {
    Some(ElectraForMaskedLM {
        electra: encoder(model),
        generator_predictions: model.mlm_predictions.clone()?,
    })
}

/// The HF class `OUT/discriminator` is written as for `objective` (module docs).
pub fn discriminator_architecture(objective: ObjectiveKind) -> Architecture {
    match objective {
        ObjectiveKind::Mlm | ObjectiveKind::ReplaceMlm => Architecture::MaskedLm,
        ObjectiveKind::Electra | ObjectiveKind::Electra15 | ObjectiveKind::AllTokensMlm => {
            Architecture::PreTraining
        }
    }
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
    /// `OUT/discriminator`: the discriminator-sized network.
    pub discriminator: PathBuf,
    /// The HF class it was written as (module docs).
    pub discriminator_architecture: Architecture,
    /// `OUT/generator`, when the objective has a generator.
    pub generator: Option<PathBuf>,
}

/// Writes the newest checkpoint of `run_dir` as HF checkpoints under `out/discriminator` and
/// `out/generator` (config.json and model.safetensors; the caller adds the tokenizer files).
/// Every objective writes `out/discriminator`, as the class in the module docs' table.
pub fn export_run<B: Backend>(
    run_dir: &Path,
    out: &Path,
    device: &B::Device,
) -> Result<Exported, TrainError> {
    let RunCheckpoint {
        config, model, dir, ..
    } = load_newest::<B>(run_dir, device)?;

    let disc_dir = out.join("discriminator");
    let architecture = discriminator_architecture(config.objective.objective);
    match architecture {
        Architecture::PreTraining => {
            hf::save(
                &discriminator(&model)?,
                &config.model,
                architecture,
                &disc_dir,
            )?;
        }
        Architecture::MaskedLm => {
            let masked_lm = discriminator_masked_lm(&model).ok_or_else(|| {
                TrainError::InvalidConfig(format!(
                    "objective `{}`: the checkpoint has no MLM head to export",
                    config.objective.objective.name()
                ))
            })?;
            hf::save(&masked_lm, &config.model, architecture, &disc_dir)?;
        }
    }
    let generator_dir = match generator(&model) {
        Some(g) => {
            let gen_config: ElectraConfig = config.objective.generator_config(&config.model)?;
            let gen_dir = out.join("generator");
            hf::save(&g, &gen_config, Architecture::MaskedLm, &gen_dir)?;
            Some(gen_dir)
        }
        None => None,
    };
    Ok(Exported {
        checkpoint: dir,
        discriminator: disc_dir,
        discriminator_architecture: architecture,
        generator: generator_dir,
    })
}

/// What `export_into` writes into its output directory.
const OUTPUTS: [&str; 2] = ["discriminator", "generator"];

/// The tokenizer files of a run directory, copied beside each exported model.
const TOKENIZER_FILES: [&str; 2] = ["vocab.txt", "tokenizer.json"];

/// [`export_run`] into `out` as a command does it: `out/discriminator` and `out/generator`, each
/// with the run's tokenizer files. An `out` that already holds either is refused unless
/// `overwrite` (then both go, so a `generator/` of an earlier export never stays beside a
/// model that has none). Everything is written into a staging directory inside `out` and moved
/// into place once complete, so a failed export leaves the earlier one as it was. Returns the
/// final paths.
pub fn export_into<B: Backend>(
    run_dir: &Path,
    out: &Path,
    overwrite: bool,
    device: &B::Device,
) -> Result<Exported, TrainError> {
    let old = electra_fs::Outputs::find(out, &OUTPUTS).refuse_unless(overwrite, "an export")?;
    let staging = electra_fs::staging_in(out, "export")?;
    let staged = export_run::<B>(run_dir, staging.path(), device)?;
    for target in std::iter::once(&staged.discriminator).chain(&staged.generator) {
        for name in TOKENIZER_FILES {
            let from = run_dir.join(name);
            if from.is_file() {
                let to = target.join(name);
                std::fs::copy(&from, &to).map_err(|source| TrainError::Io { path: to, source })?;
            }
        }
    }
    old.remove()?;
    staging.commit_entries_into(out, |_| false)?;
    let moved = |p: &Path| out.join(p.file_name().unwrap_or_default());
    Ok(Exported {
        discriminator: moved(&staged.discriminator),
        generator: staged.generator.as_deref().map(moved),
        ..staged
    })
}
