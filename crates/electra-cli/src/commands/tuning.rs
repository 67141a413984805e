//! The flags the fine-tuning commands (`electra glue`/`finetune`, `electra squad`) share: the
//! pre-trained model and the seeds ([`StartArgs`], `electra_eval::tuning::job::Start`) and
//! the recipe flags every task family has ([`RecipeArgs`]).

use std::path::PathBuf;

use anyhow::Context;
use electra_eval::model::LossReduction;
use electra_eval::tuning::job::Start;

/// Where fine-tuning starts and with which seeds.
#[derive(Debug, Clone, clap::Args)]
pub struct StartArgs {
    /// The pre-trained model: a Hugging Face ELECTRA directory (config.json +
    /// model.safetensors, e.g. `OUT/discriminator` from `electra export`; ElectraForPreTraining
    /// or ElectraForMaskedLM, the head is dropped) or an `electra pretrain` run directory of any
    /// objective (its newest complete checkpoint's discriminator-sized encoder).
    #[arg(long, required = true)]
    pub checkpoint: Option<PathBuf>,
    /// The tokenizer (vocab.txt or tokenizer.json); default: the one beside the checkpoint.
    #[arg(long)]
    pub tokenizer: Option<PathBuf>,
    /// Ignore the checkpoint's weights: fine-tune a freshly initialised encoder of the same
    /// configuration (a baseline).
    #[arg(long)]
    pub random_init: bool,
    /// Number of fine-tuning seeds (the paper reports the median of 10).
    #[arg(long, default_value_t = 5)]
    pub seeds: u64,
    /// The first seed; seeds are first, first+1, ...
    #[arg(long, default_value_t = 1)]
    pub first_seed: u64,
}

impl StartArgs {
    /// Where the library starts fine-tuning.
    pub fn start(&self) -> anyhow::Result<Start> {
        Ok(Start {
            checkpoint: self
                .checkpoint
                .clone()
                .context("--checkpoint is required")?,
            tokenizer: self.tokenizer.clone(),
            random_init: self.random_init,
            seeds: self.seeds,
            first_seed: self.first_seed,
        })
    }
}

/// The recipe flags every task family has.
#[derive(Debug, Clone, clap::Args)]
pub struct RecipeArgs {
    /// Peak learning rate (default by model size: 3e-4 Small, 1e-4 Base, 5e-5 Large).
    #[arg(long)]
    pub lr: Option<f64>,
    /// Layer-wise LR decay α (default 0.8; 0.9 for Large; 1 disables).
    #[arg(long)]
    pub layerwise_decay: Option<f64>,
    /// Use the corrected layer-wise formula (top layer ×α) instead of the reference's (×α²).
    #[arg(long)]
    pub corrected_layerwise_decay: bool,
    /// Average the per-example losses of a batch instead of summing them (the reference sums).
    #[arg(long)]
    pub mean_loss: bool,
}

impl RecipeArgs {
    /// Summed (reference) or averaged losses.
    pub fn loss_reduction(&self) -> LossReduction {
        if self.mean_loss {
            LossReduction::Mean
        } else {
            LossReduction::Sum
        }
    }
}
