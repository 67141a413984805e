//! The fused dense layers ([`super::dense()`]) and attention ([`super::attention()`]) kernels on
//! burn's flex backend, and as custom operations of `Autodiff<Flex>` with hand-written backward
//! passes (the pattern of [`super::flex`]).
//!
//! Each operation saves what its backward reads and nothing else: the input and weight of the
//! matrix product (which autodiff holds anyway), the GELU's pre-activation, the LayerNorm's input
//! and statistics, the attention probabilities. Dropout masks are not saved; each is made
//! again from its seed ([`Keep`]).

use std::sync::Arc;

use burn::backend::Flex;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops};
use burn::backend::flex::FlexTensor;
use burn::tensor::Shape;
use burn::tensor::ops::FloatTensor;

use super::attention::{self as cpu_attention, Heads};
use super::cpu;
use super::dense::{self, ResidualNorm, Weight};
use super::flex::{Ad, contiguous, f32s, flex, give, record, shape};
use super::keep::Keep;

type AdPrim = FloatTensor<Ad>;

/// A contiguous weight tensor and how to read it.
#[derive(Clone, Debug)]
struct SavedWeight {
    w: FlexTensor,
    transposed: bool,
}

impl SavedWeight {
    fn new(w: &FlexTensor, transposed: bool) -> Self {
        Self {
            w: contiguous(w),
            transposed,
        }
    }

    fn weight(&self) -> Weight<'_> {
        let dims = shape(&self.w);
        let (rows, cols) = (dims.as_slice()[0], dims.as_slice()[1]);
        let (d_in, d_out) = if self.transposed {
            (cols, rows)
        } else {
            (rows, cols)
        };
        Weight {
            data: f32s(&self.w),
            d_in,
            d_out,
            transposed: self.transposed,
        }
    }
}

/// The rows of `x` (any rank; the last dimension is `d_in`) and the output shape `[.., d_out]`.
fn rows_shape(x: &FlexTensor, d_out: usize) -> Shape {
    let mut dims = shape(x).to_vec();
    let last = dims.len() - 1;
    dims[last] = d_out;
    Shape::from(dims)
}

/// Registers the gradients of `y = x·W + b` for `du`, the gradient of `y`: `dx`, `dW`, `db`
/// (a macro for the reason [`give!`] is one: the parents' node type is private to burn).
macro_rules! give_product {
    ($grads:expr, [$px:expr, $pw:expr, $pb:expr], $x:expr, $weight:expr, $du:expr) => {{
        let (x, weight, du): (&FlexTensor, &SavedWeight, &[f32]) = ($x, $weight, $du);
        let w = weight.weight();
        give!($grads, $px, flex(dense::input_grad(du, w), shape(x)));
        give!(
            $grads,
            $pw,
            flex(dense::weight_grad(f32s(x), du, w), shape(&weight.w))
        );
        give!(
            $grads,
            $pb,
            flex(dense::column_sums(du, w.d_out), Shape::new([w.d_out]))
        );
    }};
}

// ---------------------------------------------------------------------------------------------
// Dense: x·W + b
// ---------------------------------------------------------------------------------------------

#[derive(Debug)]
struct DenseOp;

impl Backward<Flex, 3> for DenseOp {
    /// The input and the weight.
    type State = (FlexTensor, SavedWeight);

    fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, _: &mut Checkpointer) {
        let dy = contiguous(&grads.consume::<Flex>(&ops.node));
        let (x, weight) = ops.state;
        let [px, pw, pb] = &ops.parents;
        give_product!(grads, [px, pw, pb], &x, &weight, f32s(&dy));
    }
}

/// `x [.., d_in] · W + b` on flex (`transposed`: `W` is `[d_out, d_in]`).
pub fn dense_flex(x: FlexTensor, w: FlexTensor, b: FlexTensor, transposed: bool) -> FlexTensor {
    let (x, weight, b) = (
        contiguous(&x),
        SavedWeight::new(&w, transposed),
        contiguous(&b),
    );
    let w = weight.weight();
    flex(dense::dense(f32s(&x), w, f32s(&b)), rows_shape(&x, w.d_out))
}

/// [`dense_flex`] on `Autodiff<Flex>`.
pub fn dense_ad(x: AdPrim, w: AdPrim, b: AdPrim, transposed: bool) -> AdPrim {
    let (xf, weight, bf) = (
        contiguous(&x.primitive),
        SavedWeight::new(&w.primitive, transposed),
        contiguous(&b.primitive),
    );
    record(DenseOp, [&x, &w, &b], || {
        let wv = weight.weight();
        let y = dense::dense(f32s(&xf), wv, f32s(&bf));
        let out = flex(y, rows_shape(&xf, wv.d_out));
        (out, (xf.clone(), weight.clone()))
    })
}

// ---------------------------------------------------------------------------------------------
// Dense + GELU
// ---------------------------------------------------------------------------------------------

#[derive(Debug)]
struct DenseGeluOp;

impl Backward<Flex, 3> for DenseGeluOp {
    /// The input, the weight, the pre-activation `u = x·W + b`.
    type State = (FlexTensor, SavedWeight, Arc<Vec<f32>>);

    fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, _: &mut Checkpointer) {
        let dy = contiguous(&grads.consume::<Flex>(&ops.node));
        let (x, weight, u) = ops.state;
        let du = cpu::gelu_backward(&u, f32s(&dy));
        let [px, pw, pb] = &ops.parents;
        give_product!(grads, [px, pw, pb], &x, &weight, &du);
    }
}

/// `gelu(x·W + b)` on flex.
pub fn dense_gelu_flex(x: FlexTensor, w: FlexTensor, b: FlexTensor) -> FlexTensor {
    let (x, weight, b) = (contiguous(&x), SavedWeight::new(&w, false), contiguous(&b));
    let w = weight.weight();
    let y = dense::dense_gelu_inference(f32s(&x), w, f32s(&b));
    flex(y, rows_shape(&x, w.d_out))
}

/// [`dense_gelu_flex`] on `Autodiff<Flex>`.
pub fn dense_gelu_ad(x: AdPrim, w: AdPrim, b: AdPrim) -> AdPrim {
    let (xf, weight, bf) = (
        contiguous(&x.primitive),
        SavedWeight::new(&w.primitive, false),
        contiguous(&b.primitive),
    );
    record(DenseGeluOp, [&x, &w, &b], || {
        let wv = weight.weight();
        let (y, u) = dense::dense_gelu(f32s(&xf), wv, f32s(&bf));
        let out = flex(y, rows_shape(&xf, wv.d_out));
        (out, (xf.clone(), weight.clone(), Arc::new(u)))
    })
}

// ---------------------------------------------------------------------------------------------
// Dense + dropout + residual + LayerNorm
// ---------------------------------------------------------------------------------------------

/// What [`dense_residual_layer_norm_ad`] keeps.
#[derive(Debug)]
struct ResidualState {
    x: FlexTensor,
    weight: SavedWeight,
    gamma: FlexTensor,
    saved: ResidualNorm,
    keep: Option<Keep>,
}

#[derive(Debug)]
struct DenseResidualNormOp;

impl Backward<Flex, 6> for DenseResidualNormOp {
    type State = Arc<ResidualState>;

    fn backward(self, ops: Ops<Self::State, 6>, grads: &mut Gradients, _: &mut Checkpointer) {
        let dy = contiguous(&grads.consume::<Flex>(&ops.node));
        let st = ops.state;
        let (dv, du, dgamma, dbeta) =
            dense::residual_layer_norm_backward(&st.saved, f32s(&st.gamma), f32s(&dy), st.keep);
        let [px, pw, pb, pr, pg, pbeta] = &ops.parents;
        give_product!(
            grads,
            [px, pw, pb],
            &st.x,
            &st.weight,
            du.as_deref().unwrap_or(&dv)
        );
        give!(grads, pg, flex(dgamma, shape(&st.gamma)));
        give!(grads, pbeta, flex(dbeta, shape(&st.gamma)));
        give!(grads, pr, flex(dv, shape(&dy)));
    }
}

/// The LayerNorm's parameters and epsilon.
#[derive(Clone, Debug)]
pub struct Norm<T> {
    /// `γ [d]`.
    pub gamma: T,
    /// `β [d]`.
    pub beta: T,
    /// Added to the variance.
    pub eps: f64,
}

/// `LayerNorm(x·W + b + residual)` on flex (inference: no dropout).
pub fn dense_residual_layer_norm_flex(
    x: FlexTensor,
    w: FlexTensor,
    b: FlexTensor,
    residual: FlexTensor,
    norm: Norm<FlexTensor>,
) -> FlexTensor {
    let (x, weight, b, r) = (
        contiguous(&x),
        SavedWeight::new(&w, false),
        contiguous(&b),
        contiguous(&residual),
    );
    let (g, beta) = (contiguous(&norm.gamma), contiguous(&norm.beta));
    let w = weight.weight();
    let y = dense::dense_residual_layer_norm_inference(
        f32s(&x),
        w,
        f32s(&b),
        f32s(&r),
        (f32s(&g), f32s(&beta), norm.eps),
    );
    flex(y, shape(&r))
}

/// `LayerNorm((x·W + b)·keep + residual)` on `Autodiff<Flex>` (`keep`: the dropout mask, `None`
/// without dropout).
pub fn dense_residual_layer_norm_ad(
    x: AdPrim,
    w: AdPrim,
    b: AdPrim,
    residual: AdPrim,
    norm: Norm<AdPrim>,
    keep: Option<Keep>,
) -> AdPrim {
    let (xf, weight, bf, rf) = (
        contiguous(&x.primitive),
        SavedWeight::new(&w.primitive, false),
        contiguous(&b.primitive),
        contiguous(&residual.primitive),
    );
    let (gf, betaf) = (
        contiguous(&norm.gamma.primitive),
        contiguous(&norm.beta.primitive),
    );
    let parents = [&x, &w, &b, &residual, &norm.gamma, &norm.beta];
    record(DenseResidualNormOp, parents, || {
        let (y, saved) = dense::dense_residual_layer_norm(
            f32s(&xf),
            weight.weight(),
            f32s(&bf),
            f32s(&rf),
            (f32s(&gf), f32s(&betaf), norm.eps),
            keep,
        );
        let state = ResidualState {
            x: xf.clone(),
            weight: weight.clone(),
            gamma: gf.clone(),
            saved,
            keep,
        };
        (flex(y, shape(&rf)), Arc::new(state))
    })
}

// ---------------------------------------------------------------------------------------------
// Attention
// ---------------------------------------------------------------------------------------------

/// What [`attention_ad`] keeps.
#[derive(Debug)]
struct AttentionState {
    qkv: FlexTensor,
    probs: Vec<f32>,
    heads: Heads,
    scale: f32,
    keep: Option<Keep>,
}

#[derive(Debug)]
struct AttentionOp;

impl Backward<Flex, 1> for AttentionOp {
    type State = Arc<AttentionState>;

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let dctx = contiguous(&grads.consume::<Flex>(&ops.node));
        let st = ops.state;
        let [parent] = &ops.parents;
        give!(grads, parent, {
            let dqkv = cpu_attention::attention_backward(
                f32s(&st.qkv),
                &st.probs,
                f32s(&dctx),
                st.heads,
                st.scale,
                st.keep,
            );
            flex(dqkv, shape(&st.qkv))
        });
    }
}

/// The shape of an attention call on `qkv [n, 3H]` with `batch` sequences.
fn heads_of(qkv: &FlexTensor, batch: usize, heads: usize) -> Heads {
    let dims = shape(qkv);
    let (n, width) = (dims.as_slice()[0], dims.as_slice()[1]);
    Heads {
        batch,
        seq: n / batch,
        heads,
        head_dim: width / 3 / heads,
    }
}

/// Multi-head attention of `qkv [n, 3H]` under the additive key mask `[batch, seq]` on flex
/// (inference: no dropout, no probabilities kept) → `[n, H]`.
pub fn attention_flex(qkv: FlexTensor, mask: FlexTensor, heads: usize, scale: f32) -> FlexTensor {
    let (qkv, mask) = (contiguous(&qkv), contiguous(&mask));
    let batch = shape(&mask).as_slice()[0];
    let h = heads_of(&qkv, batch, heads);
    let (ctx, _) = cpu_attention::attention(f32s(&qkv), f32s(&mask), h, scale, None, false);
    flex(ctx, Shape::new([h.batch * h.seq, h.heads * h.head_dim]))
}

/// [`attention_flex`] on `Autodiff<Flex>`, with the dropout mask `keep` of the probabilities
/// (`[batch, heads, seq, seq]`; `None` without dropout).
pub fn attention_ad(
    qkv: AdPrim,
    mask: FlexTensor,
    heads: usize,
    scale: f32,
    keep: Option<Keep>,
) -> AdPrim {
    let (qf, mask) = (contiguous(&qkv.primitive), contiguous(&mask));
    let batch = shape(&mask).as_slice()[0];
    let h = heads_of(&qf, batch, heads);
    let out_shape = Shape::new([h.batch * h.seq, h.heads * h.head_dim]);
    record(AttentionOp, [&qkv], || {
        let (ctx, probs) = cpu_attention::attention(f32s(&qf), f32s(&mask), h, scale, keep, true);
        let state = AttentionState {
            qkv: qf.clone(),
            probs: probs.unwrap_or_default(),
            heads: h,
            scale,
            keep,
        };
        (flex(ctx, out_shape), Arc::new(state))
    })
}
