//! `electra forward`: run an HF-format checkpoint on a batch given as JSON.

use std::path::PathBuf;

use anyhow::Context;
use burn::prelude::*;
use electra_model::InputBatch;
use electra_model::hf::{self, HfModel};
use serde_json::{Map, Value};

use crate::backend::BackendTask;

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
    type Output = ();

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
        let (head_name, hidden, logits) = match &model {
            HfModel::PreTraining(m) => {
                let hidden = m
                    .electra
                    .forward(x.input_ids, x.token_type_ids, x.attention_mask);
                let logits = m.discriminator_predictions.forward(hidden.clone());
                ("discriminator_logits", hidden, to_json(logits))
            }
            HfModel::MaskedLm(m) => {
                let hidden = m
                    .electra
                    .forward(x.input_ids, x.token_type_ids, x.attention_mask);
                let logits = m.generator_predictions.forward_all(
                    hidden.clone(),
                    m.electra.embeddings.word_embeddings.weight.val(),
                );
                ("mlm_logits", hidden, to_json(logits))
            }
        };
        let mut out = Map::new();
        out.insert("last_hidden_state".to_string(), to_json(hidden));
        out.insert(head_name.to_string(), logits);
        let text = serde_json::to_string(&Value::Object(out))?;
        electra_fs::write_atomic(&self.output, text.as_bytes())
            .with_context(|| format!("cannot write {}", self.output.display()))?;
        tracing::info!(output = %self.output.display(), "wrote {head_name} and last_hidden_state");
        Ok(())
    }
}

/// A tensor as nested JSON lists of its shape.
fn to_json<B: Backend, const D: usize>(tensor: Tensor<B, D>) -> Value {
    fn nest(values: &[f32], dims: &[usize]) -> Value {
        match dims {
            [] | [_] => Value::from(values.to_vec()),
            [_, rest @ ..] => {
                let stride: usize = rest.iter().product();
                Value::Array(
                    values
                        .chunks(stride.max(1))
                        .map(|chunk| nest(chunk, rest))
                        .collect(),
                )
            }
        }
    }
    let dims = tensor.dims();
    let data = tensor.into_data().convert::<f32>();
    let values = data.to_vec::<f32>().unwrap_or_default();
    nest(&values, &dims)
}
