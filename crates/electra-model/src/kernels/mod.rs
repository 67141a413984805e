//! Fused kernels for the hot spots of a training step, with one fast implementation for the CPU
//! and one composition of burn tensor ops for every other backend.
//!
//! A profile of the ELECTRA step on burn's flex backend (docs/benchmarks.md) found most of the
//! time outside the matrix products: LayerNorm, softmax, GELU and the MLM cross-entropy are
//! decomposed by `Autodiff` into 5-15 element-wise operations each, the head split and merge of
//! attention walk strided views element by element, and dropout masks are drawn one
//! distribution object per element. The functions here replace each of those with one
//! operation, and a transformer layer with four ([`dense()`] of the fused query/key/value
//! projection, [`attention`](fn@attention), [`dense_residual_layer_norm`] twice around
//! [`dense_gelu`]), whose matrix products write straight into the buffers the element-wise
//! work then finishes in place (issue 26: burn-flex's own product zero-fills and copies every
//! output, and the composed layer made ~25 graph nodes):
//!
//! | function | what it computes | backward |
//! |---|---|---|
//! | [`dense()`] | `x·W + b` (one matrix product into our own buffer, [`electra_gemm`]) | `dx = dy·Wᵀ`, `dW = xᵀ·dy`, `db = Σ dy` |
//! | [`dense_gelu`] | `gelu(x·W + b)` | the GELU's from the saved pre-activation, then the product's |
//! | [`dense_residual_layer_norm`] | `LayerNorm(dropout(x·W + b) + residual)` | from the saved LayerNorm input and statistics; the mask made again |
//! | [`attention`](fn@attention) | multi-head attention of the fused `[n, 3H]` projection, heads read in place, one sequence per task | per head, from the saved probabilities |
//! | [`layer_norm`] | LayerNorm over the last dimension | `dx`, `dγ`, `dβ` from saved mean and 1/std |
//! | [`attention_probs`] | `dropout(softmax(scores·scale + mask))` (composed attention's step) | from the saved probabilities and mask |
//! | [`split_heads`], [`merge_heads`] | `[b, s, H]` ↔ `[b, h, s, d]`, contiguous (composed attention's layout) | the inverse copy |
//! | [`dropout`] | `x·keep` with the `1/(1 − p)` scale folded into the mask | `dy·keep` |
//! | [`gelu`] | the exact GELU | `dy·(Φ(x) + x·φ(x))` |
//! | [`cross_entropy`] | `−log softmax(logits)[target]` per row | `softmax − onehot` |
//! | [`sample`] | one draw per row from `softmax(logits/T)` | (not differentiable) |
//!
//! **Dispatch.** Each function is generic over `B: Backend` like the rest of the model, and
//! chooses its implementation from the backend type: `Autodiff<Flex>` and `Flex` run the
//! row-parallel CPU kernels of [`cpu`] (custom autodiff operations with hand-written backward
//! passes, [`flex`]); every other backend (wgpu, cuda, ndarray, or `Autodiff` over them) runs
//! the composed burn operations of [`composed`], which are exactly what the model computed
//! before these kernels existed. Choosing by type keeps the model's bounds `B: Backend`, so a
//! new backend needs no code here; it runs the composed form until it gets kernels of its own.
//! The test module checks every fast kernel, value and gradient, against its composed form.
//!
//! **Randomness.** The fast dropout draws its mask from a counter-based generator ([`keep`]:
//! a 32-bit hash of the element's index and the mask's seed), with one seed per mask drawn from
//! flex's seeded stream, so
//! `Backend::seed` still fixes every draw, and masks do not depend on the thread count. The
//! masks differ from burn's `Dropout` (another generator, the same distribution). The sampler
//! draws by inverse CDF from one uniform per row, instead of Gumbel noise for every vocabulary
//! entry: the same distribution, another stream (docs/faithfulness.md).

use std::any::{Any, TypeId};

use burn::backend::{Autodiff, Flex};
use burn::prelude::*;

pub mod attention;
pub mod composed;
pub mod cpu;
pub mod dense;
pub mod flex;
pub mod fused;
pub mod keep;
pub mod math;
pub mod simd;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_fused;

/// Which implementation a backend gets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Route {
    /// `Autodiff<Flex>`: custom autodiff operations over the CPU kernels.
    AutodiffFlex,
    /// `Flex`: the CPU kernels (inference).
    Flex,
    /// Any other backend: composed burn operations.
    Composed,
}

/// The implementation `B` gets.
pub fn route<B: Backend>() -> Route {
    let id = TypeId::of::<B>();
    if id == TypeId::of::<Autodiff<Flex>>() {
        Route::AutodiffFlex
    } else if id == TypeId::of::<Flex>() {
        Route::Flex
    } else {
        Route::Composed
    }
}

/// Moves `value` to type `T`, which [`route`] has established is its own type.
fn cast<S: 'static, T: 'static>(value: S) -> T {
    match (Box::new(value) as Box<dyn Any>).downcast::<T>() {
        Ok(t) => *t,
        Err(_) => unreachable!("kernels::cast between different types"),
    }
}

/// `t` as the primitive of `Autodiff<Flex>`, which [`route`] has established `B` is.
fn ad<B: Backend, const D: usize>(t: Tensor<B, D>) -> burn::tensor::ops::FloatTensor<flex::Ad> {
    flex::prim_ad(cast::<_, Tensor<flex::Ad, D>>(t))
}

/// `t` as the primitive of `Flex`, which [`route`] has established `B` is.
fn fl<B: Backend, const D: usize>(t: Tensor<B, D>) -> burn::backend::flex::FlexTensor {
    flex::prim_flex(cast::<_, Tensor<Flex, D>>(t))
}

/// The dropout probability in force: `prob` when `B` tracks gradients (as burn's `Dropout`),
/// else 0.
fn dropout_in_force<B: Backend>(prob: f64, device: &B::Device) -> f64 {
    if B::ad_enabled(device) { prob } else { 0.0 }
}

/// A fresh dropout mask of probability `prob` from flex's seeded stream (`None` for 0).
fn fresh_keep(prob: f64) -> Option<keep::Keep> {
    (prob > 0.0).then(|| keep::Keep::new(prob, flex::next_seed()))
}

/// `x [n, d_in] · W + b` → `[n, d_out]`, with `W [d_in, d_out]` (burn's `Linear`) or, when
/// `transposed`, `W [d_out, d_in]` read transposed (a tied embedding table as output layer).
/// One matrix product into the output and one pass adding the bias on the CPU backend.
pub fn dense<B: Backend>(
    x: Tensor<B, 2>,
    w: Tensor<B, 2>,
    b: Tensor<B, 1>,
    transposed: bool,
) -> Tensor<B, 2> {
    match route::<B>() {
        Route::AutodiffFlex => cast(flex::from_ad::<2>(fused::dense_ad(
            ad(x),
            ad(w),
            ad(b),
            transposed,
        ))),
        Route::Flex => cast(flex::from_flex::<2>(fused::dense_flex(
            fl(x),
            fl(w),
            fl(b),
            transposed,
        ))),
        Route::Composed => composed::dense(x, w, b, transposed),
    }
}

/// `gelu(x·W + b)` (the exact GELU; `W [d_in, d_out]`): one operation with its backward on the
/// CPU backend.
pub fn dense_gelu<B: Backend>(x: Tensor<B, 2>, w: Tensor<B, 2>, b: Tensor<B, 1>) -> Tensor<B, 2> {
    match route::<B>() {
        Route::AutodiffFlex => cast(flex::from_ad::<2>(fused::dense_gelu_ad(
            ad(x),
            ad(w),
            ad(b),
        ))),
        Route::Flex => cast(flex::from_flex::<2>(fused::dense_gelu_flex(
            fl(x),
            fl(w),
            fl(b),
        ))),
        Route::Composed => burn::tensor::activation::gelu(composed::dense(x, w, b, false)),
    }
}

/// `LayerNorm(dropout(x·W + b) + residual)` over the last dimension with `norm = (γ, β, eps)`
/// (the attention and feed-forward outputs of a post-LN layer), dropout `prob` applied only
/// when `B` tracks gradients: one operation with its backward on the CPU backend.
pub fn dense_residual_layer_norm<B: Backend>(
    x: Tensor<B, 2>,
    w: Tensor<B, 2>,
    b: Tensor<B, 1>,
    residual: Tensor<B, 2>,
    norm: (Tensor<B, 1>, Tensor<B, 1>, f64),
    prob: f64,
) -> Tensor<B, 2> {
    let (gamma, beta, eps) = norm;
    let prob = dropout_in_force::<B>(prob, &x.device());
    match route::<B>() {
        Route::AutodiffFlex => {
            let norm = fused::Norm {
                gamma: ad(gamma),
                beta: ad(beta),
                eps,
            };
            let keep = fresh_keep(prob);
            let y =
                fused::dense_residual_layer_norm_ad(ad(x), ad(w), ad(b), ad(residual), norm, keep);
            cast(flex::from_ad::<2>(y))
        }
        Route::Flex => {
            let norm = fused::Norm {
                gamma: fl(gamma),
                beta: fl(beta),
                eps,
            };
            let y = fused::dense_residual_layer_norm_flex(fl(x), fl(w), fl(b), fl(residual), norm);
            cast(flex::from_flex::<2>(y))
        }
        Route::Composed => {
            composed::dense_residual_layer_norm(x, w, b, residual, (gamma, beta, eps), prob)
        }
    }
}

/// Multi-head self-attention of the fused projection `qkv [n, 3H]` (`n = b·s`; queries, keys,
/// values side by side) under the additive key mask `mask [b, s]` (0 or −10000 per key), scores
/// scaled by `scale`, dropout `prob` on the probabilities (applied only when `B` tracks
/// gradients) → the context `[n, H]`, heads merged. One operation with its backward on the CPU
/// backend ([`attention`](mod@attention)), which never copies a head out of `qkv` and holds one
/// head's scores at a time in inference.
pub fn attention<B: Backend>(
    qkv: Tensor<B, 2>,
    mask: Tensor<B, 2>,
    heads: usize,
    scale: f64,
    prob: f64,
) -> Tensor<B, 2> {
    let prob = dropout_in_force::<B>(prob, &qkv.device());
    match route::<B>() {
        Route::AutodiffFlex => {
            let mask = ad(mask).primitive;
            let keep = fresh_keep(prob);
            let ctx = fused::attention_ad(ad(qkv), mask, heads, scale as f32, keep);
            cast(flex::from_ad::<2>(ctx))
        }
        Route::Flex => {
            let ctx = fused::attention_flex(fl(qkv), fl(mask), heads, scale as f32);
            cast(flex::from_flex::<2>(ctx))
        }
        Route::Composed => composed::attention(qkv, mask, heads, scale, prob),
    }
}

/// LayerNorm of `x [.., d]` over the last dimension with scale `gamma [d]`, shift `beta [d]`.
pub fn layer_norm<B: Backend, const D: usize>(
    x: Tensor<B, D>,
    gamma: Tensor<B, 1>,
    beta: Tensor<B, 1>,
    eps: f64,
) -> Tensor<B, D> {
    match route::<B>() {
        Route::AutodiffFlex => {
            let x = flex::prim_ad(cast::<_, Tensor<flex::Ad, D>>(x));
            let gamma = flex::prim_ad(cast::<_, Tensor<flex::Ad, 1>>(gamma));
            let beta = flex::prim_ad(cast::<_, Tensor<flex::Ad, 1>>(beta));
            cast(flex::from_ad::<D>(flex::layer_norm_ad(x, gamma, beta, eps)))
        }
        // Flex's own layer_norm is fused when no autodiff decomposes it.
        _ => composed::layer_norm(x, gamma, beta, eps),
    }
}

/// Attention probabilities `dropout(softmax(scores·scale + mask))`: `scores [b, h, s, s]`,
/// `mask [b, s]` additive (0 or −10000 per key), `prob` the dropout probability (applied only
/// when `B` tracks gradients, like burn's `Dropout`).
pub fn attention_probs<B: Backend>(
    scores: Tensor<B, 4>,
    mask: Tensor<B, 2>,
    scale: f64,
    prob: f64,
) -> Tensor<B, 4> {
    match route::<B>() {
        Route::AutodiffFlex => {
            let scores = flex::prim_ad(cast::<_, Tensor<flex::Ad, 4>>(scores));
            let mask = flex::prim_ad(cast::<_, Tensor<flex::Ad, 2>>(mask)).primitive;
            let out = flex::attention_probs_ad(scores, mask, scale as f32, prob);
            cast(flex::from_ad::<4>(out))
        }
        Route::Flex => {
            let scores = flex::prim_flex(cast::<_, Tensor<Flex, 4>>(scores));
            let mask = flex::prim_flex(cast::<_, Tensor<Flex, 2>>(mask));
            cast(flex::from_flex::<4>(flex::attention_probs_flex(
                scores,
                mask,
                scale as f32,
            )))
        }
        Route::Composed => composed::attention_probs(scores, mask, scale, prob),
    }
}

/// `[b, s, H]` → `[b, heads, s, H/heads]`, contiguous.
pub fn split_heads<B: Backend>(x: Tensor<B, 3>, heads: usize) -> Tensor<B, 4> {
    match route::<B>() {
        Route::AutodiffFlex => {
            let x = flex::prim_ad(cast::<_, Tensor<flex::Ad, 3>>(x));
            cast(flex::from_ad::<4>(flex::permute_heads_ad(x, heads, false)))
        }
        Route::Flex => {
            let x = flex::prim_flex(cast::<_, Tensor<Flex, 3>>(x));
            cast(flex::from_flex::<4>(flex::permute_heads_flex(
                x, heads, false,
            )))
        }
        Route::Composed => composed::split_heads(x, heads),
    }
}

/// `[b, heads, s, d]` → `[b, s, heads·d]`, contiguous.
pub fn merge_heads<B: Backend>(x: Tensor<B, 4>) -> Tensor<B, 3> {
    let heads = x.dims()[1];
    match route::<B>() {
        Route::AutodiffFlex => {
            let x = flex::prim_ad(cast::<_, Tensor<flex::Ad, 4>>(x));
            cast(flex::from_ad::<3>(flex::permute_heads_ad(x, heads, true)))
        }
        Route::Flex => {
            let x = flex::prim_flex(cast::<_, Tensor<Flex, 4>>(x));
            cast(flex::from_flex::<3>(flex::permute_heads_flex(
                x, heads, true,
            )))
        }
        Route::Composed => composed::merge_heads(x),
    }
}

/// Dropout with probability `prob`, applied only when `B` tracks gradients (as burn's
/// `Dropout`): `x·keep`, `keep` being `0` or `1/(1 − prob)`.
pub fn dropout<B: Backend, const D: usize>(x: Tensor<B, D>, prob: f64) -> Tensor<B, D> {
    if prob == 0.0 || !B::ad_enabled(&x.device()) {
        return x;
    }
    match route::<B>() {
        Route::AutodiffFlex => {
            let x = flex::prim_ad(cast::<_, Tensor<flex::Ad, D>>(x));
            cast(flex::from_ad::<D>(flex::dropout_ad(x, prob)))
        }
        _ => composed::dropout(x, prob),
    }
}

/// The exact GELU `x·Φ(x)`.
pub fn gelu<B: Backend, const D: usize>(x: Tensor<B, D>) -> Tensor<B, D> {
    match route::<B>() {
        Route::AutodiffFlex => {
            let x = flex::prim_ad(cast::<_, Tensor<flex::Ad, D>>(x));
            cast(flex::from_ad::<D>(flex::gelu_ad(x)))
        }
        Route::Flex => {
            let x = flex::prim_flex(cast::<_, Tensor<Flex, D>>(x));
            cast(flex::from_flex::<D>(flex::gelu_flex(x)))
        }
        Route::Composed => burn::tensor::activation::gelu(x),
    }
}

/// Per-row cross-entropy `−log softmax(logits [n, V])[targets[i]]` → `[n]`.
pub fn cross_entropy<B: Backend>(logits: Tensor<B, 2>, targets: Tensor<B, 1, Int>) -> Tensor<B, 1> {
    let host = || -> Vec<i64> { targets.clone().into_data().iter::<i64>().collect() };
    match route::<B>() {
        Route::AutodiffFlex => {
            let logits = flex::prim_ad(cast::<_, Tensor<flex::Ad, 2>>(logits));
            cast(flex::from_ad::<1>(flex::cross_entropy_ad(logits, host())))
        }
        Route::Flex => {
            let logits = flex::prim_flex(cast::<_, Tensor<Flex, 2>>(logits));
            cast(flex::from_flex::<1>(flex::cross_entropy_flex(
                logits,
                &host(),
            )))
        }
        Route::Composed => composed::cross_entropy(logits, targets),
    }
}

/// One sample per row of `logits [n, V]` from `softmax(logits/temperature)`, by inverse CDF:
/// the first index whose cumulative probability exceeds `uniforms[i]·total` (`uniforms` in
/// `[0, 1)`, one per row). With `disallow = (ids, penalty)`, `ids[i]`'s tempered logit is
/// lowered by `penalty` first. The logits are read without gradient.
pub fn sample<B: Backend>(
    logits: Tensor<B, 2>,
    temperature: f64,
    disallow: Option<(&[i64], f32)>,
    uniforms: &[f32],
) -> Vec<i64> {
    let logits = logits.detach();
    match route::<B>() {
        Route::AutodiffFlex => {
            let p = flex::prim_ad(cast::<_, Tensor<flex::Ad, 2>>(logits)).primitive;
            flex::sample_flex(p, temperature as f32, disallow, uniforms)
        }
        Route::Flex => {
            let p = flex::prim_flex(cast::<_, Tensor<Flex, 2>>(logits));
            flex::sample_flex(p, temperature as f32, disallow, uniforms)
        }
        Route::Composed => composed::sample(logits, temperature, disallow, uniforms),
    }
}

/// One reference-Adam update of a flat parameter `theta [n]` with moments `m`, `v` and gradient
/// `g` (no autodiff: the optimizer works on the inner backend). Returns `(θ, m, v)`.
pub fn adam<B: Backend>(
    theta: Tensor<B, 1>,
    m: Tensor<B, 1>,
    v: Tensor<B, 1>,
    g: Tensor<B, 1>,
    scalars: cpu::AdamScalars,
) -> (Tensor<B, 1>, Tensor<B, 1>, Tensor<B, 1>) {
    match route::<B>() {
        Route::Flex => {
            let p = |t: Tensor<B, 1>| flex::prim_flex(cast::<_, Tensor<Flex, 1>>(t));
            let (t, m, v) = flex::adam_flex(p(theta), p(m), p(v), p(g), scalars);
            (
                cast(flex::from_flex::<1>(t)),
                cast(flex::from_flex::<1>(m)),
                cast(flex::from_flex::<1>(v)),
            )
        }
        _ => composed::adam(theta, m, v, g, scalars),
    }
}
