//! What a Hugging Face checkpoint computes, whichever architecture it is: [`HfModel::forward`]
//! runs the encoder and its head and names the outputs as `transformers` does
//! (`last_hidden_state`, and `discriminator_logits` or `mlm_logits`), and
//! [`HfOutputs::to_json`] writes them as nested JSON lists; [`HfModel::into_encoder`] drops the
//! head for fine-tuning. [`forward_file`] is `electra forward`: a JSON batch in, a JSON file
//! of outputs out.

use std::path::Path;

use burn::prelude::*;
use serde_json::{Map, Value};

use crate::electra::ElectraModel;
use crate::error::ModelError;
use crate::hf::{self, HfModel};
use crate::input::{InputBatch, InputTensors};

/// Runs the HF checkpoint in `checkpoint` on the batch in `input` (a JSON object with
/// `input_ids` and optional `attention_mask`, `token_type_ids`, lists of lists of integers)
/// and writes [`HfOutputs::to_json`] to `output` atomically. Returns the head output's name.
pub fn forward_file<B: Backend>(
    checkpoint: &Path,
    input: &Path,
    output: &Path,
    device: &B::Device,
) -> Result<&'static str, ModelError> {
    let in_file = |message: String| ModelError::Config {
        path: input.to_path_buf(),
        message,
    };
    let text = std::fs::read_to_string(input).map_err(|source| ModelError::Io {
        path: input.to_path_buf(),
        source,
    })?;
    let batch: InputBatch = serde_json::from_str(&text).map_err(|e| {
        in_file(format!(
            "expected a JSON object with `input_ids` and optional `attention_mask`, \
             `token_type_ids` (lists of lists of integers): {e}"
        ))
    })?;
    let (model, config) = hf::load::<B>(checkpoint, device)?;
    let x = batch
        .to_tensors::<B>(&config.model, device)
        .map_err(|e| in_file(format!("input does not fit the model: {e}")))?;
    let outputs = model.forward(x);
    let head = outputs.logits.name();
    let text = serde_json::to_string(&outputs.to_json())
        .map_err(|e| ModelError::InvalidInput(format!("cannot write the outputs: {e}")))?;
    electra_fs::write_atomic(output, text.as_bytes())?;
    Ok(head)
}

/// The outputs of [`HfModel::forward`].
#[derive(Debug)]
pub struct HfOutputs<B: Backend> {
    /// The encoder's output, `[batch, seq, hidden]`.
    pub last_hidden_state: Tensor<B, 3>,
    /// The head's output: `discriminator_logits` `[batch, seq]` or `mlm_logits`
    /// `[batch, seq, vocab]`.
    pub logits: HeadLogits<B>,
}

/// The head's output of an [`HfModel`].
#[derive(Debug)]
pub enum HeadLogits<B: Backend> {
    /// `discriminator_logits`, `[batch, seq]`.
    Discriminator(Tensor<B, 2>),
    /// `mlm_logits`, `[batch, seq, vocab]`.
    MaskedLm(Tensor<B, 3>),
}

impl<B: Backend> HeadLogits<B> {
    /// The output's name in `transformers`.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Discriminator(_) => "discriminator_logits",
            Self::MaskedLm(_) => "mlm_logits",
        }
    }
}

impl<B: Backend> HfModel<B> {
    /// The encoder without its head, and the HF class it was read as.
    pub fn into_encoder(self) -> (ElectraModel<B>, &'static str) {
        match self {
            Self::PreTraining(m) => (m.electra, "ElectraForPreTraining"),
            Self::MaskedLm(m) => (m.electra, "ElectraForMaskedLM"),
        }
    }

    /// Runs the encoder and the head on `x`.
    pub fn forward(&self, x: InputTensors<B>) -> HfOutputs<B> {
        let InputTensors {
            input_ids,
            token_type_ids,
            attention_mask,
        } = x;
        match self {
            Self::PreTraining(m) => {
                let hidden = m.electra.forward(input_ids, token_type_ids, attention_mask);
                let logits = m.discriminator_predictions.forward(hidden.clone());
                HfOutputs {
                    last_hidden_state: hidden,
                    logits: HeadLogits::Discriminator(logits),
                }
            }
            Self::MaskedLm(m) => {
                let hidden = m.electra.forward(input_ids, token_type_ids, attention_mask);
                let logits = m.generator_predictions.forward_all(
                    hidden.clone(),
                    m.electra.embeddings.word_embeddings.weight.val(),
                );
                HfOutputs {
                    last_hidden_state: hidden,
                    logits: HeadLogits::MaskedLm(logits),
                }
            }
        }
    }
}

impl<B: Backend> HfOutputs<B> {
    /// `{"last_hidden_state": [...], "<head output>": [...]}`, each a nested list of its shape.
    pub fn to_json(self) -> Value {
        let mut out = Map::new();
        let name = self.logits.name();
        let logits = match self.logits {
            HeadLogits::Discriminator(t) => tensor_json(t),
            HeadLogits::MaskedLm(t) => tensor_json(t),
        };
        out.insert(
            "last_hidden_state".to_string(),
            tensor_json(self.last_hidden_state),
        );
        out.insert(name.to_string(), logits);
        Value::Object(out)
    }
}

/// A tensor as nested JSON lists of its shape.
pub fn tensor_json<B: Backend, const D: usize>(tensor: Tensor<B, D>) -> Value {
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
