//! Dynamic masking on the host (spec 1.2, reference `pretrain_helpers.mask`).
//!
//! For every sequence with `n` real (non-pad) tokens, in a run configured for sequences of `L`
//! tokens (`HostBatch::max_seq_len`, the run's `data.max_seq_len`):
//!
//! 1. the slot budget is `N = floor((mask_prob + 0.005)·L)` — from the **configured** length,
//!    as the reference's `max_predictions_per_seq` is, not from the batch's padded length
//!    (our loader pads each batch only to its longest row, so a batch of short rows would
//!    otherwise get fewer slots, and rows of ≤ 6 tokens none at all);
//! 2. candidates are the real tokens other than `[CLS]`, `[SEP]`, `[MASK]` and `[PAD]`;
//! 3. `k = clamp(round(mask_prob·n), 1, N)` positions are chosen, `round` being
//!    round-half-to-even like TF's;
//! 4. each chosen position becomes `[MASK]` with probability 0.85 and otherwise keeps its
//!    token; no random tokens. The `mlm` baseline does the same by default (the reference trained
//!    the paper's BERT baseline with this very function), or BERT's 80/10/10 with
//!    `mlm_masking = "bert"` ([`crate::config::MlmMasking`]).
//!
//! **Deviation from the reference, on purpose** (spec 1.6): positions are drawn **without
//! replacement** (a partial Fisher-Yates shuffle of the candidates), whereas the reference draws
//! `N` positions i.i.d. with replacement and keeps the first `k`, so it can pick a position twice
//! and then writes an arbitrary averaged token id there. Without replacement every active slot
//! is a distinct position and `k` is capped by the number of candidates.
//!
//! Randomness: a ChaCha8 generator seeded with the config's `seed` and set to stream `step`
//! ([`step_rng`]), so the masks of a step do not depend on the backend, on earlier steps or on
//! where a run was resumed.

use rand::Rng;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::batch::HostBatch;
use crate::config::ObjectiveConfig;

/// Probability that a chosen position becomes `[MASK]` in ELECTRA (reference code; the other
/// 15 % keep the original token).
pub const ELECTRA_MASK_FRACTION: f64 = 0.85;
/// BERT's rule (`mlm` baseline): probability of `[MASK]`.
pub const BERT_MASK_FRACTION: f64 = 0.8;
/// BERT's rule: probability of a random token (the rest, 10 %, stay unchanged).
pub const BERT_RANDOM_FRACTION: f64 = 0.1;

/// The host RNG of step `step`: ChaCha8 seeded with `seed`, stream `step`.
pub fn step_rng(seed: u64, step: u64) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(step);
    rng
}

/// Slot budget `N = floor((mask_prob + 0.005)·seq)` (reference `max_predictions_per_seq`).
pub fn max_predictions(mask_prob: f64, seq: usize) -> usize {
    ((mask_prob + 0.005) * seq as f64).floor() as usize
}

/// Number of positions to mask, `min(N, max(1, round_half_even(mask_prob·real_tokens)))`.
pub fn num_to_mask(real_tokens: usize, mask_prob: f64, max_predictions: usize) -> usize {
    let rounded = (mask_prob * real_tokens as f64).round_ties_even() as usize;
    rounded.max(1).min(max_predictions)
}

/// The generator's input and the MLM targets of one batch (reference `mask` outputs).
///
/// Slots: each row has `slots = N = floor((mask_prob + 0.005)·max_seq_len)` prediction slots; the first `k` of a row are active
/// (`weights = 1`), the rest point at position 0 with target 0 and weight 0.
#[derive(Clone, Debug, PartialEq)]
pub struct MaskedBatch {
    /// Generator input: the original ids with `[MASK]` (or, for `mlm`, random tokens) written
    /// at chosen positions, `[batch, seq]`.
    pub masked_input_ids: Vec<i64>,
    /// Position of each slot within its row, `[batch, slots]`.
    pub positions: Vec<i64>,
    /// Original token id at each slot (the MLM target), `[batch, slots]`.
    pub targets: Vec<i64>,
    /// 1.0 for active slots, 0.0 for unused ones, `[batch, slots]`.
    pub weights: Vec<f32>,
    /// Slots per row `N`.
    pub slots: usize,
}

impl MaskedBatch {
    /// `[batch, seq]` 1.0 at the positions of active slots, else 0.0 (the loss mask of
    /// `electra-15`).
    pub fn position_indicator(&self, batch: usize, seq: usize) -> Vec<f32> {
        let mut out = vec![0.0; batch * seq];
        for row in 0..batch {
            for slot in 0..self.slots {
                let i = row * self.slots + slot;
                if self.weights[i] > 0.0 {
                    out[row * seq + self.positions[i] as usize] = 1.0;
                }
            }
        }
        out
    }

    /// Number of active slots in the batch.
    pub fn active(&self) -> usize {
        self.weights.iter().filter(|&&w| w > 0.0).count()
    }
}

/// Whether position `i` of `batch` may be masked (spec 1.2 step 2).
fn is_candidate(batch: &HostBatch, config: &ObjectiveConfig, i: usize) -> bool {
    let id = batch.input_ids[i];
    batch.attention_mask[i] == 1
        && id != config.cls_token_id
        && id != config.sep_token_id
        && id != config.mask_token_id
        && id != config.pad_token_id
}

/// Masks `batch` per spec 1.2 (see the module docs): `N` slots per row from the configured
/// length `batch.max_seq_len`, with BERT's 80/10/10 rule only for `mlm` with
/// `mlm_masking = "bert"` (random tokens uniform over `0..vocab_size`, as BERT's
/// `create_pretraining_data.py` draws from the whole vocabulary).
pub fn mask_batch(
    batch: &HostBatch,
    config: &ObjectiveConfig,
    vocab_size: usize,
    rng: &mut impl Rng,
) -> MaskedBatch {
    let (b, s) = (batch.batch, batch.seq);
    let slots = max_predictions(config.mask_prob, batch.max_seq_len.max(s));
    let mut masked = MaskedBatch {
        masked_input_ids: batch.input_ids.clone(),
        positions: vec![0; b * slots],
        targets: vec![0; b * slots],
        weights: vec![0.0; b * slots],
        slots,
    };
    let bert = config.bert_masking();
    for row in 0..b {
        let start = row * s;
        let mut candidates: Vec<usize> = (0..s)
            .filter(|&t| is_candidate(batch, config, start + t))
            .collect();
        let k = num_to_mask(batch.real_tokens(row), config.mask_prob, slots).min(candidates.len());
        // Partial Fisher-Yates: the first k entries become a uniform draw without replacement.
        for slot in 0..k {
            let j = rng.random_range(slot..candidates.len());
            candidates.swap(slot, j);
            let pos = candidates[slot];
            let i = row * slots + slot;
            masked.positions[i] = pos as i64;
            masked.targets[i] = batch.input_ids[start + pos];
            masked.weights[i] = 1.0;
            // Spec 1.2 step 6 (reference 85/15) or, for `mlm` if chosen, BERT's 80/10/10.
            let u: f64 = rng.random();
            let replacement = if bert {
                if u < BERT_MASK_FRACTION {
                    Some(config.mask_token_id)
                } else if u < BERT_MASK_FRACTION + BERT_RANDOM_FRACTION {
                    Some(rng.random_range(0..vocab_size as i64))
                } else {
                    None
                }
            } else if u < ELECTRA_MASK_FRACTION {
                Some(config.mask_token_id)
            } else {
                None
            };
            if let Some(id) = replacement {
                masked.masked_input_ids[start + pos] = id;
            }
        }
    }
    masked
}

/// Writes `sampled` ids (one per slot, `[batch, slots]`) into the **original** ids at every
/// active slot (spec 1.4) and labels each position: 1 ("replaced") iff the written id differs
/// from the original, so a sample equal to the original is labelled original. Returns the
/// corrupted ids and the labels, both `[batch, seq]`.
pub fn corrupt(batch: &HostBatch, masked: &MaskedBatch, sampled: &[i64]) -> (Vec<i64>, Vec<i64>) {
    let mut ids = batch.input_ids.clone();
    for row in 0..batch.batch {
        for slot in 0..masked.slots {
            let i = row * masked.slots + slot;
            if masked.weights[i] > 0.0 {
                ids[row * batch.seq + masked.positions[i] as usize] = sampled[i];
            }
        }
    }
    let labels = ids
        .iter()
        .zip(&batch.input_ids)
        .map(|(new, old)| i64::from(new != old))
        .collect();
    (ids, labels)
}
