//! From examples to token ids: `[CLS] A [SEP] (B [SEP])` with segment ids, pair truncation as
//! the reference does it (spec 5.1), the swapped-pair augmentation of MRPC and STS-B, and
//! padded batches.

use burn::prelude::*;
use electra_data::Tokenizer;
use electra_model::InputTensors;

use crate::error::EvalError;
use crate::glue::data::{Example, Label};

/// One encoded example (no padding).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Encoded {
    /// `[CLS] A [SEP] (B [SEP])`.
    pub input_ids: Vec<u32>,
    /// 0 for `[CLS]`, A and the first `[SEP]`; 1 for B and the last `[SEP]`.
    pub token_type_ids: Vec<u32>,
}

/// Encoded examples with their ids and (for labelled sets) labels.
#[derive(Clone, Debug)]
pub struct EncodedSet {
    /// The examples' ids (for prediction files).
    pub ids: Vec<String>,
    /// Token ids per example.
    pub items: Vec<Encoded>,
    /// Gold labels, if every example has one.
    pub labels: Option<Vec<Label>>,
    /// The `[PAD]` id used when batching.
    pub pad_id: u32,
}

impl EncodedSet {
    /// Number of examples.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }
}

/// Drops tokens from the end of the longer segment (B on a tie) until `a + b <= max_tokens`,
/// as the reference's `_truncate_seq_pair` does.
pub fn truncate_pair(a: &mut Vec<u32>, b: &mut Vec<u32>, max_tokens: usize) {
    while a.len() + b.len() > max_tokens {
        if a.len() > b.len() {
            a.pop();
        } else {
            b.pop();
        }
    }
}

/// Frames already tokenized segments: truncation to `max_seq_len` (3 special tokens for a
/// pair, 2 for a single text), then `[CLS] A [SEP] (B [SEP])`.
pub fn frame(
    mut a: Vec<u32>,
    b: Option<Vec<u32>>,
    cls: u32,
    sep: u32,
    max_seq_len: usize,
) -> Encoded {
    let mut input_ids = Vec::with_capacity(max_seq_len);
    let mut token_type_ids = Vec::with_capacity(max_seq_len);
    let b = match b {
        Some(mut b) => {
            truncate_pair(&mut a, &mut b, max_seq_len.saturating_sub(3));
            Some(b)
        }
        None => {
            a.truncate(max_seq_len.saturating_sub(2));
            None
        }
    };
    input_ids.push(cls);
    input_ids.extend_from_slice(&a);
    input_ids.push(sep);
    token_type_ids.resize(input_ids.len(), 0);
    if let Some(b) = b {
        input_ids.extend_from_slice(&b);
        input_ids.push(sep);
        token_type_ids.resize(input_ids.len(), 1);
    }
    Encoded {
        input_ids,
        token_type_ids,
    }
}

/// The training set doubled with every pair's A and B swapped (`double_unordered`, spec 5.1;
/// the reference does it for MRPC and STS-B).
pub fn with_swapped_pairs(examples: &[Example]) -> Vec<Example> {
    let mut out = examples.to_vec();
    out.extend(examples.iter().filter_map(|e| {
        let b = e.text_b.clone()?;
        Some(Example {
            id: e.id.clone(),
            text_a: b,
            text_b: Some(e.text_a.clone()),
            label: e.label,
        })
    }));
    out
}

/// Tokenizes and frames `examples` (all cores) with at most `max_seq_len` tokens each.
pub fn encode(
    tokenizer: &Tokenizer,
    examples: &[Example],
    max_seq_len: usize,
) -> Result<EncodedSet, EvalError> {
    if max_seq_len < 4 {
        return Err(EvalError::InvalidConfig(format!(
            "max_seq_len = {max_seq_len} is too short (at least 4: [CLS] a [SEP] b [SEP])"
        )));
    }
    let special = tokenizer.special_tokens();
    let a_texts: Vec<String> = examples.iter().map(|e| e.text_a.clone()).collect();
    let b_texts: Vec<String> = examples
        .iter()
        .map(|e| e.text_b.clone().unwrap_or_default())
        .collect();
    let a_ids = tokenizer.encode_batch(&a_texts)?;
    let b_ids = tokenizer.encode_batch(&b_texts)?;
    let items = examples
        .iter()
        .zip(a_ids.into_iter().zip(b_ids))
        .map(|(e, (a, b))| {
            let b = e.text_b.as_ref().map(|_| b);
            frame(a, b, special.cls, special.sep, max_seq_len)
        })
        .collect();
    let labels = examples.iter().map(|e| e.label).collect::<Option<Vec<_>>>();
    Ok(EncodedSet {
        ids: examples.iter().map(|e| e.id.clone()).collect(),
        items,
        labels,
        pad_id: special.pad,
    })
}

/// The tensors of the examples `indices` of `set`, padded to the longest of them (`[b, s]`
/// each; padding has id `[PAD]`, segment 0 and mask 0).
pub fn batch<B: Backend>(
    set: &EncodedSet,
    indices: &[usize],
    device: &B::Device,
) -> InputTensors<B> {
    let b = indices.len();
    let s = indices
        .iter()
        .map(|&i| set.items[i].input_ids.len())
        .max()
        .unwrap_or(1);
    let mut ids = vec![i64::from(set.pad_id); b * s];
    let mut types = vec![0i64; b * s];
    let mut mask = vec![0i64; b * s];
    for (row, &i) in indices.iter().enumerate() {
        let item = &set.items[i];
        for (col, (&t, &ty)) in item.input_ids.iter().zip(&item.token_type_ids).enumerate() {
            ids[row * s + col] = i64::from(t);
            types[row * s + col] = i64::from(ty);
            mask[row * s + col] = 1;
        }
    }
    let tensor = |v: Vec<i64>| {
        Tensor::<B, 1, Int>::from_data(TensorData::new(v, [b * s]), device).reshape([b, s])
    };
    InputTensors {
        input_ids: tensor(ids),
        token_type_ids: tensor(types),
        attention_mask: tensor(mask),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_are_truncated_from_the_longer_segment() {
        let mut a = vec![1, 2, 3, 4, 5];
        let mut b = vec![6, 7];
        truncate_pair(&mut a, &mut b, 5);
        assert_eq!((a, b), (vec![1, 2, 3], vec![6, 7]));
        let mut a = vec![1, 2, 3];
        let mut b = vec![6, 7, 8];
        truncate_pair(&mut a, &mut b, 4);
        assert_eq!((a, b), (vec![1, 2], vec![6, 7]));
    }

    #[test]
    fn framing_marks_segments() {
        let e = frame(vec![10, 11], Some(vec![20]), 2, 3, 128);
        assert_eq!(e.input_ids, [2, 10, 11, 3, 20, 3]);
        assert_eq!(e.token_type_ids, [0, 0, 0, 0, 1, 1]);
        let single = frame(vec![10, 11, 12, 13], None, 2, 3, 4);
        assert_eq!(single.input_ids, [2, 10, 11, 3]);
        assert_eq!(single.token_type_ids, [0, 0, 0, 0]);
        let long = frame(vec![1; 100], Some(vec![2; 100]), 2, 3, 16);
        assert_eq!(long.input_ids.len(), 16);
    }

    #[test]
    fn swapped_pairs_double_the_set() {
        let e = Example {
            id: "0".into(),
            text_a: "a".into(),
            text_b: Some("b".into()),
            label: Some(Label::Class(1)),
        };
        let doubled = with_swapped_pairs(std::slice::from_ref(&e));
        assert_eq!(doubled.len(), 2);
        assert_eq!(doubled[1].text_a, "b");
        assert_eq!(doubled[1].text_b.as_deref(), Some("a"));
        assert_eq!(doubled[1].label, e.label);
    }
}
