//! Where fine-tuning starts: the encoder of a pre-trained discriminator and its tokenizer, read
//! from either a Hugging Face checkpoint directory (`config.json` + weights, e.g. one written
//! by `electra export` or downloaded) or one of our run directories (`config.toml` +
//! `checkpoints/step-N/`, the newest complete checkpoint).
//!
//! Fine-tuning needs only the embeddings and the encoder tower, so any head is accepted and
//! dropped: an HF directory may hold an `ElectraForPreTraining` (an ELECTRA discriminator) or an
//! `ElectraForMaskedLM` (what `electra export` writes for the `mlm` and `replace-mlm`
//! baselines), and a run directory of any objective gives its discriminator-sized network.

use std::path::{Path, PathBuf};

use burn::prelude::*;
use electra_data::Tokenizer;
use electra_model::hf;
use electra_model::{ElectraConfig, ElectraModel};

use crate::error::EvalError;

/// A pre-trained encoder ready to be fine-tuned.
#[derive(Debug)]
pub struct Pretrained<B: Backend> {
    /// Embeddings and tower of the discriminator-sized network (its pre-training head is
    /// dropped).
    pub encoder: ElectraModel<B>,
    /// Its configuration.
    pub config: ElectraConfig,
    /// The tokenizer its vocabulary belongs to.
    pub tokenizer: Tokenizer,
    /// What was loaded, in words (for reports).
    pub description: String,
}

/// The kind of checkpoint a path holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CheckpointKind {
    /// A Hugging Face `ElectraForPreTraining` or `ElectraForMaskedLM` directory.
    HuggingFace,
    /// An `electra pretrain` run directory.
    Run,
}

/// Which kind of checkpoint `path` is; an error says what was expected.
pub fn checkpoint_kind(path: &Path) -> Result<CheckpointKind, EvalError> {
    if path.join("config.json").is_file() {
        Ok(CheckpointKind::HuggingFace)
    } else if path.join("config.toml").is_file() {
        Ok(CheckpointKind::Run)
    } else {
        Err(EvalError::InvalidConfig(format!(
            "{}: not a checkpoint: expected a Hugging Face ELECTRA directory \
             (config.json + model.safetensors) or an `electra pretrain` run directory \
             (config.toml + checkpoints/)",
            path.display()
        )))
    }
}

/// Loads the discriminator encoder at `path` and its tokenizer (`tokenizer`, else the
/// `tokenizer.json` / `vocab.txt` beside the checkpoint). With `random_init` only the
/// configuration is read and the encoder is freshly initialised (a baseline with the same
/// architecture and vocabulary); seed the backend first.
pub fn load<B: Backend>(
    path: &Path,
    tokenizer: Option<&Path>,
    random_init: bool,
    device: &B::Device,
) -> Result<Pretrained<B>, EvalError> {
    let kind = checkpoint_kind(path)?;
    let (encoder, config, mut description) = match (kind, random_init) {
        (CheckpointKind::HuggingFace, false) => {
            let (model, hf_config) = hf::load::<B>(path, device)?;
            let (electra, class) = model.into_encoder();
            let text = format!("Hugging Face {class} {}", path.display());
            (electra, hf_config.model, text)
        }
        (CheckpointKind::Run, false) => {
            let (encoder, run) = electra_run::pretrained::load_encoder::<B>(path, device)?;
            let text = format!(
                "run {} (preset {}, objective {}), checkpoint step {} ({})",
                path.display(),
                run.config.preset,
                run.config.objective.objective.name(),
                run.step,
                run.dir.display()
            );
            (encoder, run.config.model, text)
        }
        (kind, true) => {
            let config = match kind {
                CheckpointKind::HuggingFace => hf::read_config(path)?.model,
                CheckpointKind::Run => {
                    let file = path.join("config.toml");
                    electra_run::config::RunConfig::resolve(None, Some(&file), &[])?.model
                }
            };
            let text = format!(
                "randomly initialised encoder with the configuration of {}",
                path.display()
            );
            (ElectraModel::new(&config, device), config, text)
        }
    };
    let tokenizer_path: PathBuf = match tokenizer {
        Some(p) => p.to_path_buf(),
        None => path.to_path_buf(),
    };
    let tokenizer = Tokenizer::from_path(&tokenizer_path).map_err(|e| {
        EvalError::InvalidConfig(format!(
            "{e}; pass --tokenizer (the vocab.txt or tokenizer.json the model was pre-trained with)"
        ))
    })?;
    if tokenizer.vocab_size() > config.vocab_size {
        return Err(EvalError::InvalidConfig(format!(
            "tokenizer {} has {} tokens but the model's vocab_size is {}: not the model's tokenizer",
            tokenizer.source().display(),
            tokenizer.vocab_size(),
            config.vocab_size
        )));
    }
    description.push_str(&format!(
        "; tokenizer {} ({} tokens)",
        tokenizer.source().display(),
        tokenizer.vocab_size()
    ));
    Ok(Pretrained {
        encoder,
        config,
        tokenizer,
        description,
    })
}
