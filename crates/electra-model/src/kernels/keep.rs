//! Dropout multipliers from a counter-based generator.
//!
//! Element `i` of a mask takes 32 random bits `h(i) = fmix32(fmix32(lo(i) ⊕ k₀) ⊕ hi(i) ⊕ k₁)`,
//! where `lo`/`hi` are the low and high 32 bits of the index, `k₀`/`k₁` the two halves of the
//! mask's 64-bit seed and `fmix32` MurmurHash3's 32-bit finaliser (a bijective avalanche), and
//! keeps its value iff the top 24 bits, as a fraction of 2²⁴, are at least the drop
//! probability; a kept element's multiplier carries the `1/(1 − prob)` scale, a dropped one's
//! is 0. Every operation is on 32-bit lanes, so the loop runs 8 elements per AVX2 instruction
//! (the SplitMix64 stream it replaced needed 64-bit multiplies, which AVX2 does not have: 4×
//! slower, ~3 % of a `small` training step). The mask depends only on
//! `(seed, i)`: never on the thread count, and any range of it can be made again on its own,
//! so the fused kernels regenerate the rows they need in the backward pass instead of storing
//! the mask. `seed` comes from the backend's seeded stream (`flex::next_seed`), so
//! `Backend::seed` keeps governing every random draw.

use rayon::prelude::*;

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

/// MurmurHash3's 32-bit finaliser.
#[inline(always)]
fn fmix32(mut h: u32) -> u32 {
    h ^= h >> 16;
    h = h.wrapping_mul(0x85EB_CA6B);
    h ^= h >> 13;
    h = h.wrapping_mul(0xC2B2_AE35);
    h ^ (h >> 16)
}

/// The 32 random bits of element `index` of the mask with seed `seed` (module docs; the
/// specification [`fill_chunk`] is tested against).
#[cfg(test)]
fn bits(seed: u64, index: u64) -> u32 {
    let (k0, k1) = (seed as u32, (seed >> 32) as u32);
    fmix32(fmix32(index as u32 ^ k0) ^ (index >> 32) as u32 ^ k1)
}

super::simd::multiversion! {
    fn fill_chunk(seed: u64, base: u64, threshold: u64, scale: f32, out: &mut [f32]) {
        let threshold = threshold as u32;
        // Runs that do not cross a multiple of 2³², so the high half is fixed and the loop
        // works on 32-bit lanes only.
        let mut done = 0usize;
        while done < out.len() {
            let first = base + done as u64;
            let room = (1u64 << 32) - (first & 0xFFFF_FFFF);
            let len = (out.len() - done).min(room.min(usize::MAX as u64) as usize);
            let (lo, k1) = (first as u32, (first >> 32) as u32 ^ (seed >> 32) as u32);
            let k0 = seed as u32;
            for (j, o) in out[done..done + len].iter_mut().enumerate() {
                let h = fmix32(fmix32(lo.wrapping_add(j as u32) ^ k0) ^ k1);
                *o = if h >> 8 >= threshold { scale } else { 0.0 };
            }
            done += len;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The fast loop computes the bits the module docs define, across a 2³² boundary too.
    #[test]
    fn the_loop_draws_the_documented_bits() {
        let keep = Keep::new(0.5, 0xDEAD_BEEF_1234_5678);
        let first = (1u64 << 32) - 3;
        let mut out = vec![0.0f32; 7];
        fill_chunk(keep.seed, first, keep.threshold, keep.scale, &mut out);
        for (j, &o) in out.iter().enumerate() {
            let kept = bits(keep.seed, first + j as u64) >> 8 >= keep.threshold as u32;
            assert_eq!(o, if kept { 2.0 } else { 0.0 }, "element {j}");
        }
    }

    /// Masks of neighbouring seeds and neighbouring elements are not correlated: the fraction
    /// of elements kept by both of two masks is the product of the fractions.
    #[test]
    fn masks_of_two_seeds_are_independent() {
        let (a, b) = (
            Keep::new(0.5, 1).multipliers(100_000),
            Keep::new(0.5, 2).multipliers(100_000),
        );
        let both = a
            .iter()
            .zip(&b)
            .filter(|(x, y)| **x != 0.0 && **y != 0.0)
            .count() as f64;
        assert!((both / 100_000.0 - 0.25).abs() < 0.01, "{both}");
        let next = a.windows(2).filter(|w| w[0] != 0.0 && w[1] != 0.0).count() as f64;
        assert!((next / 99_999.0 - 0.25).abs() < 0.01, "{next}");
    }

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
