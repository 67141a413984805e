//! Summaries over fine-tuning seeds: the paper reports the median of several runs from one
//! pre-trained checkpoint (spec 5.3), with the mean and spread beside it.

use serde::{Deserialize, Serialize};

/// The median of `values` (mean of the middle two for an even count); 0 for none. The
/// workspace's one median (seed summaries, the benchmarks' step times); `xtask`, which
/// depends on no crate of ours, keeps its own.
pub fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    match sorted.len() {
        0 => 0.0,
        n if n % 2 == 1 => sorted[n / 2],
        n => (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0,
    }
}

/// Median (mean of the middle two for an even count), mean and sample standard deviation
/// (n − 1; 0 for a single value); NaN for none.
pub fn summary(values: &[f64]) -> (f64, f64, f64) {
    if values.is_empty() {
        return (f64::NAN, f64::NAN, f64::NAN);
    }
    let n = values.len();
    let median = median(values);
    let mean = values.iter().sum::<f64>() / n as f64;
    let std = if n > 1 {
        (values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1) as f64).sqrt()
    } else {
        0.0
    };
    (median, mean, std)
}

/// Median, mean and sample standard deviation of one metric over seeds.
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
pub struct Stat {
    /// Median.
    pub median: f64,
    /// Mean.
    pub mean: f64,
    /// Sample standard deviation (0 for one seed).
    pub std: f64,
}

impl Stat {
    /// The summary of `values` (see [`summary`]).
    pub fn of(values: &[f64]) -> Self {
        let (median, mean, std) = summary(values);
        Self { median, mean, std }
    }
}
