//! The CPU kernels behind [`super`]: plain functions over contiguous `f32` slices, split into
//! row blocks that rayon runs in parallel. Each forward kernel returns what its backward needs;
//! each backward kernel is the exact derivative of its forward (the tests in `kernels::tests`
//! compare both with burn's composed tensor ops).

use rayon::prelude::*;

use super::math;
use super::simd::{self, multiversion};

/// Rows per rayon task: enough work per task to amortise scheduling, few enough rows that both
/// cores get work on the smallest shapes the tests and the `tiny` preset use.
pub(crate) fn rows_per_task(cols: usize) -> usize {
    (16_384 / cols.max(1)).clamp(1, 256)
}

/// A zeroed buffer of `n` elements, zeroed by every thread of the pool when it is large. Freed
/// buffers come back from the allocator's heap, where zeroing them is a `memset` on the calling
/// thread: in a two-thread step that was the largest piece of work left on one core.
pub(crate) fn zeros(n: usize) -> Vec<f32> {
    if n < 1 << 16 {
        return vec![0.0f32; n];
    }
    let mut v = Vec::with_capacity(n);
    v.par_extend(rayon::iter::repeat_n(0.0f32, n));
    v
}

/// LayerNorm over the last dimension of `x [rows, d]`: `y = (x − μ)·rstd·γ + β` with
/// `rstd = 1/√(σ² + eps)` (biased variance, as PyTorch and burn). Returns `y` and the per-row
/// `(μ, rstd)` pairs `[rows, 2]` the backward needs.
pub fn layer_norm(x: &[f32], gamma: &[f32], beta: &[f32], eps: f64) -> (Vec<f32>, Vec<f32>) {
    let d = gamma.len();
    let rows = x.len() / d;
    let mut y = zeros(x.len());
    let mut stats = zeros(rows * 2);
    let block = rows_per_task(d);
    y.par_chunks_mut(block * d)
        .zip(stats.par_chunks_mut(block * 2))
        .zip(x.par_chunks(block * d))
        .for_each(|((y, stats), x)| layer_norm_rows(x, gamma, beta, eps, y, stats));
    (y, stats)
}

multiversion! {
    /// One block of rows of [`layer_norm`]: `y` and the `(mean, rstd)` pairs of each row of `x`.
    pub(crate) fn layer_norm_rows(
        x: &[f32],
        gamma: &[f32],
        beta: &[f32],
        eps: f64,
        y: &mut [f32],
        stats: &mut [f32],
    ) {
        let d = gamma.len();
        for ((y, st), x) in y.chunks_mut(d).zip(stats.chunks_mut(2)).zip(x.chunks(d)) {
            // Mean and variance in f64 (two passes), as before the lanes.
            let mean = simd::sum_f64(x, |v| v) / d as f64;
            let var = simd::sum_f64(x, |v| (v - mean) * (v - mean)) / d as f64;
            let rstd = 1.0 / (var + eps).sqrt();
            let (mean, rstd) = (mean as f32, rstd as f32);
            for (((y, &x), &g), &b) in y.iter_mut().zip(x).zip(gamma).zip(beta) {
                *y = (x - mean) * rstd * g + b;
            }
            st[0] = mean;
            st[1] = rstd;
        }
    }
}

/// The gradients of [`layer_norm`] for the upstream gradient `dy [rows, d]`: `(dx, dγ, dβ)`.
/// `dx = rstd·(g − mean(g) − x̂·mean(g·x̂))` with `g = dy·γ` and `x̂ = (x − μ)·rstd`.
pub fn layer_norm_backward(
    x: &[f32],
    gamma: &[f32],
    stats: &[f32],
    dy: &[f32],
) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let d = gamma.len();
    let mut dx = zeros(x.len());
    let block = rows_per_task(d);
    let partials: Vec<(Vec<f32>, Vec<f32>)> = dx
        .par_chunks_mut(block * d)
        .zip(x.par_chunks(block * d))
        .zip(dy.par_chunks(block * d))
        .zip(stats.par_chunks(block * 2))
        .map(|(((dx, x), dy), stats)| layer_norm_backward_rows(x, gamma, stats, dy, dx))
        .collect();
    let (mut dgamma, mut dbeta) = (vec![0.0f32; d], vec![0.0f32; d]);
    for (g, b) in partials {
        dgamma.iter_mut().zip(g).for_each(|(a, v)| *a += v);
        dbeta.iter_mut().zip(b).for_each(|(a, v)| *a += v);
    }
    (dx, dgamma, dbeta)
}

multiversion! {
    /// One block of rows of [`layer_norm_backward`]; returns the block's `(dγ, dβ)` sums.
    fn layer_norm_backward_rows(
        x: &[f32],
        gamma: &[f32],
        stats: &[f32],
        dy: &[f32],
        dx: &mut [f32],
    ) -> (Vec<f32>, Vec<f32>) {
        let d = gamma.len();
        let (mut dgamma, mut dbeta) = (vec![0.0f32; d], vec![0.0f32; d]);
        let (mut xhat, mut g) = (vec![0.0f32; d], vec![0.0f32; d]);
        for (((dx, x), dy), st) in dx
            .chunks_mut(d)
            .zip(x.chunks(d))
            .zip(dy.chunks(d))
            .zip(stats.chunks(2))
        {
            let (mean, rstd) = (st[0], st[1]);
            for j in 0..d {
                xhat[j] = (x[j] - mean) * rstd;
                g[j] = dy[j] * gamma[j];
                dgamma[j] += dy[j] * xhat[j];
                dbeta[j] += dy[j];
            }
            let (mean_g, mean_gx) = (simd::sum(&g) / d as f32, simd::dot(&g, &xhat) / d as f32);
            for j in 0..d {
                dx[j] = rstd * (g[j] - mean_g - xhat[j] * mean_gx);
            }
        }
        (dgamma, dbeta)
    }
}

/// Attention probabilities of `scores [b, h, s_q, s_k]` with the additive key mask
/// `mask [b, s_k]`: `p = softmax(scores·scale + mask)` per row, then `out = p·keep` where `keep`
/// is the dropout multiplier per element (`0` or `1/(1 − prob)`; `None` without dropout).
/// Returns `(out, p)`; the backward needs `p`.
pub fn attention_probs(
    scores: &[f32],
    mask: &[f32],
    s_k: usize,
    scale: f32,
    keep: Option<&[f32]>,
) -> (Vec<f32>, Vec<f32>) {
    let batch = mask.len() / s_k;
    let rows_per_batch = scores.len() / s_k / batch;
    let mut p = zeros(scores.len());
    let mut out = keep.map(|_| zeros(scores.len()));
    let block = rows_per_task(s_k);
    let chunk = block * s_k;
    match (&mut out, keep) {
        (Some(out), Some(keep)) => p
            .par_chunks_mut(chunk)
            .zip(out.par_chunks_mut(chunk))
            .zip(scores.par_chunks(chunk).zip(keep.par_chunks(chunk)))
            .enumerate()
            .for_each(|(task, ((p, out), (x, keep)))| {
                let first = task * block;
                softmax_rows(x, mask, first, rows_per_batch, s_k, scale, p);
                product(p, keep, out);
            }),
        _ => p
            .par_chunks_mut(chunk)
            .zip(scores.par_chunks(chunk))
            .enumerate()
            .for_each(|(task, (p, x))| {
                softmax_rows(x, mask, task * block, rows_per_batch, s_k, scale, p)
            }),
    }
    let out = out.unwrap_or_else(|| p.clone());
    (out, p)
}

multiversion! {
    /// `out = a·b` element by element.
    fn product(a: &[f32], b: &[f32], out: &mut [f32]) {
        for ((o, &a), &b) in out.iter_mut().zip(a).zip(b) {
            *o = a * b;
        }
    }
}

multiversion! {
    /// `softmax(x·scale + mask[batch of row])` for the rows of `x`, the first being row `first`.
    fn softmax_rows(
        x: &[f32],
        mask: &[f32],
        first: usize,
        rows_per_batch: usize,
        s_k: usize,
        scale: f32,
        p: &mut [f32],
    ) {
        for (r, (p, x)) in p.chunks_mut(s_k).zip(x.chunks(s_k)).enumerate() {
            let m = &mask[((first + r) / rows_per_batch) * s_k..][..s_k];
            for ((p, &x), &m) in p.iter_mut().zip(x).zip(m) {
                *p = x * scale + m;
            }
            let max = simd::max(p);
            p.iter_mut().for_each(|p| *p = math::exp(*p - max));
            let inv = 1.0 / simd::sum(p);
            p.iter_mut().for_each(|p| *p *= inv);
        }
    }
}

/// The gradient of [`attention_probs`] with respect to `scores`, for the upstream gradient
/// `dout`: `ds = scale·p·(dp − Σ_k dp·p)` with `dp = dout·keep`.
pub fn attention_probs_backward(
    p: &[f32],
    keep: Option<&[f32]>,
    dout: &[f32],
    s_k: usize,
    scale: f32,
) -> Vec<f32> {
    let mut ds = zeros(p.len());
    let chunk = rows_per_task(s_k) * s_k;
    ds.par_chunks_mut(chunk)
        .zip(p.par_chunks(chunk))
        .zip(dout.par_chunks(chunk))
        .enumerate()
        .for_each(|(task, ((ds, p), dout))| {
            let keep = keep.map(|k| &k[task * chunk..][..p.len()]);
            softmax_backward_rows(p, keep, dout, s_k, scale, ds)
        });
    ds
}

multiversion! {
    /// `ds = scale·p·(dp − Σ_k dp·p)` per row, with `dp = dout·keep` (`dout` without dropout).
    pub(crate) fn softmax_backward_rows(
        p: &[f32],
        keep: Option<&[f32]>,
        dout: &[f32],
        s_k: usize,
        scale: f32,
        ds: &mut [f32],
    ) {
        match keep {
            Some(keep) => {
                for ((ds, &dout), &k) in ds.iter_mut().zip(dout).zip(keep) {
                    *ds = dout * k;
                }
            }
            None => ds.copy_from_slice(dout),
        }
        for (ds, p) in ds.chunks_mut(s_k).zip(p.chunks(s_k)) {
            let dot = simd::dot(ds, p);
            for (ds, &p) in ds.iter_mut().zip(p) {
                *ds = scale * p * (*ds - dot);
            }
        }
    }
}

/// `x [b, s, h·d]` → `[b, h, s, d]` (contiguous), or the inverse with `merge = true`.
pub fn permute_heads(x: &[f32], b: usize, s: usize, heads: usize, merge: bool) -> Vec<f32> {
    let hd = x.len() / (b * s);
    let d = hd / heads;
    let mut out = zeros(x.len());
    // One task per batch row: `s·h·d` elements, copied as `s·h` runs of `d`.
    out.par_chunks_mut(s * hd)
        .zip(x.par_chunks(s * hd))
        .for_each(|(out, x)| permute_row(x, s, heads, d, merge, out));
    out
}

#[inline(never)]
fn permute_row(x: &[f32], s: usize, heads: usize, d: usize, merge: bool, out: &mut [f32]) {
    let hd = heads * d;
    for t in 0..s {
        for h in 0..heads {
            let (split, merged) = ((h * s + t) * d, t * hd + h * d);
            let (dst, src) = if merge {
                (merged, split)
            } else {
                (split, merged)
            };
            out[dst..dst + d].copy_from_slice(&x[src..src + d]);
        }
    }
}

multiversion! {
    /// `x ← x·by` element by element (a dropout mask applied in place, or a mask scaled by a
    /// gradient).
    pub(crate) fn scale_in_place(x: &mut [f32], by: &[f32]) {
        for (x, &b) in x.iter_mut().zip(by) {
            *x *= b;
        }
    }
}

/// `out = x·keep` element by element (dropout with the scale folded into `keep`).
pub fn scale_by(x: &[f32], keep: &[f32]) -> Vec<f32> {
    let mut out = zeros(x.len());
    out.par_chunks_mut(16_384)
        .zip(x.par_chunks(16_384).zip(keep.par_chunks(16_384)))
        .for_each(|(o, (x, k))| product(x, k, o));
    out
}

/// The exact GELU `x·Φ(x) = ½x(1 + erf(x/√2))` (HF `gelu`, the reference's `gelu`), with
/// [`math::erf`] (absolute error below 1e-6).
pub fn gelu(x: &[f32]) -> Vec<f32> {
    let mut out = zeros(x.len());
    out.par_chunks_mut(16_384)
        .zip(x.par_chunks(16_384))
        .for_each(|(o, x)| gelu_chunk(x, o));
    out
}

multiversion! {
    fn gelu_chunk(x: &[f32], out: &mut [f32]) {
        for (o, &x) in out.iter_mut().zip(x) {
            *o = 0.5 * x * (1.0 + math::erf(x * std::f32::consts::FRAC_1_SQRT_2));
        }
    }
}

/// The gradient of [`gelu`]: `dy·(Φ(x) + x·φ(x))`.
pub fn gelu_backward(x: &[f32], dy: &[f32]) -> Vec<f32> {
    let mut out = zeros(x.len());
    out.par_chunks_mut(16_384)
        .zip(x.par_chunks(16_384).zip(dy.par_chunks(16_384)))
        .for_each(|(o, (x, dy))| gelu_backward_chunk(x, dy, o));
    out
}

multiversion! {
    /// `Φ(x)` from `erf(x/√2)`, and `φ(x) = e^(−x²/2)/√(2π)` from the Gaussian factor that
    /// erf computes for `x/√2` (one exponential per element, not two).
    fn gelu_backward_chunk(x: &[f32], dy: &[f32], out: &mut [f32]) {
        const INV_SQRT_2PI: f32 = 0.398_942_3;
        for ((o, &x), &dy) in out.iter_mut().zip(x).zip(dy) {
            let (erf, gaussian) = math::erf_and_gaussian(x * std::f32::consts::FRAC_1_SQRT_2);
            let cdf = 0.5 * (1.0 + erf);
            let pdf = INV_SQRT_2PI * gaussian;
            *o = dy * (cdf + x * pdf);
        }
    }
}

/// Per-row negative log-likelihood of `targets [n]` under `softmax(logits [n, V])`:
/// `nll = logsumexp(row) − row[target]`. Returns `(nll, logsumexp)`.
pub fn cross_entropy(logits: &[f32], targets: &[i64], v: usize) -> (Vec<f32>, Vec<f32>) {
    let rows: Vec<(f32, f32)> = logits
        .par_chunks(v)
        .zip(targets.par_iter())
        .map(|(row, &t)| {
            let lse = log_sum_exp(row);
            (lse - row[t as usize], lse)
        })
        .collect();
    rows.into_iter().unzip()
}

multiversion! {
    fn log_sum_exp(row: &[f32]) -> f32 {
        let max = simd::max(row);
        max + simd::sum_map(row, |x| math::exp(x - max)).ln()
    }
}

/// The gradient of [`cross_entropy`]: `dlogits = dnll·(softmax(row) − onehot(target))`.
pub fn cross_entropy_backward(
    logits: &[f32],
    targets: &[i64],
    lse: &[f32],
    dnll: &[f32],
    v: usize,
) -> Vec<f32> {
    let mut out = zeros(logits.len());
    out.par_chunks_mut(v)
        .zip(logits.par_chunks(v))
        .enumerate()
        .for_each(|(i, (o, row))| {
            softmax_scaled(row, lse[i], dnll[i], o);
            o[targets[i] as usize] -= dnll[i];
        });
    out
}

multiversion! {
    /// `out = g·exp(row − lse)`.
    fn softmax_scaled(row: &[f32], lse: f32, g: f32, out: &mut [f32]) {
        for (o, &x) in out.iter_mut().zip(row) {
            *o = g * math::exp(x - lse);
        }
    }
}

/// Inverse-CDF sampling from `softmax(logits/temperature)` per row of `logits [n, V]`: the
/// first index whose cumulative probability exceeds `u·total`, with one uniform `u ∈ [0, 1)`
/// per row. With `disallow`, the row's original id gets `−penalty` added after the division
/// by the temperature (the reference's `disallow_correct`).
pub fn sample_inverse_cdf(
    logits: &[f32],
    v: usize,
    temperature: f32,
    disallow: Option<(&[i64], f32)>,
    uniforms: &[f32],
) -> Vec<i64> {
    logits
        .par_chunks(v)
        .enumerate()
        .map(|(i, row)| {
            let mut e: Vec<f32> = row.iter().map(|&x| x / temperature).collect();
            if let Some((ids, penalty)) = disallow {
                e[ids[i] as usize] -= penalty;
            }
            let max = simd::max(&e);
            exp_shifted(&mut e, max);
            // Summed in order, in f64: the same total the search below accumulates to.
            let total: f64 = e.iter().map(|&p| p as f64).sum();
            let target = uniforms[i] as f64 * total;
            let mut acc = 0.0f64;
            for (j, &p) in e.iter().enumerate() {
                acc += p as f64;
                if acc > target {
                    return j as i64;
                }
            }
            // Unreachable in exact arithmetic (`u < 1`); the last index if rounding says so.
            (v - 1) as i64
        })
        .collect()
}

multiversion! {
    /// `x ← exp(x − shift)` in place.
    fn exp_shifted(x: &mut [f32], shift: f32) {
        x.iter_mut().for_each(|x| *x = math::exp(*x - shift));
    }
}

/// The scalars of one reference-Adam update (see [`adam`]).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AdamScalars {
    /// Factor of the global-norm clipping (1 when not clipped).
    pub clip_scale: f64,
    /// First-moment decay.
    pub beta1: f64,
    /// Second-moment decay.
    pub beta2: f64,
    /// Added to `√v`.
    pub epsilon: f64,
    /// Decoupled weight decay of this parameter (0 for biases and LayerNorms).
    pub weight_decay: f64,
    /// Learning rate of this parameter (base rate times its multiplier).
    pub lr: f64,
}

/// One reference-Adam update in one pass (ELECTRA's `AdamWeightDecay`: no bias correction, ε
/// outside the root): `g ← clip·g`, `m ← β1·m + (1−β1)·g`, `v ← β2·v + (1−β2)·g²`,
/// `θ ← θ − lr·(m/(√v + ε) + wd·θ)`, in place on `theta`, `m` and `v`.
pub fn adam(theta: &mut [f32], m: &mut [f32], v: &mut [f32], g: &[f32], k: AdamScalars) {
    const CHUNK: usize = 16_384;
    // The f32 constants the composed form's scalar operations use.
    let (clip, b1, c1, b2, c2) = (
        k.clip_scale as f32,
        k.beta1 as f32,
        (1.0 - k.beta1) as f32,
        k.beta2 as f32,
        (1.0 - k.beta2) as f32,
    );
    let (eps, wd, lr) = (k.epsilon as f32, k.weight_decay as f32, k.lr as f32);
    theta
        .par_chunks_mut(CHUNK)
        .zip(m.par_chunks_mut(CHUNK))
        .zip(v.par_chunks_mut(CHUNK))
        .zip(g.par_chunks(CHUNK))
        .for_each(|(((theta, m), v), g)| {
            adam_chunk(theta, m, v, g, [clip, b1, c1, b2, c2, eps, wd, lr])
        });
}

multiversion! {
    fn adam_chunk(theta: &mut [f32], m: &mut [f32], v: &mut [f32], g: &[f32], k: [f32; 8]) {
        let [clip, b1, c1, b2, c2, eps, wd, lr] = k;
        for (((t, m), v), &g) in theta.iter_mut().zip(m).zip(v).zip(g) {
            let g = g * clip;
            *m = b1 * *m + c1 * g;
            *v = b2 * *v + c2 * (g * g);
            let update = *m / (v.sqrt() + eps) + wd * *t;
            *t -= lr * update;
        }
    }
}
