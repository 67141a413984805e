//! Vector width for the CPU kernels without giving up the portable build.
//!
//! The workspace compiles for the baseline x86-64 target (SSE2: 4 `f32` lanes), so a binary runs
//! on any x86-64 machine. [`multiversion!`] makes a kernel's body an `#[inline(always)]`
//! function and calls it through `pulp::Arch::dispatch`, which checks the CPU's features once
//! per call (std caches the check) and runs the body inlined into a copy compiled with AVX-512
//! (F, BW, CD, DQ, VL: pulp's `x86-v4` level, enabled in the workspace's `Cargo.toml`) when the
//! CPU has it, into one compiled with AVX2 and FMA (8 lanes) when it has those, and into the
//! baseline copy otherwise. pulp holds the
//! `unsafe` of that call (a `#[target_feature]` function may only be called where the feature
//! is known), so the workspace keeps `unsafe_code = "forbid"`. All copies perform the same IEEE
//! operations in the same order: Rust never contracts `a·b + c` into a fused multiply-add, and
//! the kernels call no `mul_add`. So they give bit-identical results; the choice changes speed,
//! never numbers (tested below).
//!
//! LLVM does not reorder a floating-point reduction (`sum += x`), so a loop that accumulates
//! into one scalar stays scalar, and so does every operation in its body. The lane helpers
//! below ([`sum`], [`max`], [`dot`], [`sum_map`], [`sum_f64`]) accumulate into independent
//! lanes and add the lanes at the end, which the compiler turns into one vector register; that
//! fixes the summation order to "lane by lane, then across lanes", deterministic for a given
//! length.

/// Lanes of the reductions: one AVX2 register of `f32`.
pub const LANES: usize = 8;

/// Defines a kernel function whose body runs in AVX2 code where the CPU has it (see the module
/// docs). The arguments must be plain identifiers. `#[inline(never)]` keeps each kernel a symbol
/// of its own in profiles.
///
/// The arguments travel to pulp in a struct that implements `pulp::WithSimd`, not in a closure:
/// every call from pulp's `#[target_feature]` function down to the body is then
/// `#[inline(always)]`, so the body is compiled inside it. (A closure's `FnOnce::call_once`
/// shim is not always inlined, and the body would then run in the baseline copy.)
macro_rules! multiversion {
    ($(#[$attr:meta])* $vis:vis fn $name:ident($($arg:ident: $ty:ty),* $(,)?) -> $ret:ty $body:block) => {
        $(#[$attr])*
        #[inline(never)]
        $vis fn $name($($arg: $ty),*) -> $ret {
            #[inline(always)]
            fn body($($arg: $ty),*) -> $ret $body
            struct Args<T>(T);
            impl pulp::WithSimd for Args<($($ty,)*)> {
                type Output = $ret;
                #[inline(always)]
                fn with_simd<S: pulp::Simd>(self, _: S) -> $ret {
                    let ($($arg,)*) = self.0;
                    body($($arg),*)
                }
            }
            pulp::Arch::new().dispatch(Args(($($arg,)*)))
        }
    };
    ($(#[$attr:meta])* $vis:vis fn $name:ident($($arg:ident: $ty:ty),* $(,)?) $body:block) => {
        $crate::kernels::simd::multiversion! {
            $(#[$attr])* $vis fn $name($($arg: $ty),*) -> () $body
        }
    };
}
pub(crate) use multiversion;

/// `Σ xs`, accumulated in [`LANES`] lanes.
#[inline(always)]
pub fn sum(xs: &[f32]) -> f32 {
    sum_map(xs, |x| x)
}

/// `Σ f(x)` over `xs`, accumulated in [`LANES`] lanes (`f` is inlined and vectorised with the
/// sum: for example `exp(x − max)` of a softmax).
#[inline(always)]
pub fn sum_map(xs: &[f32], f: impl Fn(f32) -> f32) -> f32 {
    let mut acc = [0.0f32; LANES];
    let chunks = xs.chunks_exact(LANES);
    let tail = chunks.remainder();
    for c in chunks {
        for (a, &x) in acc.iter_mut().zip(c) {
            *a += f(x);
        }
    }
    for (a, &x) in acc.iter_mut().zip(tail) {
        *a += f(x);
    }
    lanes_sum(acc)
}

/// `Σ a·b`, accumulated in [`LANES`] lanes.
#[inline(always)]
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0.0f32; LANES];
    let (ca, cb) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
    let (ta, tb) = (ca.remainder(), cb.remainder());
    for (ca, cb) in ca.zip(cb) {
        for ((s, &x), &y) in acc.iter_mut().zip(ca).zip(cb) {
            *s += x * y;
        }
    }
    for ((s, &x), &y) in acc.iter_mut().zip(ta).zip(tb) {
        *s += x * y;
    }
    lanes_sum(acc)
}

/// `max xs` (`−∞` for an empty slice), in [`LANES`] lanes. NaNs are skipped like `f32::max`
/// skips them.
#[inline(always)]
pub fn max(xs: &[f32]) -> f32 {
    let mut acc = [f32::NEG_INFINITY; LANES];
    let chunks = xs.chunks_exact(LANES);
    let tail = chunks.remainder();
    for c in chunks {
        for (a, &x) in acc.iter_mut().zip(c) {
            *a = if x > *a { x } else { *a };
        }
    }
    for (a, &x) in acc.iter_mut().zip(tail) {
        *a = if x > *a { x } else { *a };
    }
    acc.into_iter().fold(f32::NEG_INFINITY, f32::max)
}

/// `Σ f(x)` over `xs` in `f64`, accumulated in 4 lanes (one AVX2 register of `f64`).
#[inline(always)]
pub fn sum_f64(xs: &[f32], f: impl Fn(f64) -> f64) -> f64 {
    let mut acc = [0.0f64; 4];
    let chunks = xs.chunks_exact(4);
    let tail = chunks.remainder();
    for c in chunks {
        for (a, &x) in acc.iter_mut().zip(c) {
            *a += f(x as f64);
        }
    }
    for (a, &x) in acc.iter_mut().zip(tail) {
        *a += f(x as f64);
    }
    (acc[0] + acc[2]) + (acc[1] + acc[3])
}

/// The lanes added pairwise: `((l0 + l4) + (l2 + l6)) + ((l1 + l5) + (l3 + l7))`, the order a
/// vector register's horizontal sum takes.
#[inline(always)]
fn lanes_sum(acc: [f32; LANES]) -> f32 {
    let h: [f32; 4] = std::array::from_fn(|i| acc[i] + acc[i + 4]);
    (h[0] + h[2]) + (h[1] + h[3])
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Values with every remainder length and mixed signs and magnitudes.
    fn values(n: usize) -> Vec<f32> {
        (0..n)
            .map(|i| ((i * 7919 % 1000) as f32 - 500.0) / 37.0)
            .collect()
    }

    #[test]
    fn reductions_agree_with_sequential_ones() {
        for n in 0..=40 {
            let x = values(n);
            let y: Vec<f32> = x.iter().map(|v| v * 0.5 - 1.0).collect();
            let seq_sum: f64 = x.iter().map(|&v| v as f64).sum();
            let seq_dot: f64 = x.iter().zip(&y).map(|(&a, &b)| a as f64 * b as f64).sum();
            let seq_max = x.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            assert!((sum(&x) as f64 - seq_sum).abs() < 1e-4, "sum n={n}");
            assert!((dot(&x, &y) as f64 - seq_dot).abs() < 1e-3, "dot n={n}");
            assert_eq!(max(&x), seq_max, "max n={n}");
            let exp_sum: f64 = x.iter().map(|&v| (v as f64 / 20.0).exp()).sum();
            let got = sum_map(&x, |v| (v / 20.0).exp()) as f64;
            assert!(
                (got - exp_sum).abs() < 1e-4 * exp_sum.max(1.0),
                "sum_map n={n}"
            );
            let sq: f64 = x.iter().map(|&v| (v as f64).powi(2)).sum();
            assert!(
                (sum_f64(&x, |v| v * v) - sq).abs() < 1e-9 * sq.max(1.0),
                "sum_f64 n={n}"
            );
        }
        assert_eq!(max(&[]), f32::NEG_INFINITY);
        assert_eq!(max(&[f32::NAN, 1.0]), 1.0);
    }

    multiversion! {
        /// A kernel written with the macro: the AVX2 copy (where the CPU has it) and the
        /// baseline copy must agree bit for bit.
        fn scaled_softmax_sum(x: &[f32], scale: f32) -> f32 {
            let m = max(x);
            sum_map(x, |v| crate::kernels::math::exp((v - m) * scale))
        }
    }

    #[test]
    fn the_dispatched_kernel_matches_its_baseline_copy_bit_for_bit() {
        let x = values(1_003);
        let dispatched = scaled_softmax_sum(&x, 0.25);
        let m = max(&x);
        let baseline = sum_map(&x, |v| crate::kernels::math::exp((v - m) * 0.25));
        assert_eq!(dispatched.to_bits(), baseline.to_bits());
    }
}
