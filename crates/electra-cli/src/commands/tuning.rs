//! What the fine-tuning commands (`electra glue`/`finetune`, `electra squad`) share: the
//! pre-trained model and the seeds ([`StartArgs`]), the recipe flags every task family has
//! ([`RecipeArgs`]), and writing the results files.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use burn::tensor::backend::AutodiffBackend;
use electra_eval::model::LossReduction;
use electra_eval::pretrained::{self, Pretrained};

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
    /// The seeds, first, first+1, ... (at least one).
    pub fn seed_list(&self) -> anyhow::Result<Vec<u64>> {
        if self.seeds == 0 {
            bail!("--seeds must be at least 1");
        }
        Ok((0..self.seeds).map(|i| self.first_seed + i).collect())
    }

    /// The pre-trained encoder and tokenizer on `device` (the backend seeded with the first
    /// seed, which a random-init baseline draws from).
    pub fn load<B: AutodiffBackend>(&self, device: &B::Device) -> anyhow::Result<Pretrained<B>> {
        let checkpoint = self
            .checkpoint
            .clone()
            .context("--checkpoint is required")?;
        B::seed(device, self.first_seed);
        let pre = pretrained::load::<B>(
            &checkpoint,
            self.tokenizer.as_deref(),
            self.random_init,
            device,
        )
        .with_context(|| format!("cannot load the checkpoint {}", checkpoint.display()))?;
        tracing::info!(checkpoint = %pre.description, "fine-tuning");
        Ok(pre)
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

/// Writes `results.md` and `results.json` into `out` atomically, prints the markdown, and
/// returns both paths.
pub fn write_results(
    out: &Path,
    markdown: &str,
    report: &impl serde::Serialize,
) -> anyhow::Result<(PathBuf, PathBuf)> {
    let md_path = out.join("results.md");
    electra_fs::write_atomic(&md_path, markdown.as_bytes())
        .with_context(|| format!("cannot write {}", md_path.display()))?;
    let json_path = out.join("results.json");
    electra_fs::write_atomic(&json_path, serde_json::to_string_pretty(report)?.as_bytes())
        .with_context(|| format!("cannot write {}", json_path.display()))?;
    println!("\n{markdown}");
    Ok((md_path, json_path))
}
