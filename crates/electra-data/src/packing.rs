//! ELECTRA example packing, exactly as the reference `build_pretraining_dataset.py`
//! (`ExampleBuilder`, spec section 4).
//!
//! Lines (sentences) of a document are tokenized and appended to a buffer; an example is
//! emitted when the buffer reaches the current target length, at a document boundary, or at
//! the end of a file. The buffer is split into segments A and B:
//!
//! - with probability `single_segment_prob` (0.1) everything goes to A;
//! - otherwise `first_target = (target_length - 3) / 2`, and sentences are visited in order: a
//!   sentence goes to A if A is empty, or `len(A) + len(s) < first_target`, or (B is empty and
//!   `len(A) < first_target` and a fair coin says so); else to B (a later short sentence can
//!   still go to A after B started: the reference's quirk, kept);
//! - truncation: `A = A[..max_len - 2]`, `B = B[..max(0, max_len - len(A) - 3)]`; tokens beyond
//!   the limit are dropped, not carried over;
//! - the next target length is a uniform integer in `[5, max_len]` with probability
//!   `short_seq_prob` (0.05), else `max_len`.
//!
//! The layout is `[CLS] A [SEP]` plus `B [SEP]` when B is not empty; token type 0 for `[CLS]`,
//! A and the first `[SEP]`, 1 for B and the last `[SEP]`. Randomness comes from a ChaCha8
//! stream seeded by the caller, drawn in the reference's order, so packing is deterministic
//! for a seed (the values differ from Python's `random`, the distribution does not).

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::error::{DataError, Result};
use crate::tokenizer::SpecialTokens;

/// One packed pre-training example, unpadded: `[CLS] A [SEP] (B [SEP])`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Example {
    /// Token ids including `[CLS]` and the `[SEP]`s; `len() <= max_seq_len`.
    pub input_ids: Vec<u32>,
    /// Index of the first token of segment B (token type 1); `input_ids.len()` when the
    /// example has one segment.
    pub segment_b_start: usize,
}

impl Example {
    /// Builds `[CLS] a [SEP] (b [SEP])`.
    pub fn from_segments(a: &[u32], b: &[u32], special: SpecialTokens) -> Self {
        let mut input_ids = Vec::with_capacity(a.len() + b.len() + 3);
        input_ids.push(special.cls);
        input_ids.extend_from_slice(a);
        input_ids.push(special.sep);
        let segment_b_start = input_ids.len();
        if !b.is_empty() {
            input_ids.extend_from_slice(b);
            input_ids.push(special.sep);
        }
        Self {
            input_ids,
            segment_b_start,
        }
    }

    /// Number of real tokens.
    pub fn len(&self) -> usize {
        self.input_ids.len()
    }

    /// True for an example without tokens (never produced by the builder).
    pub fn is_empty(&self) -> bool {
        self.input_ids.is_empty()
    }

    /// Token type (segment) ids: 0 up to `segment_b_start`, 1 after.
    pub fn token_type_ids(&self) -> Vec<u8> {
        (0..self.input_ids.len())
            .map(|i| u8::from(i >= self.segment_b_start))
            .collect()
    }
}

/// Packing settings; the defaults are the reference's.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PackingConfig {
    /// Maximum tokens of an example, `[CLS]`/`[SEP]` included (128 for Small, 512 otherwise).
    pub max_seq_len: usize,
    /// Probability that an example has segment A only (reference: 0.1).
    pub single_segment_prob: f64,
    /// Probability that the next example's target length is drawn uniformly from
    /// `[5, max_seq_len]` (reference: 0.05).
    pub short_seq_prob: f64,
}

impl PackingConfig {
    /// The reference settings for `max_seq_len`.
    pub fn new(max_seq_len: usize) -> Self {
        Self {
            max_seq_len,
            single_segment_prob: 0.1,
            short_seq_prob: 0.05,
        }
    }

    /// Checks the ranges: `max_seq_len` in `[8, 65535]`, probabilities in `[0, 1]`.
    pub fn validate(&self) -> Result<()> {
        if !(8..=u16::MAX as usize).contains(&self.max_seq_len) {
            return Err(DataError::Config {
                name: "max-seq-len",
                message: format!("{} is outside [8, 65535]", self.max_seq_len),
            });
        }
        for (name, p) in [
            ("single-segment-prob", self.single_segment_prob),
            ("short-seq-prob", self.short_seq_prob),
        ] {
            if !(0.0..=1.0).contains(&p) {
                return Err(DataError::Config {
                    name,
                    message: format!("{p} is not a probability"),
                });
            }
        }
        Ok(())
    }
}

/// The reference's `ExampleBuilder`: feed it tokenized lines and document ends, get examples.
#[derive(Debug, Clone)]
pub struct ExampleBuilder {
    config: PackingConfig,
    special: SpecialTokens,
    rng: ChaCha8Rng,
    sentences: Vec<Vec<u32>>,
    current_len: usize,
    target_len: usize,
}

impl ExampleBuilder {
    /// A builder whose random choices come from `seed`.
    pub fn new(config: PackingConfig, special: SpecialTokens, seed: u64) -> Self {
        Self {
            config,
            special,
            rng: ChaCha8Rng::seed_from_u64(seed),
            sentences: Vec::new(),
            current_len: 0,
            target_len: config.max_seq_len,
        }
    }

    /// The target length of the example being filled.
    pub fn target_len(&self) -> usize {
        self.target_len
    }

    /// Adds one tokenized line; returns an example when the buffer reached the target length.
    /// An empty line here is not a document boundary (use [`Self::end_document`]); it adds
    /// nothing, as in the reference.
    pub fn add_sentence(&mut self, tokens: Vec<u32>) -> Option<Example> {
        if tokens.is_empty() {
            return None;
        }
        self.current_len += tokens.len();
        self.sentences.push(tokens);
        if self.current_len >= self.target_len {
            return Some(self.create_example());
        }
        None
    }

    /// A document boundary (blank line) or end of file: emits the buffer if it holds tokens.
    pub fn end_document(&mut self) -> Option<Example> {
        if self.current_len == 0 {
            return None;
        }
        Some(self.create_example())
    }

    fn create_example(&mut self) -> Example {
        let first_target = if self.rng.random::<f64>() < self.config.single_segment_prob {
            usize::MAX
        } else {
            self.target_len.saturating_sub(3) / 2
        };
        let mut first: Vec<u32> = Vec::with_capacity(self.current_len);
        let mut second: Vec<u32> = Vec::new();
        for sentence in std::mem::take(&mut self.sentences) {
            let to_first = first.is_empty()
                || first.len() + sentence.len() < first_target
                || (second.is_empty()
                    && first.len() < first_target
                    && self.rng.random::<f64>() < 0.5);
            if to_first {
                first.extend_from_slice(&sentence);
            } else {
                second.extend_from_slice(&sentence);
            }
        }
        let max_len = self.config.max_seq_len;
        first.truncate(max_len - 2);
        second.truncate(max_len.saturating_sub(first.len() + 3));
        self.current_len = 0;
        self.target_len = if self.rng.random::<f64>() < self.config.short_seq_prob {
            self.rng.random_range(5..=max_len)
        } else {
            max_len
        };
        Example::from_segments(&first, &second, self.special)
    }
}

/// Packs whole documents (each a list of tokenized lines) with one builder: a convenience for
/// in-memory data and tests. Each document ends with a boundary.
pub fn pack_documents<I>(
    documents: I,
    config: PackingConfig,
    special: SpecialTokens,
    seed: u64,
) -> Vec<Example>
where
    I: IntoIterator<Item = Vec<Vec<u32>>>,
{
    let mut builder = ExampleBuilder::new(config, special, seed);
    let mut out = Vec::new();
    for document in documents {
        for line in document {
            out.extend(builder.add_sentence(line));
        }
        out.extend(builder.end_document());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const SPECIAL: SpecialTokens = SpecialTokens {
        pad: 0,
        unk: 1,
        cls: 2,
        sep: 3,
        mask: 4,
    };

    fn sentence(start: u32, len: usize) -> Vec<u32> {
        (0..len as u32).map(|i| 10 + start + i).collect()
    }

    fn no_random(max: usize) -> PackingConfig {
        PackingConfig {
            max_seq_len: max,
            single_segment_prob: 0.0,
            short_seq_prob: 0.0,
        }
    }

    /// Checks the layout invariants of one example.
    fn check_layout(e: &Example, max: usize) {
        assert!(e.len() <= max);
        assert_eq!(e.input_ids[0], SPECIAL.cls);
        assert_eq!(e.input_ids[e.segment_b_start - 1], SPECIAL.sep);
        assert_eq!(*e.input_ids.last().unwrap(), SPECIAL.sep);
        let seps = e.input_ids.iter().filter(|&&t| t == SPECIAL.sep).count();
        assert_eq!(seps, if e.segment_b_start == e.len() { 1 } else { 2 });
        let types = e.token_type_ids();
        assert_eq!(types.len(), e.len());
        assert!(types[..e.segment_b_start].iter().all(|&t| t == 0));
        assert!(types[e.segment_b_start..].iter().all(|&t| t == 1));
    }

    #[test]
    fn segment_rules_deterministic_part() {
        // target 20 -> first_target (20-3)/2 = 8. Sentences of 5,2,4,6,5 tokens (22 >= 20).
        let mut b = ExampleBuilder::new(no_random(20), SPECIAL, 0);
        let lens = [5, 2, 4, 6, 5];
        let mut out = None;
        for (i, &l) in lens.iter().enumerate() {
            let r = b.add_sentence(sentence(i as u32 * 100, l));
            if i + 1 < lens.len() {
                assert!(r.is_none(), "emitted early at sentence {i}");
            } else {
                out = r;
            }
        }
        let e = out.unwrap();
        check_layout(&e, 20);
        // A: s0 (A empty), s1 (5+2 < 8); s2: 7+4 >= 8, B empty and 7 < 8 -> coin. Either way
        // A gets 7 or 11 tokens and all later sentences that do not fit go to B.
        let a_len = e.segment_b_start - 2;
        assert!(a_len == 7 || a_len == 11, "A has {a_len} tokens");
        // Truncation: A <= 18, B <= 20 - len(A) - 3.
        let b_len = e.len() - e.segment_b_start - 1;
        // 22 tokens do not fit: A + B = max - 3 after truncation.
        assert_eq!(a_len + b_len, 20 - 3);
        // B is truncated, never carried over: the builder is empty again.
        assert!(b.end_document().is_none());
    }

    #[test]
    fn later_short_sentence_can_join_a_after_b_started() {
        // first_target = 8: s0 6 -> A; s1 6 -> B (A not empty, 12 >= 8, then coin only if
        // B empty and 6 < 8: seed-dependent); s2 1 -> A whenever len(A) + 1 < 8.
        let mut saw_quirk = false;
        for seed in 0..50 {
            let mut b = ExampleBuilder::new(no_random(20), SPECIAL, seed);
            b.add_sentence(vec![11; 6]);
            b.add_sentence(vec![12; 6]);
            b.add_sentence(vec![13; 1]);
            let e = b.end_document().unwrap();
            check_layout(&e, 20);
            let a = &e.input_ids[1..e.segment_b_start - 1];
            if a == [11, 11, 11, 11, 11, 11, 13] {
                saw_quirk = true;
                assert_eq!(&e.input_ids[e.segment_b_start..e.len() - 1], &[12; 6]);
            }
        }
        assert!(saw_quirk);
    }

    #[test]
    fn fair_coin_for_a_sentence_that_overflows_a() {
        // first_target 8, A = 6 tokens, B empty: a 6-token sentence (12 >= 8) goes to A on a
        // fair coin, else it starts B.
        let n = 4000;
        let mut to_a = 0;
        for seed in 0..n {
            let mut b = ExampleBuilder::new(no_random(20), SPECIAL, seed);
            b.add_sentence(vec![11; 6]);
            b.add_sentence(vec![12; 6]);
            let e = b.end_document().unwrap();
            check_layout(&e, 20);
            if e.segment_b_start == e.len() {
                to_a += 1;
                assert_eq!(e.len(), 14);
            } else {
                assert_eq!(e.segment_b_start, 8);
            }
        }
        let p = to_a as f64 / n as f64;
        assert!((p - 0.5).abs() < 0.04, "coin gave A with frequency {p}");
    }

    #[test]
    fn truncation_of_long_single_sentence() {
        let mut b = ExampleBuilder::new(no_random(16), SPECIAL, 1);
        let e = b.add_sentence(sentence(0, 40)).unwrap();
        check_layout(&e, 16);
        // One sentence goes to A only; A is cut to max - 2 = 14: [CLS] + 14 + [SEP].
        assert_eq!(e.len(), 16);
        assert_eq!(e.segment_b_start, 16);
        assert_eq!(&e.input_ids[1..15], &sentence(0, 14)[..]);
    }

    #[test]
    fn document_boundary_and_empty_lines() {
        let mut b = ExampleBuilder::new(no_random(64), SPECIAL, 2);
        assert!(b.end_document().is_none());
        assert!(b.add_sentence(vec![]).is_none());
        assert!(b.add_sentence(sentence(0, 3)).is_none());
        let e = b.end_document().unwrap();
        assert_eq!(e.input_ids, vec![2, 10, 11, 12, 3]);
        assert_eq!(e.token_type_ids(), vec![0; 5]);
        assert!(b.end_document().is_none());
    }

    #[test]
    fn two_segment_layout() {
        let e = Example::from_segments(&[7, 8], &[9], SPECIAL);
        assert_eq!(e.input_ids, vec![2, 7, 8, 3, 9, 3]);
        assert_eq!(e.token_type_ids(), vec![0, 0, 0, 0, 1, 1]);
    }

    /// One long document of 10-token sentences.
    fn long_doc(n: usize) -> Vec<Vec<u32>> {
        (0..n).map(|i| sentence((i % 50) as u32, 10)).collect()
    }

    #[test]
    fn single_segment_probability() {
        let config = PackingConfig {
            short_seq_prob: 0.0,
            ..PackingConfig::new(128)
        };
        let examples = pack_documents([long_doc(200_000)], config, SPECIAL, 7);
        let n = examples.len() as f64;
        assert!(n > 10_000.0);
        let single = examples
            .iter()
            .filter(|e| e.segment_b_start == e.len())
            .count() as f64;
        let p = single / n;
        assert!((p - 0.1).abs() < 0.01, "single-segment fraction {p}");
        for e in &examples {
            check_layout(e, 128);
        }
    }

    #[test]
    fn short_target_probability_and_range() {
        // One-token sentences: an example closes exactly at its target length, so its length
        // (+ [CLS]/[SEP]s, capped at max) shows the target.
        let config = PackingConfig {
            single_segment_prob: 0.0,
            ..PackingConfig::new(128)
        };
        let doc: Vec<Vec<u32>> = (0..3_000_000).map(|i| vec![10 + (i % 7) as u32]).collect();
        let mut builder = ExampleBuilder::new(config, SPECIAL, 11);
        let mut targets = Vec::new();
        for line in doc {
            let target = builder.target_len();
            if let Some(e) = builder.add_sentence(line) {
                check_layout(&e, 128);
                let single = e.segment_b_start == e.len();
                let content = e.len() - if single { 2 } else { 3 };
                assert_eq!(content, target.min(if single { 126 } else { 125 }));
                targets.push(target);
            }
        }
        let n = targets.len() as f64;
        let short = targets.iter().filter(|&&t| t != 128).count() as f64;
        // P(target != max) = 0.05 * 123/124 (a uniform draw can give 128 too).
        let expected = 0.05 * 123.0 / 124.0;
        assert!(
            (short / n - expected).abs() < 0.006,
            "short fraction {}",
            short / n
        );
        assert!(targets.iter().all(|&t| (5..=128).contains(&t)));
        assert!(targets.contains(&5) || targets.iter().filter(|&&t| t < 20).count() > 10);
        assert_eq!(
            targets[0], 128,
            "the first example always targets max_seq_len"
        );
    }

    #[test]
    fn deterministic_for_a_seed() {
        let docs = || vec![long_doc(500), long_doc(30), long_doc(1)];
        let config = PackingConfig::new(64);
        let a = pack_documents(docs(), config, SPECIAL, 5);
        let b = pack_documents(docs(), config, SPECIAL, 5);
        let c = pack_documents(docs(), config, SPECIAL, 6);
        assert_eq!(a, b);
        assert_ne!(a, c);
    }

    #[test]
    fn validate_rejects_bad_settings() {
        assert!(PackingConfig::new(4).validate().is_err());
        assert!(PackingConfig::new(128).validate().is_ok());
        let bad = PackingConfig {
            short_seq_prob: 1.5,
            ..PackingConfig::new(128)
        };
        assert!(bad.validate().is_err());
    }
}
