//! Masking statistics over many draws (spec 1.2 and checklist item 1).

// Test helpers outside #[test] fns are not covered by clippy.toml's allow-unwrap-in-tests.
#![allow(clippy::unwrap_used)]

use electra_objective::masking::{corrupt, mask_batch, max_predictions, num_to_mask, step_rng};
use electra_objective::{HostBatch, MlmMasking, ObjectiveConfig, ObjectiveKind};
use rand::Rng;

const PAD: i64 = 0;
const CLS: i64 = 1;
const SEP: i64 = 2;
const MASK: i64 = 3;
const VOCAB: usize = 50;

fn config(objective: ObjectiveKind) -> ObjectiveConfig {
    ObjectiveConfig {
        objective,
        pad_token_id: PAD,
        cls_token_id: CLS,
        sep_token_id: SEP,
        mask_token_id: MASK,
        ..ObjectiveConfig::default()
    }
}

/// A batch of `[CLS] a.. [SEP] b.. [SEP] [PAD]..` rows of random lengths. Ordinary tokens are
/// drawn from 3..VOCAB, so some rows contain a literal `[MASK]` (3), which must never be chosen.
fn random_batch(rng: &mut impl Rng, batch: usize, seq: usize) -> HostBatch {
    let (mut ids, mut types, mut mask) = (vec![], vec![], vec![]);
    for _ in 0..batch {
        let real = rng.random_range(3..=seq);
        let first = rng.random_range(1..real - 1);
        for t in 0..seq {
            let (id, ty) = if t >= real {
                (PAD, 0)
            } else if t == 0 {
                (CLS, 0)
            } else if t == first || t == real - 1 {
                (SEP, i64::from(t > first))
            } else {
                (rng.random_range(3..VOCAB as i64), i64::from(t > first))
            };
            ids.push(id);
            types.push(ty);
            mask.push(i64::from(t < real));
        }
    }
    HostBatch::new(ids, types, mask, batch, seq).unwrap()
}

#[test]
fn budget_formula_matches_reference_examples() {
    // Spec 1.2: Small (L=128, p=0.15) → 19; Base (512, 0.15) → 79; Large (512, 0.25) → 130.
    assert_eq!(max_predictions(0.15, 128), 19);
    assert_eq!(max_predictions(0.15, 512), 79);
    assert_eq!(max_predictions(0.25, 512), 130);
    // Round half to even: 30·0.15 = 4.5 → 4; 50·0.15 = 7.5 → 8; 10·0.15 = 1.5 → 2.
    assert_eq!(num_to_mask(30, 0.15, 19), 4);
    assert_eq!(num_to_mask(50, 0.15, 19), 8);
    assert_eq!(num_to_mask(10, 0.15, 19), 2);
    // Clamped below at 1 and above at N.
    assert_eq!(num_to_mask(2, 0.15, 19), 1);
    assert_eq!(num_to_mask(128, 0.15, 19), 19);
    assert_eq!(num_to_mask(512, 0.15, 79), 77);
}

#[test]
fn mask_count_follows_clamp_round_formula() {
    // The loader pads each batch to its longest row; the budget follows the configured length
    // (64 here: N = floor(0.155·64) = 9) whatever the padded length.
    let cfg = config(ObjectiveKind::Electra);
    let max_seq_len = 64;
    let n = ((0.15 + 0.005) * max_seq_len as f64).floor() as usize;
    let mut data_rng = step_rng(7, 0);
    for step in 0..300 {
        let seq = [12, 40, 64][step as usize % 3];
        let batch = random_batch(&mut data_rng, 8, seq)
            .with_max_seq_len(max_seq_len)
            .unwrap();
        let masked = mask_batch(&batch, &cfg, VOCAB, &mut step_rng(1, step));
        assert_eq!(masked.slots, n, "padded to {seq}");
        for row in 0..batch.batch {
            let real = batch.real_tokens(row);
            let candidates = (0..seq)
                .filter(|&t| {
                    let id = batch.input_ids[row * seq + t];
                    t < real && ![PAD, CLS, SEP, MASK].contains(&id)
                })
                .count();
            let expected = ((0.15 * real as f64).round_ties_even() as usize)
                .clamp(1, n)
                .min(candidates);
            let active = &masked.weights[row * n..(row + 1) * n];
            assert_eq!(active.iter().filter(|&&w| w == 1.0).count(), expected);
            // Active slots come first; unused slots point at 0 with target 0.
            assert!(active[..expected].iter().all(|&w| w == 1.0));
            for slot in expected..n {
                let i = row * n + slot;
                assert_eq!(
                    (masked.positions[i], masked.targets[i], masked.weights[i]),
                    (0, 0, 0.0)
                );
            }
        }
    }
}

/// `rows` rows of `real` tokens each (`[CLS] w.. [SEP]`), no padding: a micro-batch whose
/// longest row is `real` tokens, as the loader yields it.
fn full_rows(rows: usize, real: usize) -> HostBatch {
    let mut ids = Vec::new();
    for row in 0..rows {
        ids.push(CLS);
        ids.extend((1..real - 1).map(|t| 4 + ((row * 7 + t) % (VOCAB - 4)) as i64));
        ids.push(SEP);
    }
    HostBatch::new(ids, vec![0; rows * real], vec![1; rows * real], rows, real).unwrap()
}

#[test]
fn a_batch_of_short_rows_masks_the_reference_count() {
    // Reference (max_seq_length 128, p = 0.15): N = 19 slots per row whatever the row length,
    // k = clamp(round(0.15·n), 1, 19). A batch padded only to its longest row must mask the
    // same: a 50-token row gets round(7.5) = 8 (a budget from the padded length, floor(0.155·50)
    // = 7, would give 7), a 10-token row round(1.5) = 2 (not floor(1.55) = 1), and rows of
    // 6 tokens round(0.9) = 1 (not floor(0.93) = 0 slots, which made the step fail).
    let cfg = config(ObjectiveKind::Electra);
    for (real, expected) in [(50, 8), (10, 2), (6, 1), (3, 1)] {
        let batch = full_rows(4, real).with_max_seq_len(128).unwrap();
        let masked = mask_batch(&batch, &cfg, VOCAB, &mut step_rng(11, real as u64));
        assert_eq!(masked.slots, 19, "rows of {real}");
        for row in 0..4 {
            let active = masked.weights[row * 19..(row + 1) * 19]
                .iter()
                .filter(|&&w| w == 1.0)
                .count();
            assert_eq!(active, expected, "rows of {real}");
        }
    }
}

#[test]
fn special_tokens_and_padding_are_never_chosen_and_positions_are_distinct() {
    let cfg = config(ObjectiveKind::Electra);
    let mut data_rng = step_rng(8, 0);
    let mut literal_mask_tokens = 0;
    for step in 0..300 {
        let batch = random_batch(&mut data_rng, 8, 32);
        literal_mask_tokens += batch.input_ids.iter().filter(|&&id| id == MASK).count();
        let masked = mask_batch(&batch, &cfg, VOCAB, &mut step_rng(2, step));
        let n = masked.slots;
        for row in 0..batch.batch {
            let mut seen = std::collections::HashSet::new();
            for slot in 0..n {
                let i = row * n + slot;
                if masked.weights[i] == 0.0 {
                    continue;
                }
                let pos = masked.positions[i] as usize;
                let flat = row * batch.seq + pos;
                assert_eq!(batch.attention_mask[flat], 1, "padding chosen");
                let original = batch.input_ids[flat];
                assert!(
                    ![PAD, CLS, SEP, MASK].contains(&original),
                    "special token {original} chosen"
                );
                assert_eq!(masked.targets[i], original, "target is the original token");
                assert!(seen.insert(pos), "position {pos} chosen twice");
            }
        }
    }
    assert!(
        literal_mask_tokens > 0,
        "the data contained literal [MASK] tokens to avoid"
    );
}

#[test]
fn electra_masking_is_85_15_with_no_random_tokens() {
    assert_reference_85_15(&config(ObjectiveKind::Electra));
}

#[test]
fn mlm_baseline_masks_85_15_by_default_like_the_papers_bert() {
    let cfg = config(ObjectiveKind::Mlm);
    assert_eq!(cfg.mlm_masking, MlmMasking::Reference);
    assert_reference_85_15(&cfg);
}

/// Over ~24k chosen tokens: 85 % become `[MASK]`, the rest stay unchanged, nothing else changes
/// (so no random tokens).
fn assert_reference_85_15(cfg: &ObjectiveConfig) {
    let mut data_rng = step_rng(9, 0);
    let (mut chosen, mut masked_count) = (0usize, 0usize);
    for step in 0..600 {
        let batch = random_batch(&mut data_rng, 8, 64);
        let masked = mask_batch(&batch, cfg, VOCAB, &mut step_rng(3, step));
        let n = masked.slots;
        let mut selected = vec![false; batch.input_ids.len()];
        for row in 0..batch.batch {
            for slot in 0..n {
                let i = row * n + slot;
                if masked.weights[i] == 1.0 {
                    selected[row * batch.seq + masked.positions[i] as usize] = true;
                }
            }
        }
        for (t, (&new, &old)) in masked
            .masked_input_ids
            .iter()
            .zip(&batch.input_ids)
            .enumerate()
        {
            if selected[t] {
                chosen += 1;
                if new == MASK {
                    masked_count += 1;
                } else {
                    assert_eq!(new, old, "a chosen token is either [MASK] or unchanged");
                }
            } else {
                assert_eq!(new, old, "an unchosen token is never changed");
            }
        }
    }
    let fraction = masked_count as f64 / chosen as f64;
    // ~24k chosen tokens: the standard error of the fraction is ~0.0023.
    assert!(chosen > 20_000, "{chosen}");
    assert!((fraction - 0.85).abs() < 0.01, "[MASK] fraction {fraction}");
}

#[test]
fn bert_mlm_masking_is_80_10_10() {
    let cfg = ObjectiveConfig {
        mlm_masking: MlmMasking::Bert,
        ..config(ObjectiveKind::Mlm)
    };
    let mut data_rng = step_rng(10, 0);
    let (mut chosen, mut to_mask, mut unchanged) = (0usize, 0usize, 0usize);
    for step in 0..600 {
        let batch = random_batch(&mut data_rng, 8, 64);
        let masked = mask_batch(&batch, &cfg, VOCAB, &mut step_rng(4, step));
        for i in 0..masked.weights.len() {
            if masked.weights[i] == 0.0 {
                continue;
            }
            let row = i / masked.slots;
            let flat = row * batch.seq + masked.positions[i] as usize;
            chosen += 1;
            let new = masked.masked_input_ids[flat];
            if new == MASK {
                to_mask += 1;
            } else if new == batch.input_ids[flat] {
                unchanged += 1;
            }
        }
    }
    let (m, u) = (
        to_mask as f64 / chosen as f64,
        unchanged as f64 / chosen as f64,
    );
    let random = 1.0 - m - u;
    assert!((m - 0.8).abs() < 0.01, "[MASK] {m}");
    // A random draw can equal the original (1/VOCAB of the 10 %) or be [MASK] itself.
    assert!(
        (u - (0.1 + 0.1 / VOCAB as f64)).abs() < 0.01,
        "unchanged {u}"
    );
    assert!((random - 0.1).abs() < 0.01, "random {random}");
}

#[test]
fn positions_are_uniform_over_candidates() {
    // One fixed row: [CLS] 10 ordinary tokens [SEP] [PAD]×3; k = round(0.15·12) = 2 of 10.
    let cfg = config(ObjectiveKind::Electra);
    let ids: Vec<i64> = [CLS]
        .into_iter()
        .chain(10..20)
        .chain([SEP, PAD, PAD, PAD])
        .collect();
    let mask: Vec<i64> = (0..15).map(|t| i64::from(t < 12)).collect();
    let batch = HostBatch::new(ids, vec![0; 15], mask, 1, 15).unwrap();
    let mut counts = [0usize; 15];
    let draws = 5000;
    for step in 0..draws {
        let masked = mask_batch(&batch, &cfg, VOCAB, &mut step_rng(5, step));
        for i in 0..masked.slots {
            if masked.weights[i] == 1.0 {
                counts[masked.positions[i] as usize] += 1;
            }
        }
    }
    // Each of the 10 candidates is chosen with probability 2/10 per draw: 1000 ± 28.
    for (pos, &c) in counts.iter().enumerate() {
        if (1..=10).contains(&pos) {
            assert!((c as f64 - 1000.0).abs() < 150.0, "position {pos}: {c}");
        } else {
            assert_eq!(c, 0, "position {pos}");
        }
    }
}

#[test]
fn masking_is_reproducible_per_seed_and_step() {
    let cfg = config(ObjectiveKind::Electra);
    let batch = random_batch(&mut step_rng(11, 0), 4, 40);
    let a = mask_batch(&batch, &cfg, VOCAB, &mut step_rng(42, 17));
    let b = mask_batch(&batch, &cfg, VOCAB, &mut step_rng(42, 17));
    assert_eq!(a, b, "same (seed, step), same masks");
    let c = mask_batch(&batch, &cfg, VOCAB, &mut step_rng(42, 18));
    let d = mask_batch(&batch, &cfg, VOCAB, &mut step_rng(43, 17));
    assert_ne!(a.positions, c.positions, "another step masks differently");
    assert_ne!(a.positions, d.positions, "another seed masks differently");
}

#[test]
fn sample_equal_to_original_is_labelled_original() {
    let cfg = config(ObjectiveKind::Electra);
    let batch = random_batch(&mut step_rng(12, 0), 4, 40);
    let masked = mask_batch(&batch, &cfg, VOCAB, &mut step_rng(6, 0));
    // Odd slots get the original back, even slots a different token.
    let sampled: Vec<i64> = masked
        .targets
        .iter()
        .enumerate()
        .map(|(i, &t)| if i % 2 == 1 { t } else { 4 + (t - 3) % 40 })
        .collect();
    let (ids, labels) = corrupt(&batch, &masked, &sampled);
    let mut expected = vec![0i64; ids.len()];
    for (i, &sample) in sampled.iter().enumerate() {
        if masked.weights[i] == 1.0 {
            let flat = (i / masked.slots) * batch.seq + masked.positions[i] as usize;
            // Spec 1.4: the discriminator sees the original with samples at every chosen
            // position, including the 15 % the generator saw unmasked.
            assert_eq!(ids[flat], sample);
            expected[flat] = i64::from(sample != masked.targets[i]);
        }
    }
    assert_eq!(labels, expected);
    assert!(labels.contains(&1) && masked.active() > labels.iter().sum::<i64>() as usize);
    // Everything not chosen is the original token, [CLS]/[SEP]/padding included.
    for (t, (&new, &old)) in ids.iter().zip(&batch.input_ids).enumerate() {
        if expected[t] == 0 {
            assert_eq!(new, old);
        }
    }
}
