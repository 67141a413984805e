//! Multi-head self-attention in one operation, on contiguous `f32` rows: the CPU kernel behind
//! [`super::attention()`].
//!
//! Input is the fused projection `qkv [n, 3H]` (`n = batch·seq` tokens; columns `0..H` the
//! queries, `H..2H` the keys, `2H..3H` the values, head `h` owning columns `h·d..(h+1)·d` of
//! each), the additive key mask `[batch, seq]` (0 or −10000) and the dropout mask of the
//! probabilities. Output is the context `[n, H]`, heads already merged. One rayon task per
//! sequence runs its heads one after another, each as:
//!
//! 1. `S = Q_h·K_hᵀ` (`[seq, seq]`; the matrix product reads `Q_h` and `K_h` in place through
//!    their strides, so no head is ever copied out of `qkv`);
//! 2. `P = softmax(S·scale + mask)` row by row, in place ([`super::cpu`]'s arithmetic);
//! 3. `ctx_h = (P·keep)·V_h`, written straight into columns `h·d..(h+1)·d` of the context.
//!
//! Only one head's scores exist at a time per task, unless training needs `P` for the backward
//! pass (then each head's `P` is written into a `[batch, heads, seq, seq]` buffer instead of the
//! task's scratch). The dropout mask is never stored: element `((b·heads + h)·seq + i)·seq + j`
//! of it is made again from its seed ([`Keep`]), the indexing of the composed form's
//! `[batch, heads, seq, seq]` mask, so both draw the same mask.
//!
//! The backward pass, per sequence and head, with `P_d = P·keep`: `dV_h = P_dᵀ·dctx_h`,
//! `dP_d = dctx_h·V_hᵀ`, `dS = scale·P·(dP − Σ_j dP·P)` with `dP = dP_d·keep`, `dQ_h = dS·K_h`,
//! `dK_h = dSᵀ·Q_h`, each written into its columns of `dqkv [n, 3H]`.

use electra_gemm::{MatMut, MatRef, Parallelism, matmul};
use rayon::prelude::*;

use super::cpu;
use super::keep::Keep;
use super::simd::{self, multiversion};

/// The shape of one attention call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Heads {
    /// Sequences.
    pub batch: usize,
    /// Tokens per sequence.
    pub seq: usize,
    /// Attention heads.
    pub heads: usize,
    /// Features per head (`hidden = heads·head_dim`).
    pub head_dim: usize,
}

impl Heads {
    fn hidden(&self) -> usize {
        self.heads * self.head_dim
    }

    /// `Q_h`, `K_h` or `V_h` (`part` 0, 1, 2) of one sequence's rows of `qkv` (`[seq, d]`).
    fn part<'a>(&self, qkv: &'a [f32], part: usize, h: usize) -> MatRef<'a> {
        let (hidden, d) = (self.hidden(), self.head_dim);
        MatRef::new(&qkv[part * hidden + h * d..], self.seq, d, 3 * hidden, 1)
    }

    /// Head `h`'s columns of one sequence's rows of a `[seq, width]` matrix, at `offset`.
    fn columns<'a>(&self, m: &'a mut [f32], width: usize, offset: usize) -> MatMut<'a> {
        MatMut::new(&mut m[offset..], self.seq, self.head_dim, width, 1)
    }

    /// Products inside a task: on the task's thread when the tasks already occupy the pool.
    fn parallelism(&self) -> Parallelism {
        if self.batch >= rayon::current_num_threads() {
            Parallelism::Serial
        } else {
            Parallelism::Pool
        }
    }
}

/// Per-task scratch: one `[seq, seq]` matrix each.
fn square(shape: &Heads) -> Vec<f32> {
    vec![0.0f32; shape.seq * shape.seq]
}

/// The context `[n, H]` of `qkv [n, 3H]` under the additive key mask `[batch, seq]`, the scale
/// of the scores and the dropout mask of the probabilities. With `save`, also the probabilities
/// before dropout, `[batch, heads, seq, seq]` (what the backward needs).
pub fn attention(
    qkv: &[f32],
    mask: &[f32],
    shape: Heads,
    scale: f32,
    keep: Option<Keep>,
    save: bool,
) -> (Vec<f32>, Option<Vec<f32>>) {
    let (s, hidden) = (shape.seq, shape.hidden());
    let mut ctx = cpu::zeros(shape.batch * s * hidden);
    let per_batch = shape.heads * s * s;
    let mut probs = save.then(|| cpu::zeros(shape.batch * per_batch));
    let tasks = ctx
        .par_chunks_mut(s * hidden)
        .zip(qkv.par_chunks(s * 3 * hidden))
        .zip(mask.par_chunks(s))
        .enumerate();
    match &mut probs {
        Some(probs) => tasks.zip(probs.par_chunks_mut(per_batch)).for_each(
            |((b, ((ctx, qkv), mask)), probs)| {
                sequence_forward(&shape, b, qkv, mask, scale, keep, Some(probs), ctx)
            },
        ),
        None => tasks.for_each(|(b, ((ctx, qkv), mask))| {
            sequence_forward(&shape, b, qkv, mask, scale, keep, None, ctx)
        }),
    }
    (ctx, probs)
}

/// [`attention`] for sequence `b`: its rows of `qkv` and `ctx`, its key mask, and its heads'
/// probabilities when they are saved.
#[allow(clippy::too_many_arguments)]
fn sequence_forward(
    shape: &Heads,
    b: usize,
    qkv: &[f32],
    mask: &[f32],
    scale: f32,
    keep: Option<Keep>,
    mut probs: Option<&mut [f32]>,
    ctx: &mut [f32],
) {
    let (s, hidden, d) = (shape.seq, shape.hidden(), shape.head_dim);
    let par = shape.parallelism();
    let (mut scratch, mut dropped) = (square(shape), keep.map(|_| square(shape)));
    for h in 0..shape.heads {
        let p: &mut [f32] = match probs.as_deref_mut() {
            Some(probs) => &mut probs[h * s * s..][..s * s],
            None => &mut scratch,
        };
        let k_t = shape.part(qkv, 1, h).t();
        matmul(
            MatMut::row_major(p, s, s),
            shape.part(qkv, 0, h),
            k_t,
            false,
            par,
        );
        softmax_rows_in_place(p, mask, scale);
        let p: &[f32] = match (keep, dropped.as_deref_mut()) {
            (Some(keep), Some(pd)) => {
                keep.fill((b * shape.heads + h) * s * s, pd);
                cpu::scale_in_place(pd, p);
                pd
            }
            _ => p,
        };
        let out = shape.columns(ctx, hidden, h * d);
        matmul(
            out,
            MatRef::row_major(p, s, s),
            shape.part(qkv, 2, h),
            false,
            par,
        );
    }
}

multiversion! {
    /// `p ← softmax(p·scale + mask)` for every row of `p` (`mask` one value per key), with the
    /// arithmetic of [`cpu::attention_probs`].
    fn softmax_rows_in_place(p: &mut [f32], mask: &[f32], scale: f32) {
        for p in p.chunks_mut(mask.len()) {
            for (p, &m) in p.iter_mut().zip(mask) {
                *p = *p * scale + m;
            }
            let max = simd::max(p);
            p.iter_mut().for_each(|p| *p = super::math::exp(*p - max));
            let inv = 1.0 / simd::sum(p);
            p.iter_mut().for_each(|p| *p *= inv);
        }
    }
}

/// The gradient of [`attention`]'s output with respect to `qkv`, for the upstream gradient
/// `dctx [n, H]`, from the saved probabilities and the same dropout mask → `dqkv [n, 3H]`.
pub fn attention_backward(
    qkv: &[f32],
    probs: &[f32],
    dctx: &[f32],
    shape: Heads,
    scale: f32,
    keep: Option<Keep>,
) -> Vec<f32> {
    let (s, hidden) = (shape.seq, shape.hidden());
    let mut dqkv = cpu::zeros(qkv.len());
    dqkv.par_chunks_mut(s * 3 * hidden)
        .zip(qkv.par_chunks(s * 3 * hidden))
        .zip(dctx.par_chunks(s * hidden))
        .zip(probs.par_chunks(shape.heads * s * s))
        .enumerate()
        .for_each(|(b, (((dqkv, qkv), dctx), probs))| {
            sequence_backward(&shape, b, qkv, probs, dctx, scale, keep, dqkv)
        });
    dqkv
}

/// [`attention_backward`] for sequence `b`.
#[allow(clippy::too_many_arguments)]
fn sequence_backward(
    shape: &Heads,
    b: usize,
    qkv: &[f32],
    probs: &[f32],
    dctx: &[f32],
    scale: f32,
    keep: Option<Keep>,
    dqkv: &mut [f32],
) {
    let (s, hidden, d) = (shape.seq, shape.hidden(), shape.head_dim);
    let par = shape.parallelism();
    let (mut dp, mut ds) = (square(shape), square(shape));
    let (mut mask, mut dropped) = (keep.map(|_| square(shape)), keep.map(|_| square(shape)));
    for h in 0..shape.heads {
        let p = &probs[h * s * s..][..s * s];
        let pd: &[f32] = match (keep, mask.as_deref_mut(), dropped.as_deref_mut()) {
            (Some(keep), Some(mask), Some(pd)) => {
                keep.fill((b * shape.heads + h) * s * s, mask);
                pd.copy_from_slice(mask);
                cpu::scale_in_place(pd, p);
                pd
            }
            _ => p,
        };
        let dctx_h = MatRef::new(&dctx[h * d..], s, d, hidden, 1);
        let dv = shape.columns(dqkv, 3 * hidden, 2 * hidden + h * d);
        matmul(dv, MatRef::row_major(pd, s, s).t(), dctx_h, false, par);
        let v_t = shape.part(qkv, 2, h).t();
        matmul(MatMut::row_major(&mut dp, s, s), dctx_h, v_t, false, par);
        cpu::softmax_backward_rows(p, mask.as_deref(), &dp, s, scale, &mut ds);
        let ds_m = MatRef::row_major(&ds, s, s);
        let dq = shape.columns(dqkv, 3 * hidden, h * d);
        matmul(dq, ds_m, shape.part(qkv, 1, h), false, par);
        let dk = shape.columns(dqkv, 3 * hidden, hidden + h * d);
        matmul(dk, ds_m.t(), shape.part(qkv, 0, h), false, par);
    }
}
