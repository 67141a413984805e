//! `HostBatch`: a batch of token ids in host memory, the objective's input.
//!
//! Masking runs on the host (spec 1.2), so the batch arrives as plain row-major `Vec<i64>`s and
//! becomes tensors only after masking.

use burn::prelude::*;

use crate::error::ObjectiveError;

/// Token ids, segment ids and attention mask of `batch` sequences of `seq` tokens, each a flat
/// row-major `Vec` of length `batch·seq` (`[batch, seq]`).
///
/// `max_seq_len` is the configured sequence length `L` the rows were packed for (`data.max_seq_len`
/// of a run). The reference pads every example to `L`, and its masking slot budget
/// `N = floor((mask_prob + 0.005)·L)` follows `L`; our loader pads a batch only to its longest
/// row (`seq ≤ L`), so the batch carries `L` for the masking to use (spec 1.2 step 1).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostBatch {
    /// Token ids `[batch, seq]`.
    pub input_ids: Vec<i64>,
    /// Segment ids `[batch, seq]`.
    pub token_type_ids: Vec<i64>,
    /// 1 = real token, 0 = padding, `[batch, seq]`.
    pub attention_mask: Vec<i64>,
    /// Number of sequences.
    pub batch: usize,
    /// Tokens per sequence (the padded length of this batch).
    pub seq: usize,
    /// The configured sequence length `L` (`≥ seq`) that sets the masking slot budget.
    pub max_seq_len: usize,
}

impl HostBatch {
    /// Builds a batch from flat row-major lists, checking their lengths and that the mask is
    /// 0/1. The configured length is taken to be `seq` (rows padded to the full length, as the
    /// reference's are); a batch padded only to its longest row must say its configured length
    /// with [`Self::with_max_seq_len`].
    pub fn new(
        input_ids: Vec<i64>,
        token_type_ids: Vec<i64>,
        attention_mask: Vec<i64>,
        batch: usize,
        seq: usize,
    ) -> Result<Self, ObjectiveError> {
        let n = batch * seq;
        if n == 0 {
            return Err(ObjectiveError::InvalidBatch(format!(
                "batch ({batch}) and seq ({seq}) must both be > 0"
            )));
        }
        for (name, list) in [
            ("input_ids", &input_ids),
            ("token_type_ids", &token_type_ids),
            ("attention_mask", &attention_mask),
        ] {
            if list.len() != n {
                return Err(ObjectiveError::InvalidBatch(format!(
                    "{name} has {} entries, expected batch·seq = {batch}·{seq} = {n}",
                    list.len()
                )));
            }
        }
        if let Some(i) = attention_mask.iter().position(|&m| m != 0 && m != 1) {
            return Err(ObjectiveError::InvalidBatch(format!(
                "attention_mask[{}][{}] = {}; expected 0 or 1",
                i / seq,
                i % seq,
                attention_mask[i]
            )));
        }
        Ok(Self {
            input_ids,
            token_type_ids,
            attention_mask,
            batch,
            seq,
            max_seq_len: seq,
        })
    }

    /// Sets the configured sequence length `L` the rows were packed for (`data.max_seq_len`),
    /// which must be at least the padded length `seq`.
    pub fn with_max_seq_len(mut self, max_seq_len: usize) -> Result<Self, ObjectiveError> {
        if max_seq_len < self.seq {
            return Err(ObjectiveError::InvalidBatch(format!(
                "max_seq_len ({max_seq_len}) is shorter than the batch's padded length ({})",
                self.seq
            )));
        }
        self.max_seq_len = max_seq_len;
        Ok(self)
    }

    /// Builds a batch from rows (`[batch][seq]` each), e.g. from JSON.
    pub fn from_rows(
        input_ids: &[Vec<i64>],
        token_type_ids: &[Vec<i64>],
        attention_mask: &[Vec<i64>],
    ) -> Result<Self, ObjectiveError> {
        let batch = input_ids.len();
        let seq = input_ids.first().map_or(0, Vec::len);
        for (name, rows) in [
            ("input_ids", input_ids),
            ("token_type_ids", token_type_ids),
            ("attention_mask", attention_mask),
        ] {
            if rows.len() != batch || rows.iter().any(|r| r.len() != seq) {
                return Err(ObjectiveError::InvalidBatch(format!(
                    "{name} is not a rectangular [{batch}, {seq}] list"
                )));
            }
        }
        Self::new(
            input_ids.concat(),
            token_type_ids.concat(),
            attention_mask.concat(),
            batch,
            seq,
        )
    }

    /// Checks every token id against `vocab_size`, naming the first bad one.
    pub fn check_vocab(&self, vocab_size: usize) -> Result<(), ObjectiveError> {
        match self
            .input_ids
            .iter()
            .position(|&id| id < 0 || id as u64 >= vocab_size as u64)
        {
            Some(i) => Err(ObjectiveError::InvalidBatch(format!(
                "input_ids[{}][{}] = {} is outside the vocabulary (size {vocab_size})",
                i / self.seq,
                i % self.seq,
                self.input_ids[i]
            ))),
            None => Ok(()),
        }
    }

    /// Number of real (non-pad) tokens in row `row`.
    pub fn real_tokens(&self, row: usize) -> usize {
        let start = row * self.seq;
        self.attention_mask[start..start + self.seq]
            .iter()
            .filter(|&&m| m == 1)
            .count()
    }
}

/// A flat `Vec<i64>` as an Int tensor `[rows, cols]`.
pub(crate) fn int_tensor<B: Backend>(
    values: &[i64],
    rows: usize,
    cols: usize,
    device: &B::Device,
) -> Tensor<B, 2, Int> {
    Tensor::<B, 1, Int>::from_data(TensorData::new(values.to_vec(), [rows * cols]), device)
        .reshape([rows, cols])
}

/// A flat `Vec<f32>` as a float tensor `[rows, cols]`.
pub(crate) fn float_tensor<B: Backend>(
    values: &[f32],
    rows: usize,
    cols: usize,
    device: &B::Device,
) -> Tensor<B, 2> {
    Tensor::<B, 1>::from_data(TensorData::new(values.to_vec(), [rows * cols]), device)
        .reshape([rows, cols])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn malformed_batches_are_rejected_with_the_field_named() {
        let ok = HostBatch::new(vec![1, 2, 3, 4], vec![0; 4], vec![1, 1, 1, 0], 2, 2).unwrap();
        assert_eq!(ok.real_tokens(0), 2);
        assert_eq!(ok.real_tokens(1), 1);
        let err = HostBatch::new(vec![1, 2, 3], vec![0; 4], vec![1; 4], 2, 2).unwrap_err();
        assert!(err.to_string().contains("input_ids has 3 entries"), "{err}");
        let err = HostBatch::new(vec![1; 4], vec![0; 4], vec![1, 2, 1, 1], 2, 2).unwrap_err();
        assert!(
            err.to_string().contains("attention_mask[0][1] = 2"),
            "{err}"
        );
        let err = HostBatch::from_rows(
            &[vec![1, 2], vec![3]],
            &[vec![0, 0], vec![0]],
            &[vec![1, 1], vec![1]],
        )
        .unwrap_err();
        assert!(err.to_string().contains("input_ids"), "{err}");
        let err = ok.check_vocab(4).unwrap_err();
        assert!(err.to_string().contains("input_ids[1][1] = 4"), "{err}");
        assert_eq!(ok.max_seq_len, 2, "defaults to the padded length");
        assert_eq!(ok.clone().with_max_seq_len(128).unwrap().max_seq_len, 128);
        let err = ok.with_max_seq_len(1).unwrap_err();
        assert!(err.to_string().contains("max_seq_len (1)"), "{err}");
    }
}
