//! A batch of token ids as plain lists, checked against a config before it becomes tensors.
//!
//! This is what `electra forward` reads from JSON; it validates everything a user can get
//! wrong (ragged rows, ids outside the vocabulary, sequences longer than the position table)
//! and names the row and column.

use burn::prelude::*;
use serde::{Deserialize, Serialize};

use crate::config::ElectraConfig;
use crate::error::ModelError;

/// Token ids, segment ids and attention mask, each `[batch][seq]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InputBatch {
    /// Token ids, each `< vocab_size`.
    pub input_ids: Vec<Vec<i64>>,
    /// 1 for real tokens, 0 for padding. All ones when absent.
    #[serde(default)]
    pub attention_mask: Option<Vec<Vec<i64>>>,
    /// Segment ids, each `< type_vocab_size`. All zeros when absent.
    #[serde(default)]
    pub token_type_ids: Option<Vec<Vec<i64>>>,
}

/// The tensors of an [`InputBatch`], each `[batch, seq]`.
#[derive(Clone, Debug)]
pub struct InputTensors<B: Backend> {
    /// Token ids.
    pub input_ids: Tensor<B, 2, Int>,
    /// Segment ids.
    pub token_type_ids: Tensor<B, 2, Int>,
    /// 1 = token, 0 = padding.
    pub attention_mask: Tensor<B, 2, Int>,
}

impl InputBatch {
    /// `(batch, seq)` after checking that every list is rectangular, non-empty and in range
    /// for `config`; the error names the field, row and column.
    pub fn validate(&self, config: &ElectraConfig) -> Result<(usize, usize), ModelError> {
        let batch = self.input_ids.len();
        let seq = self.input_ids.first().map_or(0, Vec::len);
        if batch == 0 || seq == 0 {
            return Err(ModelError::InvalidInput(
                "input_ids must hold at least one non-empty row".to_string(),
            ));
        }
        if seq > config.max_position_embeddings {
            return Err(ModelError::InvalidInput(format!(
                "sequences have {seq} tokens; the model's max_position_embeddings is {}",
                config.max_position_embeddings
            )));
        }
        let fields = [
            ("input_ids", Some(&self.input_ids), config.vocab_size as i64),
            ("attention_mask", self.attention_mask.as_ref(), 2),
            (
                "token_type_ids",
                self.token_type_ids.as_ref(),
                config.type_vocab_size as i64,
            ),
        ];
        for (name, rows, limit) in fields {
            let Some(rows) = rows else { continue };
            if rows.len() != batch {
                return Err(ModelError::InvalidInput(format!(
                    "{name} has {} rows, input_ids has {batch}",
                    rows.len()
                )));
            }
            for (r, row) in rows.iter().enumerate() {
                if row.len() != seq {
                    return Err(ModelError::InvalidInput(format!(
                        "{name}[{r}] has {} entries, expected {seq} (rows must all have the \
                         same length; pad them and set attention_mask to 0 there)",
                        row.len()
                    )));
                }
                if let Some((c, v)) = row
                    .iter()
                    .enumerate()
                    .find(|(_, v)| !(0..limit).contains(*v))
                {
                    return Err(ModelError::InvalidInput(format!(
                        "{name}[{r}][{c}] = {v} is out of range: expected 0 <= value < {limit}"
                    )));
                }
            }
        }
        Ok((batch, seq))
    }

    /// Validates against `config` and builds the tensors on `device`.
    pub fn to_tensors<B: Backend>(
        &self,
        config: &ElectraConfig,
        device: &B::Device,
    ) -> Result<InputTensors<B>, ModelError> {
        let (batch, seq) = self.validate(config)?;
        let tensor = |rows: Option<&Vec<Vec<i64>>>, fill: i64| {
            let flat: Vec<i64> = match rows {
                Some(rows) => rows.iter().flatten().copied().collect(),
                None => vec![fill; batch * seq],
            };
            Tensor::<B, 1, Int>::from_data(TensorData::new(flat, [batch * seq]), device)
                .reshape([batch, seq])
        };
        Ok(InputTensors {
            input_ids: tensor(Some(&self.input_ids), 0),
            token_type_ids: tensor(self.token_type_ids.as_ref(), 0),
            attention_mask: tensor(self.attention_mask.as_ref(), 1),
        })
    }
}
