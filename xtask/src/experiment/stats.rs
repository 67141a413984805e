//! Summary statistics of the experiment: median, mean, sample standard deviation, quantiles,
//! and a seeded percentile bootstrap of a mean (the interval on ELECTRA − BERT).
//!
//! The random numbers come from SplitMix64 (Steele, Lea and Flood 2014), written out here so
//! that an interval depends on its seed only, not on a crate's version.

/// Median of `values` (the mean of the middle two for an even count); `None` when empty.
pub fn median(values: &[f64]) -> Option<f64> {
    quantile(values, 0.5)
}

/// Arithmetic mean; `None` when empty.
pub fn mean(values: &[f64]) -> Option<f64> {
    (!values.is_empty()).then(|| values.iter().sum::<f64>() / values.len() as f64)
}

/// Sample standard deviation (divisor `n − 1`); 0 for one value, `None` when empty.
pub fn std(values: &[f64]) -> Option<f64> {
    let m = mean(values)?;
    if values.len() < 2 {
        return Some(0.0);
    }
    let ss: f64 = values.iter().map(|v| (v - m) * (v - m)).sum();
    Some((ss / (values.len() - 1) as f64).sqrt())
}

/// The `q`-quantile (0 ≤ q ≤ 1) with linear interpolation between order statistics (the
/// default of NumPy's `quantile` and R's type 7); `None` when empty.
pub fn quantile(values: &[f64], q: f64) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let position = q.clamp(0.0, 1.0) * (sorted.len() - 1) as f64;
    let (low, high) = (position.floor() as usize, position.ceil() as usize);
    let weight = position - low as f64;
    Some(sorted[low] + (sorted[high] - sorted[low]) * weight)
}

/// SplitMix64: a small seeded generator of 64-bit values.
#[derive(Clone, Debug)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    /// A generator whose stream is a function of `seed` alone.
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    /// The next 64-bit value.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A uniform index in `0..n` (`n > 0`; the modulo bias is below 2⁻⁵⁰ for the sizes here).
    pub fn index(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }
}

/// A percentile bootstrap interval of the mean.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Interval {
    /// The mean of the sample itself.
    pub estimate: f64,
    /// Lower bound (the `(1 − level)/2` quantile of the resampled means).
    pub low: f64,
    /// Upper bound (the `(1 + level)/2` quantile).
    pub high: f64,
}

/// The percentile bootstrap of the mean of `values`: `resamples` samples of the same size drawn
/// with replacement (from a [`SplitMix64`] seeded with `seed`), and the central `level` share
/// of their means. `None` when `values` is empty or `resamples` is 0.
pub fn bootstrap_mean(values: &[f64], resamples: usize, level: f64, seed: u64) -> Option<Interval> {
    let estimate = mean(values)?;
    if resamples == 0 {
        return None;
    }
    let mut rng = SplitMix64::new(seed);
    let means: Vec<f64> = (0..resamples)
        .map(|_| {
            let total: f64 = (0..values.len())
                .map(|_| values[rng.index(values.len())])
                .sum();
            total / values.len() as f64
        })
        .collect();
    let tail = (1.0 - level) / 2.0;
    Some(Interval {
        estimate,
        low: quantile(&means, tail)?,
        high: quantile(&means, 1.0 - tail)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_mean_and_std_match_hand_computed_values() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), Some(2.5));
        assert_eq!(median(&[]), None);
        assert_eq!(mean(&[1.0, 2.0, 6.0]), Some(3.0));
        // Sum of squares about 5 is 32; 32 / 7 = 4.571428..., sqrt = 2.1380899...
        let s = std(&[2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0]).expect("std");
        assert!((s - 2.138_089_935_299_395).abs() < 1e-12, "{s}");
        assert_eq!(std(&[5.0]), Some(0.0));
    }

    #[test]
    fn quantiles_interpolate_like_numpy() {
        // numpy.quantile([1, 2, 3, 4, 10], [0.25, 0.9]) = [2.0, 7.6]
        let v = [10.0, 1.0, 3.0, 2.0, 4.0];
        assert_eq!(quantile(&v, 0.25), Some(2.0));
        assert!((quantile(&v, 0.9).expect("q") - 7.6).abs() < 1e-12);
        assert_eq!(quantile(&v, 0.0), Some(1.0));
        assert_eq!(quantile(&v, 1.0), Some(10.0));
    }

    #[test]
    fn splitmix64_matches_the_reference_stream() {
        // The reference C implementation (Vigna, splitmix64.c) seeded with 0 and 1234567.
        let mut zero = SplitMix64::new(0);
        assert_eq!(zero.next_u64(), 0xe220_a839_7b1d_cdaf);
        assert_eq!(zero.next_u64(), 0x6e78_9e6a_a1b9_65f4);
        let mut other = SplitMix64::new(1_234_567);
        assert_eq!(other.next_u64(), 6_457_827_717_110_365_317);
        assert_eq!(other.next_u64(), 3_203_168_211_198_807_973);
    }

    #[test]
    fn bootstrap_of_a_constant_is_that_constant() {
        let i = bootstrap_mean(&[0.25; 6], 500, 0.95, 7).expect("interval");
        assert_eq!(
            i,
            Interval {
                estimate: 0.25,
                low: 0.25,
                high: 0.25
            }
        );
    }

    #[test]
    fn bootstrap_of_two_values_covers_the_three_possible_means() {
        // Means of two draws from {0, 1}: 0 (p 1/4), 0.5 (p 1/2), 1 (p 1/4). The 2.5 % and
        // 97.5 % quantiles of many resamples are therefore 0 and 1.
        let i = bootstrap_mean(&[0.0, 1.0], 4000, 0.95, 11).expect("interval");
        assert_eq!((i.estimate, i.low, i.high), (0.5, 0.0, 1.0));
        // A 40 % interval lies inside the central mass: both ends at 0.5.
        let narrow = bootstrap_mean(&[0.0, 1.0], 4000, 0.4, 11).expect("interval");
        assert_eq!((narrow.low, narrow.high), (0.5, 0.5));
    }

    #[test]
    fn bootstrap_is_reproducible_and_depends_on_its_seed() {
        let values = [0.3, -0.1, 0.8, 0.2, 0.05, -0.4, 0.6];
        let a = bootstrap_mean(&values, 1000, 0.95, 3).expect("a");
        let b = bootstrap_mean(&values, 1000, 0.95, 3).expect("b");
        let c = bootstrap_mean(&values, 1000, 0.95, 4).expect("c");
        assert_eq!(a, b);
        assert_ne!((a.low, a.high), (c.low, c.high));
        assert!(a.low < a.estimate && a.estimate < a.high, "{a:?}");
        assert_eq!(bootstrap_mean(&[], 10, 0.95, 1), None);
    }
}
