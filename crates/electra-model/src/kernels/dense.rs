//! Dense layers fused with what follows them, on contiguous `f32` rows: the CPU kernels behind
//! [`super::dense()`], [`super::dense_gelu`] and [`super::dense_residual_layer_norm`].
//!
//! A transformer layer has three dense layers whose output goes straight into element-wise work:
//! the query/key/value projection (bias), the feed-forward input (bias, GELU) and the attention
//! and feed-forward outputs (bias, dropout, residual, LayerNorm). Composed from tensor
//! operations each is a matrix product into a fresh buffer followed by one to four passes over
//! the output, each with its own buffer and autodiff node. Here each is one matrix product
//! ([`electra_gemm`], into a buffer of our own) followed by one row-parallel pass that applies
//! everything else while the rows are in cache; the backward passes are the exact derivatives,
//! computed the same way. The arithmetic per element is the composed form's, in the same order
//! (`(x·W + b)·keep + r`, then the LayerNorm of [`super::cpu`]), so the results agree with it
//! to rounding of the matrix products.
//!
//! Shapes: `n` rows (tokens), `x [n, d_in]`, `W [d_in, d_out]` (or a `[d_out, d_in]` table read
//! transposed, the tied generator output layer), `b [d_out]`.

use electra_gemm::{MatMut, MatRef, Parallelism, matmul};
use rayon::prelude::*;

use super::cpu::{self, rows_per_task};
use super::keep::Keep;
use super::math;
use super::simd::multiversion;

/// A weight matrix as the kernels read it.
#[derive(Clone, Copy, Debug)]
pub struct Weight<'a> {
    /// The elements, row-major.
    pub data: &'a [f32],
    /// Input features.
    pub d_in: usize,
    /// Output features.
    pub d_out: usize,
    /// `false`: `data` is `[d_in, d_out]` (burn's `Linear`); `true`: `data` is `[d_out, d_in]`
    /// and is read transposed (an embedding table used as an output layer).
    pub transposed: bool,
}

impl<'a> Weight<'a> {
    /// `W` as a `[d_in, d_out]` view.
    fn view(&self) -> MatRef<'a> {
        if self.transposed {
            MatRef::row_major(self.data, self.d_out, self.d_in).t()
        } else {
            MatRef::row_major(self.data, self.d_in, self.d_out)
        }
    }
}

/// `x [n, d_in] · W` → `[n, d_out]`.
pub fn product(x: &[f32], w: Weight<'_>) -> Vec<f32> {
    let n = x.len() / w.d_in.max(1);
    let mut y = cpu::zeros(n * w.d_out);
    matmul(
        MatMut::row_major(&mut y, n, w.d_out),
        MatRef::row_major(x, n, w.d_in),
        w.view(),
        false,
        Parallelism::for_size(n, w.d_out, w.d_in),
    );
    y
}

/// `dy [n, d_out] · Wᵀ` → `dx [n, d_in]`.
pub fn input_grad(dy: &[f32], w: Weight<'_>) -> Vec<f32> {
    let n = dy.len() / w.d_out.max(1);
    let mut dx = cpu::zeros(n * w.d_in);
    matmul(
        MatMut::row_major(&mut dx, n, w.d_in),
        MatRef::row_major(dy, n, w.d_out),
        w.view().t(),
        false,
        Parallelism::for_size(n, w.d_in, w.d_out),
    );
    dx
}

/// The gradient of `W` for `y = x·W`, in `W`'s own layout: `xᵀ·dy [d_in, d_out]`, or
/// `dyᵀ·x [d_out, d_in]` for a transposed weight.
pub fn weight_grad(x: &[f32], dy: &[f32], w: Weight<'_>) -> Vec<f32> {
    let n = x.len() / w.d_in.max(1);
    let (x, dy) = (
        MatRef::row_major(x, n, w.d_in),
        MatRef::row_major(dy, n, w.d_out),
    );
    let (lhs, rhs, rows, cols) = if w.transposed {
        (dy.t(), x, w.d_out, w.d_in)
    } else {
        (x.t(), dy, w.d_in, w.d_out)
    };
    let mut dw = cpu::zeros(rows * cols);
    matmul(
        MatMut::row_major(&mut dw, rows, cols),
        lhs,
        rhs,
        false,
        Parallelism::for_size(rows, cols, n),
    );
    dw
}

/// Column sums of `dy [n, d]` → `[d]` (a bias gradient), summed by fixed row blocks in order,
/// so the result does not depend on the thread count.
pub fn column_sums(dy: &[f32], d: usize) -> Vec<f32> {
    let block = rows_per_task(d) * d;
    let partials: Vec<Vec<f32>> = dy.par_chunks(block).map(|rows| sum_rows(rows, d)).collect();
    let mut total = vec![0.0f32; d];
    for p in partials {
        total.iter_mut().zip(p).for_each(|(t, v)| *t += v);
    }
    total
}

multiversion! {
    fn sum_rows(rows: &[f32], d: usize) -> Vec<f32> {
        let mut acc = vec![0.0f32; d];
        for row in rows.chunks(d) {
            acc.iter_mut().zip(row).for_each(|(a, &v)| *a += v);
        }
        acc
    }
}

/// `x·W + b` → `[n, d_out]`.
pub fn dense(x: &[f32], w: Weight<'_>, b: &[f32]) -> Vec<f32> {
    let mut y = product(x, w);
    let block = rows_per_task(w.d_out) * w.d_out;
    y.par_chunks_mut(block)
        .for_each(|rows| add_bias_rows(rows, b));
    y
}

multiversion! {
    fn add_bias_rows(rows: &mut [f32], b: &[f32]) {
        for row in rows.chunks_mut(b.len()) {
            row.iter_mut().zip(b).for_each(|(y, &b)| *y += b);
        }
    }
}

/// `gelu(x·W + b)` (the exact GELU). Returns `(y, u)` with `u = x·W + b`, which the backward
/// needs.
pub fn dense_gelu(x: &[f32], w: Weight<'_>, b: &[f32]) -> (Vec<f32>, Vec<f32>) {
    let mut u = product(x, w);
    let mut y = cpu::zeros(u.len());
    let block = rows_per_task(w.d_out) * w.d_out;
    u.par_chunks_mut(block)
        .zip(y.par_chunks_mut(block))
        .for_each(|(u, y)| bias_gelu_rows(u, b, y));
    (y, u)
}

multiversion! {
    /// `u ← u + b`, `y = ½u(1 + erf(u/√2))`, row by row.
    fn bias_gelu_rows(u: &mut [f32], b: &[f32], y: &mut [f32]) {
        for (u, y) in u.chunks_mut(b.len()).zip(y.chunks_mut(b.len())) {
            for ((u, y), &b) in u.iter_mut().zip(y.iter_mut()).zip(b) {
                *u += b;
                *y = 0.5 * *u * (1.0 + math::erf(*u * std::f32::consts::FRAC_1_SQRT_2));
            }
        }
    }
}

/// [`dense_gelu`] for inference: `gelu(x·W + b)` computed in the product's own buffer (no
/// pre-activation kept, no second buffer to allocate and zero).
pub fn dense_gelu_inference(x: &[f32], w: Weight<'_>, b: &[f32]) -> Vec<f32> {
    let mut y = product(x, w);
    let block = rows_per_task(w.d_out) * w.d_out;
    y.par_chunks_mut(block)
        .for_each(|y| bias_gelu_in_place(y, b));
    y
}

multiversion! {
    /// `y ← gelu(y + b)`, row by row, with the arithmetic of [`bias_gelu_rows`].
    fn bias_gelu_in_place(y: &mut [f32], b: &[f32]) {
        for y in y.chunks_mut(b.len()) {
            for (y, &b) in y.iter_mut().zip(b) {
                let u = *y + b;
                *y = 0.5 * u * (1.0 + math::erf(u * std::f32::consts::FRAC_1_SQRT_2));
            }
        }
    }
}

/// [`dense_residual_layer_norm`] for inference (no dropout): the LayerNorm written over the
/// product's own buffer, a row at a time, with the same arithmetic.
pub fn dense_residual_layer_norm_inference(
    x: &[f32],
    w: Weight<'_>,
    b: &[f32],
    residual: &[f32],
    norm: (&[f32], &[f32], f64),
) -> Vec<f32> {
    let (gamma, beta, eps) = norm;
    let d = w.d_out;
    let mut v = product(x, w);
    let rows = rows_per_task(d);
    v.par_chunks_mut(rows * d)
        .zip(residual.par_chunks(rows * d))
        .for_each(|(v, r)| {
            bias_dropout_residual_rows(v, b, None, r);
            let (mut row, mut stats) = (vec![0.0f32; d], [0.0f32; 2]);
            for v in v.chunks_mut(d) {
                row.copy_from_slice(v);
                cpu::layer_norm_rows(&row, gamma, beta, eps, v, &mut stats);
            }
        });
    v
}

/// What [`dense_residual_layer_norm`] keeps for its backward.
#[derive(Debug)]
pub struct ResidualNorm {
    /// The LayerNorm's input `v = (x·W + b)·keep + residual`, `[n, d]`.
    pub v: Vec<f32>,
    /// Per-row `(mean, rstd)` of `v`, `[n, 2]`.
    pub stats: Vec<f32>,
}

/// `LayerNorm((x·W + b)·keep + residual)` with `γ`, `β` (`keep`: the dropout mask of the
/// `[n, d_out]` product, `None` without dropout). Returns the output and what the backward
/// needs.
pub fn dense_residual_layer_norm(
    x: &[f32],
    w: Weight<'_>,
    b: &[f32],
    residual: &[f32],
    norm: (&[f32], &[f32], f64),
    keep: Option<Keep>,
) -> (Vec<f32>, ResidualNorm) {
    let (gamma, beta, eps) = norm;
    let d = w.d_out;
    let mut v = product(x, w);
    let mut y = cpu::zeros(v.len());
    let mut stats = vec![0.0f32; v.len() / d.max(1) * 2];
    let rows = rows_per_task(d);
    v.par_chunks_mut(rows * d)
        .zip(y.par_chunks_mut(rows * d))
        .zip(stats.par_chunks_mut(rows * 2))
        .zip(residual.par_chunks(rows * d))
        .enumerate()
        .for_each(|(task, (((v, y), stats), r))| {
            match keep {
                Some(keep) => {
                    let mut k = vec![0.0f32; v.len()];
                    keep.fill(task * rows * d, &mut k);
                    bias_dropout_residual_rows(v, b, Some(&k), r);
                }
                None => bias_dropout_residual_rows(v, b, None, r),
            }
            cpu::layer_norm_rows(v, gamma, beta, eps, y, stats);
        });
    (y, ResidualNorm { v, stats })
}

multiversion! {
    /// `v ← (v + b)·keep + r`, row by row (`keep` absent: `v + b + r`).
    fn bias_dropout_residual_rows(v: &mut [f32], b: &[f32], keep: Option<&[f32]>, r: &[f32]) {
        match keep {
            Some(keep) => {
                for ((v, k), r) in v.chunks_mut(b.len()).zip(keep.chunks(b.len())).zip(r.chunks(b.len())) {
                    for (((v, &b), &k), &r) in v.iter_mut().zip(b).zip(k).zip(r) {
                        *v = (*v + b) * k + r;
                    }
                }
            }
            None => {
                for (v, r) in v.chunks_mut(b.len()).zip(r.chunks(b.len())) {
                    for ((v, &b), &r) in v.iter_mut().zip(b).zip(r) {
                        *v = (*v + b) + r;
                    }
                }
            }
        }
    }
}

/// The backward of the element-wise part of [`dense_residual_layer_norm`] for the upstream
/// gradient `dy [n, d]`: `(dv, du, dγ, dβ)`, where `dv` is the residual's gradient and `du`
/// that of the product plus bias (`dv·keep`; `None` without dropout, when it equals `dv`).
pub fn residual_layer_norm_backward(
    saved: &ResidualNorm,
    gamma: &[f32],
    dy: &[f32],
    keep: Option<Keep>,
) -> (Vec<f32>, Option<Vec<f32>>, Vec<f32>, Vec<f32>) {
    let (dv, dgamma, dbeta) = cpu::layer_norm_backward(&saved.v, gamma, &saved.stats, dy);
    let du = keep.map(|keep| {
        let mut du = keep.multipliers(dv.len());
        let block = rows_per_task(gamma.len()) * gamma.len();
        du.par_chunks_mut(block)
            .zip(dv.par_chunks(block))
            .for_each(|(du, dv)| cpu::scale_in_place(du, dv));
        du
    });
    (dv, du, dgamma, dbeta)
}
