//! The fast path: [`super::cpu`] kernels on burn's flex backend, and the same kernels as
//! custom operations of `Autodiff<Flex>` with hand-written backward passes (burn 0.21's
//! `Backward` API; `../shared/docs/burn-0.21-speed-notes.md` section 3).
//!
//! Each operation is one node of the autodiff graph instead of the 5-15 nodes of its composed
//! form, reads and writes contiguous buffers only, and runs on rayon's pool.

use std::sync::Arc;

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::NoCheckpointing;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::FlexTensor;
use burn::backend::{Autodiff, Flex};
use burn::prelude::*;
use burn::tensor::ops::FloatTensor;
use burn::tensor::{Distribution, Shape, TensorData, TensorPrimitive};

use super::cpu;
pub use super::keep::keep_multipliers;

/// The autodiff backend the custom operations are written for.
pub type Ad = Autodiff<Flex>;
type AdPrim = FloatTensor<Ad>;

/// `t` as a contiguous flex tensor whose storage is exactly its elements.
pub(super) fn contiguous(t: &FlexTensor) -> FlexTensor {
    t.to_contiguous()
}

/// The elements of a tensor made by [`contiguous`].
pub(super) fn f32s(t: &FlexTensor) -> &[f32] {
    &t.storage::<f32>()[..t.layout().num_elements()]
}

pub(super) fn shape(t: &FlexTensor) -> Shape {
    t.layout().shape().clone()
}

pub(super) fn flex(values: Vec<f32>, shape: Shape) -> FlexTensor {
    FlexTensor::from_data(TensorData::new(values, shape))
}

/// The inner primitive of a float tensor of `Flex`.
pub fn prim_flex<const D: usize>(t: Tensor<Flex, D>) -> FlexTensor {
    t.into_primitive().tensor()
}

/// The primitive of a float tensor of `Autodiff<Flex>`.
pub fn prim_ad<const D: usize>(t: Tensor<Ad, D>) -> AdPrim {
    t.into_primitive().tensor()
}

/// A `Flex` tensor from its primitive.
pub fn from_flex<const D: usize>(p: FlexTensor) -> Tensor<Flex, D> {
    Tensor::from_primitive(TensorPrimitive::Float(p))
}

/// An `Autodiff<Flex>` tensor from its primitive.
pub fn from_ad<const D: usize>(p: AdPrim) -> Tensor<Ad, D> {
    Tensor::from_primitive(TensorPrimitive::Float(p))
}

/// Records `op` with `parents` and runs `forward` (which returns the output and the state the
/// backward needs). Untracked inputs give an untracked output and no backward step.
pub(super) fn record<O, const N: usize>(
    op: O,
    parents: [&AdPrim; N],
    forward: impl FnOnce() -> (FlexTensor, O::State),
) -> AdPrim
where
    O: Backward<Flex, N>,
{
    let nodes = parents.map(|p| p.node.clone());
    match op
        .prepare::<NoCheckpointing>(nodes)
        .compute_bound()
        .stateful()
    {
        OpsKind::Tracked(prep) => {
            let (out, state) = forward();
            prep.finish(state, out)
        }
        OpsKind::UnTracked(prep) => prep.finish(forward().0),
    }
}

/// Registers the gradient expression for `parent` when it requires one (a macro: `NodeRef`
/// is private to burn-autodiff, and the gradient is only computed when needed).
macro_rules! give {
    ($grads:expr, $parent:expr, $grad:expr) => {
        if let Some(node) = $parent {
            let grad = $grad;
            $grads.register::<Flex>(node.id, grad);
        }
    };
}
pub(super) use give;

// ---------------------------------------------------------------------------------------------
// LayerNorm
// ---------------------------------------------------------------------------------------------

#[derive(Debug)]
struct LayerNormOp;

impl Backward<Flex, 3> for LayerNormOp {
    /// The input, γ, and the per-row (mean, rstd).
    type State = (FlexTensor, FlexTensor, Arc<Vec<f32>>);

    fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, _: &mut Checkpointer) {
        let dy = contiguous(&grads.consume::<Flex>(&ops.node));
        let (x, gamma, stats) = ops.state;
        let (dx, dgamma, dbeta) =
            cpu::layer_norm_backward(f32s(&x), f32s(&gamma), &stats, f32s(&dy));
        let [px, pg, pb] = &ops.parents;
        give!(grads, px, flex(dx, shape(&x)));
        give!(grads, pg, flex(dgamma, shape(&gamma)));
        give!(grads, pb, flex(dbeta, shape(&gamma)));
    }
}

/// LayerNorm of `x [.., d]` with `γ`, `β` `[d]` on `Autodiff<Flex>`.
pub fn layer_norm_ad(x: AdPrim, gamma: AdPrim, beta: AdPrim, eps: f64) -> AdPrim {
    let (xf, gf, bf) = (
        contiguous(&x.primitive),
        contiguous(&gamma.primitive),
        contiguous(&beta.primitive),
    );
    record(LayerNormOp, [&x, &gamma, &beta], || {
        let (y, stats) = cpu::layer_norm(f32s(&xf), f32s(&gf), f32s(&bf), eps);
        (
            flex(y, shape(&xf)),
            (xf.clone(), gf.clone(), Arc::new(stats)),
        )
    })
}

// ---------------------------------------------------------------------------------------------
// Attention probabilities: scale, key mask, softmax and dropout in one pass
// ---------------------------------------------------------------------------------------------

/// 63 random bits from flex's seeded stream (the one `Backend::seed` sets), for one dropout
/// mask: three draws of 21 bits (flex's integers may be 32-bit).
pub fn next_seed() -> u64 {
    let device = Default::default();
    let draws = Tensor::<Flex, 1, Int>::random([3], Distribution::Uniform(0.0, 2097152.0), &device)
        .into_data()
        .convert::<i64>();
    draws
        .iter::<i64>()
        .fold(0u64, |acc, v| (acc << 21) ^ (v as u64 & 0x1F_FFFF))
}

#[derive(Debug)]
struct AttentionProbsOp;

impl Backward<Flex, 1> for AttentionProbsOp {
    /// The probabilities before dropout, the dropout multipliers, the scale.
    type State = (Arc<Vec<f32>>, Option<Arc<Vec<f32>>>, f32, Shape);

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let dout = contiguous(&grads.consume::<Flex>(&ops.node));
        let (p, keep, scale, shape) = ops.state;
        let s_k = shape.as_slice()[shape.num_dims() - 1];
        let [parent] = &ops.parents;
        give!(grads, parent, {
            let ds = cpu::attention_probs_backward(
                &p,
                keep.as_deref().map(|k| k.as_slice()),
                f32s(&dout),
                s_k,
                scale,
            );
            flex(ds, shape)
        });
    }
}

/// Attention probabilities on `Autodiff<Flex>`: `scores [b, h, s, s]`, additive key mask
/// `mask [b, s]` (a constant), dropout `prob` (0 = none).
pub fn attention_probs_ad(scores: AdPrim, mask: FlexTensor, scale: f32, prob: f64) -> AdPrim {
    let sf = contiguous(&scores.primitive);
    let mask = contiguous(&mask);
    record(AttentionProbsOp, [&scores], || {
        let shape = shape(&sf);
        let s_k = shape.as_slice()[shape.num_dims() - 1];
        let keep = (prob > 0.0)
            .then(|| Arc::new(keep_multipliers(shape.num_elements(), prob, next_seed())));
        let (out, p) = cpu::attention_probs(
            f32s(&sf),
            f32s(&mask),
            s_k,
            scale,
            keep.as_deref().map(|k| k.as_slice()),
        );
        (flex(out, shape.clone()), (Arc::new(p), keep, scale, shape))
    })
}

/// Attention probabilities on `Flex` (inference: no dropout).
pub fn attention_probs_flex(scores: FlexTensor, mask: FlexTensor, scale: f32) -> FlexTensor {
    let (sf, mask) = (contiguous(&scores), contiguous(&mask));
    let shape = shape(&sf);
    let s_k = shape.as_slice()[shape.num_dims() - 1];
    let (out, _) = cpu::attention_probs(f32s(&sf), f32s(&mask), s_k, scale, None);
    flex(out, shape)
}

// ---------------------------------------------------------------------------------------------
// Dropout
// ---------------------------------------------------------------------------------------------

#[derive(Debug)]
struct DropoutOp;

impl Backward<Flex, 1> for DropoutOp {
    type State = Arc<Vec<f32>>;

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let dy = contiguous(&grads.consume::<Flex>(&ops.node));
        let [parent] = &ops.parents;
        give!(grads, parent, {
            flex(cpu::scale_by(f32s(&dy), &ops.state), shape(&dy))
        });
    }
}

/// Dropout with probability `prob` on `Autodiff<Flex>` (one multiplication by a host mask that
/// carries the `1/(1 − prob)` scale).
pub fn dropout_ad(x: AdPrim, prob: f64) -> AdPrim {
    let xf = contiguous(&x.primitive);
    record(DropoutOp, [&x], || {
        let keep = Arc::new(keep_multipliers(
            xf.layout().num_elements(),
            prob,
            next_seed(),
        ));
        (flex(cpu::scale_by(f32s(&xf), &keep), shape(&xf)), keep)
    })
}

// ---------------------------------------------------------------------------------------------
// Head split and merge
// ---------------------------------------------------------------------------------------------

#[derive(Debug)]
struct PermuteHeadsOp;

impl Backward<Flex, 1> for PermuteHeadsOp {
    /// `(b, s, heads, merge, input shape)` of the forward.
    type State = (usize, usize, usize, bool, Shape);

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let dy = contiguous(&grads.consume::<Flex>(&ops.node));
        let (b, s, heads, merge, input_shape) = ops.state;
        let [parent] = &ops.parents;
        give!(grads, parent, {
            flex(
                cpu::permute_heads(f32s(&dy), b, s, heads, !merge),
                input_shape,
            )
        });
    }
}

/// `[b, s, H]` → `[b, heads, s, H/heads]` (`merge = false`) or back (`merge = true`, input
/// `[b, heads, s, d]`), as a contiguous copy.
pub fn permute_heads_flex(x: FlexTensor, heads: usize, merge: bool) -> FlexTensor {
    let xf = contiguous(&x);
    let dims = shape(&xf).to_vec();
    let (b, s, out_shape) = if merge {
        let (b, h, s, d) = (dims[0], dims[1], dims[2], dims[3]);
        (b, s, Shape::new([b, s, h * d]))
    } else {
        let (b, s, hd) = (dims[0], dims[1], dims[2]);
        (b, s, Shape::new([b, heads, s, hd / heads]))
    };
    flex(cpu::permute_heads(f32s(&xf), b, s, heads, merge), out_shape)
}

/// [`permute_heads_flex`] on `Autodiff<Flex>`.
pub fn permute_heads_ad(x: AdPrim, heads: usize, merge: bool) -> AdPrim {
    let xf = contiguous(&x.primitive);
    let dims = shape(&xf).to_vec();
    let (b, s) = if merge {
        (dims[0], dims[2])
    } else {
        (dims[0], dims[1])
    };
    record(PermuteHeadsOp, [&x], || {
        let out = permute_heads_flex(xf.clone(), heads, merge);
        (out, (b, s, heads, merge, shape(&xf)))
    })
}

// ---------------------------------------------------------------------------------------------
// GELU
// ---------------------------------------------------------------------------------------------

#[derive(Debug)]
struct GeluOp;

impl Backward<Flex, 1> for GeluOp {
    type State = FlexTensor;

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let dy = contiguous(&grads.consume::<Flex>(&ops.node));
        let x = ops.state;
        let [parent] = &ops.parents;
        give!(grads, parent, {
            flex(cpu::gelu_backward(f32s(&x), f32s(&dy)), shape(&x))
        });
    }
}

/// The exact GELU on `Flex`.
pub fn gelu_flex(x: FlexTensor) -> FlexTensor {
    let xf = contiguous(&x);
    flex(cpu::gelu(f32s(&xf)), shape(&xf))
}

/// The exact GELU on `Autodiff<Flex>`.
pub fn gelu_ad(x: AdPrim) -> AdPrim {
    let xf = contiguous(&x.primitive);
    record(GeluOp, [&x], || (gelu_flex(xf.clone()), xf.clone()))
}

// ---------------------------------------------------------------------------------------------
// Cross-entropy per row
// ---------------------------------------------------------------------------------------------

#[derive(Debug)]
struct CrossEntropyOp;

impl Backward<Flex, 1> for CrossEntropyOp {
    /// The logits, the targets, the per-row logsumexp.
    type State = (FlexTensor, Arc<Vec<i64>>, Arc<Vec<f32>>);

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let dnll = contiguous(&grads.consume::<Flex>(&ops.node));
        let (logits, targets, lse) = ops.state;
        let [parent] = &ops.parents;
        give!(grads, parent, {
            let v = shape(&logits).as_slice()[1];
            let d = cpu::cross_entropy_backward(f32s(&logits), &targets, &lse, f32s(&dnll), v);
            flex(d, shape(&logits))
        });
    }
}

/// Per-row `−log softmax(logits [n, V])[target]` → `[n]` on `Autodiff<Flex>`.
pub fn cross_entropy_ad(logits: AdPrim, targets: Vec<i64>) -> AdPrim {
    let lf = contiguous(&logits.primitive);
    record(CrossEntropyOp, [&logits], || {
        let l = shape(&lf);
        let (n, v) = (l.as_slice()[0], l.as_slice()[1]);
        let (nll, lse) = cpu::cross_entropy(f32s(&lf), &targets, v);
        (
            flex(nll, Shape::new([n])),
            (lf.clone(), Arc::new(targets), Arc::new(lse)),
        )
    })
}

/// [`cross_entropy_ad`] on `Flex`.
pub fn cross_entropy_flex(logits: FlexTensor, targets: &[i64]) -> FlexTensor {
    let lf = contiguous(&logits);
    let l = shape(&lf);
    let (n, v) = (l.as_slice()[0], l.as_slice()[1]);
    flex(cpu::cross_entropy(f32s(&lf), targets, v).0, Shape::new([n]))
}

/// Inverse-CDF samples of `logits [n, V]` (see [`cpu::sample_inverse_cdf`]).
pub fn sample_flex(
    logits: FlexTensor,
    temperature: f32,
    disallow: Option<(&[i64], f32)>,
    uniforms: &[f32],
) -> Vec<i64> {
    let lf = contiguous(&logits);
    let v = shape(&lf).as_slice()[1];
    cpu::sample_inverse_cdf(f32s(&lf), v, temperature, disallow, uniforms)
}

/// `t` as a contiguous tensor this function alone owns, for in-place updates: the tensor
/// itself when it is (the optimizer's moments and, usually, the parameter), a copy otherwise.
fn owned(t: FlexTensor) -> FlexTensor {
    let mut c = t.to_contiguous();
    drop(t);
    if c.try_storage_mut::<f32>().is_some() {
        c
    } else {
        let s = shape(&c);
        flex(f32s(&c).to_vec(), s)
    }
}

/// One reference-Adam update on flex tensors (see [`cpu::adam`]), in place where the buffers
/// are not shared.
pub fn adam_flex(
    theta: FlexTensor,
    m: FlexTensor,
    v: FlexTensor,
    g: FlexTensor,
    k: cpu::AdamScalars,
) -> (FlexTensor, FlexTensor, FlexTensor) {
    let (mut theta, mut m, mut v) = (owned(theta), owned(m), owned(v));
    let g = contiguous(&g);
    let n = g.layout().num_elements();
    cpu::adam(
        &mut theta.storage_mut::<f32>()[..n],
        &mut m.storage_mut::<f32>()[..n],
        &mut v.storage_mut::<f32>()[..n],
        f32s(&g),
        k,
    );
    (theta, m, v)
}
