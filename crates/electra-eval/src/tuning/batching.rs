//! Inference batches sorted by length (issue 26): evaluation and prediction group examples of
//! similar length, so that each batch, padded to its own longest example, carries little
//! padding. The attention mask makes padding inert (a padded key gets −10000 before the
//! softmax, whose weight is then exactly 0 in f32), so a row's outputs do not depend on which
//! rows share its batch beyond float summation order; results are put back in the input
//! order by the callers.
//!
//! Training batches are not sorted: their composition is part of the seeded recipe.

use serde::{Deserialize, Serialize};

/// Batches of at most `batch_size` indices into `lengths`, longest examples first (ties in
/// input order), so the largest batch runs first and a memory limit shows at once.
pub fn by_length(lengths: &[usize], batch_size: usize) -> Vec<Vec<usize>> {
    let mut order: Vec<usize> = (0..lengths.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(lengths[i]));
    order
        .chunks(batch_size.max(1))
        .map(<[usize]>::to_vec)
        .collect()
}

/// Batches of at most `batch_size` indices in input order (what inference did before).
pub fn in_order(count: usize, batch_size: usize) -> Vec<Vec<usize>> {
    let order: Vec<usize> = (0..count).collect();
    order
        .chunks(batch_size.max(1))
        .map(<[usize]>::to_vec)
        .collect()
}

/// How much of a batching's token slots are padding.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Padding {
    /// Real tokens.
    pub tokens: usize,
    /// Token slots of all batches (rows × the batch's padded length).
    pub slots: usize,
}

impl Padding {
    /// Token slots of `batches` when each is padded to its longest example.
    pub fn of(lengths: &[usize], batches: &[Vec<usize>]) -> Self {
        let mut out = Self::default();
        for batch in batches {
            let longest = batch.iter().map(|&i| lengths[i]).max().unwrap_or(0);
            out.tokens += batch.iter().map(|&i| lengths[i]).sum::<usize>();
            out.slots += longest * batch.len();
        }
        out
    }

    /// Token slots when every example is padded to `fixed` (the reference pads to
    /// `max_seq_length`).
    pub fn fixed(lengths: &[usize], fixed: usize) -> Self {
        Self {
            tokens: lengths.iter().sum(),
            slots: fixed * lengths.len(),
        }
    }

    /// Padded slots / all slots (0 for no slots).
    pub fn waste(&self) -> f64 {
        if self.slots == 0 {
            0.0
        } else {
            (self.slots - self.tokens) as f64 / self.slots as f64
        }
    }
}

/// Puts per-batch results back in input order: `batches` as [`by_length`] made them, and for
/// each batch its results in the batch's order.
pub fn restore_order<T>(count: usize, batches: &[Vec<usize>], results: Vec<Vec<T>>) -> Vec<T> {
    let mut slots: Vec<Option<T>> = (0..count).map(|_| None).collect();
    for (batch, values) in batches.iter().zip(results) {
        for (&i, v) in batch.iter().zip(values) {
            slots[i] = Some(v);
        }
    }
    slots.into_iter().flatten().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_are_longest_first_and_cover_every_index_once() {
        let lengths = [3, 9, 1, 9, 5, 2, 7];
        let batches = by_length(&lengths, 3);
        assert_eq!(batches, vec![vec![1, 3, 6], vec![4, 0, 5], vec![2]]);
        let mut all: Vec<usize> = batches.concat();
        all.sort_unstable();
        assert_eq!(all, (0..lengths.len()).collect::<Vec<_>>());
    }

    #[test]
    fn sorting_cuts_the_padding_and_results_come_back_in_order() {
        let lengths = [10, 2, 10, 2];
        let before = Padding::of(&lengths, &in_order(4, 2));
        let after = Padding::of(&lengths, &by_length(&lengths, 2));
        assert_eq!((before.tokens, before.slots), (24, 40));
        assert_eq!((after.tokens, after.slots), (24, 24));
        assert!((before.waste() - 0.4).abs() < 1e-12);
        assert_eq!(after.waste(), 0.0);
        assert!((Padding::fixed(&lengths, 16).waste() - 40.0 / 64.0).abs() < 1e-12);
        let batches = by_length(&lengths, 2);
        let results: Vec<Vec<usize>> = batches
            .iter()
            .map(|b| b.iter().map(|&i| lengths[i] * 100 + i).collect())
            .collect();
        assert_eq!(
            restore_order(4, &batches, results),
            vec![1000, 201, 1002, 203]
        );
    }
}
