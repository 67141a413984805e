//! `electra forward`: run an HF-format checkpoint on a batch given as JSON.

use std::path::PathBuf;

use anyhow::Context;
use burn::prelude::*;
use electra_backend::BackendTask;
use electra_model::InputBatch;
use electra_model::hf;

/// Arguments of `electra forward`.
#[derive(Debug, clap::Args)]
pub struct ForwardArgs {
    /// HF checkpoint directory: config.json and model.safetensors (or pytorch_model.bin).
    #[arg(long)]
    pub checkpoint: PathBuf,
    /// JSON file with `input_ids` and optional `attention_mask`, `token_type_ids`
    /// (lists of lists of integers, all the same shape).
    #[arg(long)]
    pub input: PathBuf,
    /// Where to write the outputs (JSON): `last_hidden_state` [batch, seq, hidden] and
    /// `discriminator_logits` [batch, seq] or `mlm_logits` [batch, seq, vocab].
    #[arg(long)]
    pub output: PathBuf,
}

impl BackendTask for ForwardArgs {
    type Output = anyhow::Result<()>;

    fn run<B: Backend>(self, device: B::Device) -> anyhow::Result<()> {
        let text = std::fs::read_to_string(&self.input)
            .with_context(|| format!("cannot read input file {}", self.input.display()))?;
        let batch: InputBatch = serde_json::from_str(&text).with_context(|| {
            format!(
                "{}: expected a JSON object with `input_ids` and optional `attention_mask`, \
                 `token_type_ids` (lists of lists of integers)",
                self.input.display()
            )
        })?;
        let (model, config) = hf::load::<B>(&self.checkpoint, &device)
            .with_context(|| format!("cannot load checkpoint {}", self.checkpoint.display()))?;
        let x = batch
            .to_tensors::<B>(&config.model, &device)
            .with_context(|| format!("{}: input does not fit the model", self.input.display()))?;
        let outputs = model.forward(x);
        let head = outputs.logits.name();
        let text = serde_json::to_string(&outputs.to_json())?;
        electra_fs::write_atomic(&self.output, text.as_bytes())
            .with_context(|| format!("cannot write {}", self.output.display()))?;
        tracing::info!(output = %self.output.display(), "wrote {head} and last_hidden_state");
        Ok(())
    }
}
