//! Scalar functions written so that the compiler vectorises the loops that call them: no
//! library calls, no branches on the value. Accuracy is stated per function and checked by the
//! tests against the standard library.

const LOG2E: f32 = std::f32::consts::LOG2_E;
/// ln 2 split in a high part with a short mantissa and the rest (Cody-Waite reduction).
const LN2_HI: f32 = 0.693_145_75;
const LN2_LO: f32 = 1.428_606_8e-6;

/// `eˣ` to about 2 ulp for `x ∈ [−87, 88]`; inputs below −87 give `e^−87 ≈ 1.6e-38` (the
/// kernels only exponentiate `x − max ≤ 0`, where that is zero for every purpose), above 88
/// give `e^88`. `2^k·p(r)` with `k = round(x·log₂e)`, `|r| ≤ ln2/2` and a degree-6 Taylor
/// polynomial (remainder below 1.2e-7 relative).
///
/// `k` is never converted with `as`: Rust's float-to-integer `as` saturates, and that check
/// kept LLVM from vectorising every loop that called this function (3× slower under AVX2).
/// `k` is read from the bits of the rounding sum instead: `1.5·2²³ + k` (`|k| ≤ 127`) has the
/// exponent of `1.5·2²³` and `k` added to its mantissa, so its bits minus those of `1.5·2²³`
/// are `k` as a two's-complement integer.
#[inline(always)]
pub fn exp(x: f32) -> f32 {
    const ROUND: f32 = 12_582_912.0;
    let x = x.clamp(-87.0, 88.0);
    // Round to nearest by the 1.5·2²³ trick: no library call.
    let shifted = x * LOG2E + ROUND;
    let k = shifted - ROUND;
    let r = x - k * LN2_HI - k * LN2_LO;
    let p = 1.0
        + r * (1.0
            + r * (0.5
                + r * (1.0 / 6.0 + r * (1.0 / 24.0 + r * (1.0 / 120.0 + r * (1.0 / 720.0))))));
    let k_bits = shifted.to_bits().wrapping_sub(ROUND.to_bits());
    p * f32::from_bits(k_bits.wrapping_add(127) << 23)
}

/// `erf(x)` to within 1e-6 absolute (Abramowitz & Stegun 7.1.26, 1.5e-7 in exact arithmetic,
/// evaluated in f32 with [`exp`]: 6e-7 measured over [−6, 6]).
#[inline(always)]
pub fn erf(x: f32) -> f32 {
    erf_and_gaussian(x).0
}

/// `(erf(x), e^(−x²))`: [`erf`] and the Gaussian factor its formula computes on the way, for a
/// caller that needs both (the GELU backward's `φ`), at the cost of one exponential.
#[inline(always)]
pub fn erf_and_gaussian(x: f32) -> (f32, f32) {
    const P: f32 = 0.327_591_1;
    const A: [f32; 5] = [
        0.254_829_6,
        -0.284_496_74,
        1.421_413_7,
        -1.453_152_1,
        1.061_405_4,
    ];
    let a = x.abs();
    let t = 1.0 / (1.0 + P * a);
    let poly = t * (A[0] + t * (A[1] + t * (A[2] + t * (A[3] + t * A[4]))));
    let gaussian = exp(-a * a);
    let y = 1.0 - poly * gaussian;
    (y.copysign(x), gaussian)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_matches_the_standard_library() {
        let mut worst = 0.0f32;
        for i in 0..=200_000 {
            let x = -87.0 + 175.0 * i as f32 / 200_000.0;
            let (a, b) = (exp(x), x.exp());
            worst = worst.max(((a - b) / b).abs());
        }
        assert!(worst < 5e-7, "relative error {worst}");
        assert!(exp(-10_000.0) < 1e-37);
        assert_eq!(exp(0.0), 1.0);
        // The exponent read from the rounding sum's bits, at both ends of the range.
        assert!((exp(88.0) / 88f32.exp() - 1.0).abs() < 5e-7);
        assert!((exp(-87.0) / (-87f32).exp() - 1.0).abs() < 5e-7);
    }

    #[test]
    fn erf_matches_libm() {
        let mut worst = 0.0f32;
        for i in 0..=100_000 {
            let x = -6.0 + 12.0 * i as f32 / 100_000.0;
            worst = worst.max((erf(x) - libm::erff(x)).abs());
        }
        assert!(worst < 1e-6, "absolute error {worst}");
    }
}
