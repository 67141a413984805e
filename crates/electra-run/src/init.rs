//! Continuing pre-training from a released ELECTRA: a run whose `[init]` names a Hugging Face
//! generator (`ElectraForMaskedLM`, Google's `*-generator`) and discriminator
//! (`ElectraForPreTraining`, `*-discriminator`) starts from their weights instead of a fresh
//! initialisation, with a fresh optimizer and schedule.
//!
//! [`adopt_hf_pair`] takes the model's sizes from the two `config.json` files before the run
//! starts: `model` is the discriminator's config, and the generator multipliers are the ratios
//! of the generator's hidden size and depth to the discriminator's; the generator those give
//! ([`ObjectiveConfig::generator_config`]) must be the generator of the checkpoint, field by
//! field. [`load_hf_pair`] then assembles the pre-training model
//! ([`ElectraPretrainingModel::from_hf_pair`]), which compares the two stored copies of the
//! shared embeddings and says which it keeps.
//!
//! [`ObjectiveConfig::generator_config`]: electra_objective::ObjectiveConfig::generator_config

use std::path::{Path, PathBuf};

use burn::prelude::*;
use electra_model::hf;
use electra_objective::{ElectraPretrainingModel, PairReport};
use serde::{Deserialize, Serialize};

use crate::config::RunConfig;
use crate::error::RunError;

/// Weights a new run starts from instead of a fresh initialisation (`electra pretrain
/// --init-generator DIR --init-discriminator DIR`): both or neither. Recorded in the run's
/// `config.toml`, so the run says where its weights came from; a resumed run reads its
/// checkpoint, not these.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct InitConfig {
    /// A Hugging Face `ElectraForMaskedLM` checkpoint directory (the released generator).
    pub generator: Option<PathBuf>,
    /// A Hugging Face `ElectraForPreTraining` checkpoint directory (the released
    /// discriminator).
    pub discriminator: Option<PathBuf>,
}

impl InitConfig {
    /// Whether the run starts from fresh weights (no `[init]`).
    pub fn is_empty(&self) -> bool {
        self.generator.is_none() && self.discriminator.is_none()
    }

    /// The two directories, `None` for a fresh start; an error when only one is given.
    pub fn pair(&self) -> Result<Option<(&Path, &Path)>, RunError> {
        match (&self.generator, &self.discriminator) {
            (Some(g), Some(d)) => Ok(Some((g, d))),
            (None, None) => Ok(None),
            (g, _) => Err(RunError::InvalidConfig(format!(
                "init.{} is set but init.{} is not: continuing pre-training needs both the \
                 generator and the discriminator checkpoint",
                if g.is_some() {
                    "generator"
                } else {
                    "discriminator"
                },
                if g.is_some() {
                    "discriminator"
                } else {
                    "generator"
                },
            ))),
        }
    }
}

/// Sets `config.model` and the generator multipliers from the `config.json` files of
/// `config.init` (module docs); does nothing without `[init]`. The error names the file and
/// the generator field that the discriminator's sizes cannot give.
pub fn adopt_hf_pair(config: &mut RunConfig) -> Result<(), RunError> {
    let Some((generator_dir, discriminator_dir)) = config.init.pair()? else {
        return Ok(());
    };
    let disc = hf::read_config(discriminator_dir)?.model;
    let generator = hf::read_config(generator_dir)?.model;
    let o = &mut config.objective;
    o.generator_hidden_multiplier = generator.hidden_size as f64 / disc.hidden_size as f64;
    o.generator_layers_multiplier =
        generator.num_hidden_layers as f64 / disc.num_hidden_layers as f64;
    let derived = o.generator_config(&disc)?;
    let fields: [(&str, usize, usize); 6] = [
        ("vocab_size", generator.vocab_size, derived.vocab_size),
        (
            "embedding_size",
            generator.embedding_size,
            derived.embedding_size,
        ),
        ("hidden_size", generator.hidden_size, derived.hidden_size),
        (
            "num_hidden_layers",
            generator.num_hidden_layers,
            derived.num_hidden_layers,
        ),
        (
            "num_attention_heads",
            generator.num_attention_heads,
            derived.num_attention_heads,
        ),
        (
            "intermediate_size",
            generator.intermediate_size,
            derived.intermediate_size,
        ),
    ];
    for (field, theirs, ours) in fields {
        if theirs != ours {
            return Err(RunError::InvalidConfig(format!(
                "{}: {field} is {theirs}, but a generator of this discriminator ({}) with \
                 embedding_sharing = \"{}\" has {ours}",
                generator_dir.join("config.json").display(),
                discriminator_dir.join("config.json").display(),
                o.embedding_sharing.name()
            )));
        }
    }
    config.model = disc;
    Ok(())
}

/// The pre-training model of `config.init`'s pair on `device`, and how the copies of the
/// shared embeddings compared; `None` without `[init]`. Call [`adopt_hf_pair`] first (the
/// run's config must have the checkpoints' sizes).
pub fn load_hf_pair<B: Backend>(
    config: &RunConfig,
    device: &B::Device,
) -> Result<Option<(ElectraPretrainingModel<B>, PairReport)>, RunError> {
    let Some((generator_dir, discriminator_dir)) = config.init.pair()? else {
        return Ok(None);
    };
    let (disc, disc_config) = hf::load_pretraining::<B>(discriminator_dir, device)?;
    if disc_config.model != config.model {
        return Err(RunError::InvalidConfig(format!(
            "{}: the checkpoint's sizes differ from the run's model config (run config \
             resolved without adopt_hf_pair?)",
            discriminator_dir.display()
        )));
    }
    let (generator, _) = hf::load_masked_lm::<B>(generator_dir, device)?;
    let mut objective = config.objective.clone();
    objective.seed = config.objective_seed();
    Ok(Some(ElectraPretrainingModel::from_hf_pair(
        disc, generator, objective,
    )?))
}

/// The report in words, one line per differing tensor, for the log.
pub fn describe(report: &PairReport) -> Vec<String> {
    let mut lines: Vec<String> = report
        .differences
        .iter()
        .map(|(name, diff)| {
            format!(
                "{name}: the generator's and the discriminator's copies differ by up to {diff:e}"
            )
        })
        .collect();
    if lines.is_empty() {
        lines.push("the two copies of the shared embeddings agree bit for bit".into());
    }
    lines.push(format!("kept: {}", report.kept));
    lines
}
