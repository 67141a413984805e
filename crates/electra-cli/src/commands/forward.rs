//! `electra forward`: run an HF-format checkpoint on a batch given as JSON
//! (`electra_model::hf_outputs::forward_file`).

use std::path::PathBuf;

use burn::prelude::*;
use electra_backend::BackendTask;
use electra_model::hf_outputs::forward_file;

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
        let head = forward_file::<B>(&self.checkpoint, &self.input, &self.output, &device)?;
        tracing::info!(output = %self.output.display(), "wrote {head} and last_hidden_state");
        Ok(())
    }
}
