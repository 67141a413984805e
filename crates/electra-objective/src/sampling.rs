//! Sampling replacements from the generator (spec 1.3, reference `sample_from_softmax`).
//!
//! Gumbel-max: `sample = argmax(logits/T + g)` with `g = −log(−log(u + 1e-9) + 1e-9)` and
//! `u ~ U(0, 1)`, which draws exactly from `softmax(logits/T)`. The logits are detached first,
//! and the result is an Int tensor, so no gradient flows through the sample (the reference's
//! stop-gradient).
//!
//! The noise is drawn **on the device** with `Tensor::random`: a host draw would mean generating
//! and uploading `slots·V` floats per row every step (≈ 74 M for ELECTRA-Small's batch), for no
//! gain. Device draws are reproducible once the backend is seeded; the training step seeds it
//! from `(seed, step)` with [`device_seed`] (see [`crate::ElectraPretrainingModel::step`]).
//! The noise therefore depends on the backend's RNG, not only on the seed.

use burn::prelude::*;
use burn::tensor::{Distribution, FloatDType, IndexingUpdateOp};

/// Logit offset subtracted from the original token when `disallow_correct` is set (reference).
pub const DISALLOW_PENALTY: f32 = 1000.0;

/// Draws one token per row of `logits [n, V]` from `softmax(logits / temperature)` by
/// Gumbel-max. With `disallow` = the original ids `[n]`, their tempered logits are lowered by
/// [`DISALLOW_PENALTY`] (reference `disallow_correct`, applied after the division by the
/// temperature as in `_get_fake_data`). Returns the ids `[n]`.
pub fn gumbel_max_sample<B: Backend>(
    logits: Tensor<B, 2>,
    temperature: f64,
    disallow: Option<Tensor<B, 1, Int>>,
) -> Tensor<B, 1, Int> {
    let [n, v] = logits.dims();
    let device = logits.device();
    // Spec 1.3 works on f32 logits; with a half-precision backend the cast keeps near-ties and
    // the ±1000 penalty meaningful (a no-op in f32).
    let mut logits = logits
        .detach()
        .cast(FloatDType::F32)
        .div_scalar(temperature);
    if let Some(original) = disallow {
        let penalty =
            Tensor::<B, 2>::full([n, 1], -DISALLOW_PENALTY, &device).cast(FloatDType::F32);
        logits = logits.scatter(1, original.reshape([n, 1]), penalty, IndexingUpdateOp::Add);
    }
    let u = Tensor::<B, 2>::random([n, v], Distribution::Uniform(0.0, 1.0), &device)
        .cast(FloatDType::F32);
    let gumbel = u.add_scalar(1e-9).log().neg().add_scalar(1e-9).log().neg();
    (logits + gumbel).argmax(1).reshape([n])
}

/// The backend seed of step `step`: a SplitMix64 mix of `(seed, step)`, so consecutive steps
/// get unrelated device streams.
pub fn device_seed(seed: u64, step: u64) -> u64 {
    let mut z = seed
        .wrapping_add(0x9E37_79B9_7F4A_7C15)
        .wrapping_add(step.wrapping_mul(0xD1B5_4A32_D192_ED03));
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}
