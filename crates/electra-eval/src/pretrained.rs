//! Where fine-tuning starts: the encoder of a pre-trained discriminator and its tokenizer, read
//! from either a Hugging Face checkpoint directory (`config.json` + weights, e.g. one written
//! by `electra export` or downloaded) or one of our run directories (`config.toml` +
//! `checkpoints/step-N/`, the newest complete checkpoint).

use std::path::{Path, PathBuf};

use burn::prelude::*;
use electra_data::Tokenizer;
use electra_model::{ElectraConfig, ElectraModel, hf};

use crate::error::EvalError;

/// A pre-trained encoder ready to be fine-tuned.
#[derive(Debug)]
pub struct Pretrained<B: Backend> {
    /// Embeddings and tower of the discriminator (its replaced-token head is dropped).
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
    /// A Hugging Face `ElectraForPreTraining` directory.
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
            "{}: not a checkpoint: expected a Hugging Face discriminator directory \
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
            let (model, hf_config) = hf::load_pretraining::<B>(path, device)?;
            let text = format!("Hugging Face discriminator {}", path.display());
            (model.electra, hf_config.model, text)
        }
        (CheckpointKind::Run, false) => {
            let (model, run) = electra_train::pretrained::load_discriminator::<B>(path, device)?;
            let text = format!(
                "run {} (preset {}), checkpoint step {} ({})",
                path.display(),
                run.config.preset,
                run.step,
                run.dir.display()
            );
            (model.electra, run.config.model, text)
        }
        (kind, true) => {
            let config = match kind {
                CheckpointKind::HuggingFace => hf::read_config(path)?.model,
                CheckpointKind::Run => {
                    let file = path.join("config.toml");
                    electra_train::config::RunConfig::resolve(None, Some(&file), &[])?.model
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
