//! What the fine-tuning commands (`electra glue`/`finetune`, `electra squad`) share: the
//! pre-trained model and the seeds ([`StartArgs`]), the recipe flags every task family has
//! ([`RecipeArgs`]), the progress bars and `metrics.jsonl` ([`StepBars`]), and writing the
//! results files.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use burn::tensor::backend::AutodiffBackend;
use electra_eval::finetune::{Progress, StepRecord};
use electra_eval::model::LossReduction;
use electra_eval::pretrained::{self, Pretrained};
use indicatif::{ProgressBar, ProgressStyle};

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

/// The fine-tuning commands' progress: one bar per epoch (and any other bar a command starts),
/// a line per step in `metrics.jsonl` (`task`, `seed`, `step`, `epoch`, `loss`, `lr`,
/// `grad_norm`). A command's observer trait is implemented on it in the command's file.
pub struct StepBars {
    /// What the bars are labelled with (e.g. `RTE seed 3`).
    pub label: String,
    /// The task written in each metrics line.
    pub task: String,
    /// The seed written in each metrics line.
    pub seed: u64,
    bar: Option<ProgressBar>,
    metrics: std::fs::File,
}

impl StepBars {
    /// Bars writing the per-step lines to `metrics`.
    pub fn new(metrics: std::fs::File, task: &str) -> Self {
        Self {
            label: String::new(),
            task: task.to_string(),
            seed: 0,
            bar: None,
            metrics,
        }
    }

    /// Starts a bar of `len` `unit`s with `prefix`.
    pub fn start(&mut self, len: usize, prefix: String, unit: &str) {
        let bar = ProgressBar::new(len as u64);
        if let Ok(style) = ProgressStyle::with_template(&format!(
            "{{prefix}} [{{elapsed_precise}}] {{bar:30}} {{pos}}/{{len}} {unit} {{msg}}"
        )) {
            bar.set_style(style);
        }
        bar.set_prefix(prefix);
        bar.enable_steady_tick(Duration::from_millis(500));
        self.bar = Some(bar);
    }

    /// Advances the current bar by `n`.
    pub fn advance(&self, n: usize) {
        if let Some(bar) = &self.bar {
            bar.inc(n as u64);
        }
    }

    /// Ends the current bar, if any, with `message`.
    pub fn finish(&mut self, message: String) {
        if let Some(bar) = self.bar.take() {
            bar.finish_with_message(message);
        }
    }
}

impl Progress for StepBars {
    fn epoch_start(&mut self, epoch: usize, epochs: usize, steps: usize) {
        let prefix = format!("{} epoch {}/{epochs}", self.label, epoch + 1);
        self.start(steps, prefix, "steps");
    }

    fn step(&mut self, r: &StepRecord) {
        if let Some(bar) = &self.bar {
            bar.inc(1);
            bar.set_message(format!("loss {:.4} lr {:.2e}", r.loss, r.lr));
        }
        let line = serde_json::json!({
            "task": self.task, "seed": self.seed, "step": r.step, "epoch": r.epoch,
            "loss": r.loss, "lr": r.lr, "grad_norm": r.grad_norm,
        });
        if let Err(e) = writeln!(self.metrics, "{line}") {
            tracing::warn!("cannot write metrics.jsonl: {e}");
        }
    }

    fn epoch_end(&mut self, _epoch: usize, mean_loss: f64) {
        self.finish(format!("mean loss {mean_loss:.4}"));
    }
}
