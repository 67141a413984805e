//! Dropout multipliers from a counter-based generator.
//!
//! Element `i` of a mask takes the bits of `splitmix64(seed + i·φ)` and keeps its value iff the
//! top 24 bits, as a fraction of 2²⁴, are at least the drop probability; a kept element's
//! multiplier carries the `1/(1 − prob)` scale, a dropped one's is 0. The mask depends only on
//! `(seed, i)`: never on the thread count, and any range of it can be made again on its own,
//! so the fused kernels regenerate the rows they need in the backward pass instead of storing
//! the mask. `seed` comes from the backend's seeded stream (`flex::next_seed`), so
//! `Backend::seed` keeps governing every random draw.

use rayon::prelude::*;

use crate::seed::{GOLDEN, splitmix64};

/// One dropout mask: its seed, drop threshold and keep scale.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Keep {
    seed: u64,
    threshold: u64,
    scale: f32,
}

impl Keep {
    /// The mask of drop probability `prob` (in `[0, 1)`) drawn from `seed`.
    pub fn new(prob: f64, seed: u64) -> Self {
        Self {
            seed,
            threshold: (prob * (1u64 << 24) as f64).round() as u64,
            scale: (1.0 / (1.0 - prob)) as f32,
        }
    }

    /// The multipliers of elements `first..first + out.len()`.
    pub fn fill(&self, first: usize, out: &mut [f32]) {
        fill_chunk(self.seed, first as u64, self.threshold, self.scale, out);
    }

    /// The multipliers of elements `0..n`, made in parallel chunks.
    pub fn multipliers(&self, n: usize) -> Vec<f32> {
        const CHUNK: usize = 65_536;
        let mut out = vec![0.0f32; n];
        out.par_chunks_mut(CHUNK)
            .enumerate()
            .for_each(|(chunk, out)| self.fill(chunk * CHUNK, out));
        out
    }
}

/// The dropout multipliers of `n` elements of drop probability `prob` from `seed`.
pub fn keep_multipliers(n: usize, prob: f64, seed: u64) -> Vec<f32> {
    Keep::new(prob, seed).multipliers(n)
}

super::simd::multiversion! {
    fn fill_chunk(seed: u64, base: u64, threshold: u64, scale: f32, out: &mut [f32]) {
        for (i, o) in out.iter_mut().enumerate() {
            let bits = splitmix64(seed.wrapping_add((base + i as u64).wrapping_mul(GOLDEN)));
            *o = if bits >> 40 >= threshold { scale } else { 0.0 };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn any_range_equals_the_same_range_of_the_whole_mask() {
        let keep = Keep::new(0.1, 12345);
        let whole = keep.multipliers(200_000);
        let mut part = vec![0.0f32; 777];
        keep.fill(131_000, &mut part);
        assert_eq!(part, whole[131_000..131_777]);
        let kept = whole.iter().filter(|&&k| k != 0.0).count() as f64 / whole.len() as f64;
        assert!((kept - 0.9).abs() < 0.005, "{kept}");
        assert!(
            whole
                .iter()
                .all(|&k| k == 0.0 || k == (1.0f64 / 0.9) as f32)
        );
    }
}
