//! Sampling replacements from the generator (spec 1.3, reference `sample_from_softmax`).
//!
//! The reference draws `argmax(logits/T + g)` with Gumbel noise `g` for every vocabulary entry,
//! which samples exactly from `softmax(logits/T)`. We draw from the same distribution by
//! **inverse CDF**: one uniform `u` per row, and the first index whose cumulative probability
//! exceeds `u·total`. That is one random number per slot instead of one per slot and
//! vocabulary entry (30,522), and one pass over the logits instead of the four tensor
//! operations of the noise; the distribution is the same, the random stream is not (see
//! docs/faithfulness.md, section 4). The logits are detached first and the result is a host
//! vector of ids, so no gradient flows through the sample (the reference's stop-gradient).
//!
//! The uniforms come from the backend's seeded stream (`Tensor::random`), which the training
//! step seeds from `(seed, step)` with [`device_seed`] (see
//! [`crate::ElectraPretrainingModel::step`]). The sampling pass itself runs where
//! [`electra_model::kernels::sample`] puts it: a row-parallel loop on the CPU backend, a
//! softmax-cumsum-count composition on the others.

use burn::prelude::*;
use burn::tensor::Distribution;
use electra_model::kernels;

/// Logit offset subtracted from the original token when `disallow_correct` is set (reference).
pub const DISALLOW_PENALTY: f32 = 1000.0;

/// Draws one token per row of `logits [n, V]` from `softmax(logits / temperature)`. With
/// `disallow` = the original ids `[n]`, their tempered logits are lowered by
/// [`DISALLOW_PENALTY`] (reference `disallow_correct`, applied after the division by the
/// temperature as in `_get_fake_data`). Returns the ids `[n]`.
pub fn sample_from_softmax<B: Backend>(
    logits: Tensor<B, 2>,
    temperature: f64,
    disallow: Option<&[i64]>,
) -> Vec<i64> {
    let [n, _] = logits.dims();
    let uniforms: Vec<f32> =
        Tensor::<B, 1>::random([n], Distribution::Uniform(0.0, 1.0), &logits.device())
            .into_data()
            .convert::<f32>()
            .iter::<f32>()
            // u < 1, so that `u·total` is always crossed.
            .map(|u| u.clamp(0.0, 1.0 - f32::EPSILON))
            .collect();
    kernels::sample(
        logits,
        temperature,
        disallow.map(|ids| (ids, DISALLOW_PENALTY)),
        &uniforms,
    )
}

/// The backend seed of step `step`: a SplitMix64 mix of `(seed, step)`, so consecutive steps
/// get unrelated device streams.
pub fn device_seed(seed: u64, step: u64) -> u64 {
    electra_model::seed::splitmix64(seed.wrapping_add(step.wrapping_mul(0xD1B5_4A32_D192_ED03)))
}
