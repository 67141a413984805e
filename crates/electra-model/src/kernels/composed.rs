//! The kernels as compositions of burn tensor operations: what every backend without a fast
//! implementation runs (wgpu, cuda, ndarray), and the reference the fast kernels are tested
//! against. Each function computes what the model computed before the kernels existed.

use burn::nn::DropoutConfig;
use burn::prelude::*;
use burn::tensor::activation::{log_softmax, softmax};
use burn::tensor::{FloatDType, IndexingUpdateOp, TensorData, TensorPrimitive};

/// The backend's `layer_norm` (what burn's `LayerNorm` module calls).
pub fn layer_norm<B: Backend, const D: usize>(
    x: Tensor<B, D>,
    gamma: Tensor<B, 1>,
    beta: Tensor<B, 1>,
    eps: f64,
) -> Tensor<B, D> {
    Tensor::from_primitive(TensorPrimitive::Float(B::layer_norm(
        x.into_primitive().tensor(),
        gamma.into_primitive().tensor(),
        Some(beta.into_primitive().tensor()),
        eps,
    )))
}

/// `dropout(softmax(scores·scale + mask))` with `mask [b, s]` broadcast over heads and queries.
pub fn attention_probs<B: Backend>(
    scores: Tensor<B, 4>,
    mask: Tensor<B, 2>,
    scale: f64,
    prob: f64,
) -> Tensor<B, 4> {
    let [b, s] = mask.dims();
    let scores = scores.div_scalar(1.0 / scale) + mask.reshape([b, 1, 1, s]);
    dropout(softmax(scores, 3), prob)
}

/// `x [n, d_in] · W + b`, `W` being `[d_in, d_out]` or, `transposed`, `[d_out, d_in]` (burn's
/// `linear` on 2-D input).
pub fn dense<B: Backend>(
    x: Tensor<B, 2>,
    w: Tensor<B, 2>,
    b: Tensor<B, 1>,
    transposed: bool,
) -> Tensor<B, 2> {
    let w = if transposed { w.transpose() } else { w };
    x.matmul(w) + b.unsqueeze_dim(0)
}

/// `LayerNorm(dropout(x·W + b) + residual)`.
pub fn dense_residual_layer_norm<B: Backend>(
    x: Tensor<B, 2>,
    w: Tensor<B, 2>,
    b: Tensor<B, 1>,
    residual: Tensor<B, 2>,
    norm: (Tensor<B, 1>, Tensor<B, 1>, f64),
    prob: f64,
) -> Tensor<B, 2> {
    let (gamma, beta, eps) = norm;
    layer_norm(
        dropout(dense(x, w, b, false), prob) + residual,
        gamma,
        beta,
        eps,
    )
}

/// Multi-head attention of the fused projection `qkv [n, 3H]` under the additive key mask
/// `[b, s]`: heads split from the query, key and value columns, scores, [`attention_probs`],
/// context, heads merged → `[n, H]`.
pub fn attention<B: Backend>(
    qkv: Tensor<B, 2>,
    mask: Tensor<B, 2>,
    heads: usize,
    scale: f64,
    prob: f64,
) -> Tensor<B, 2> {
    let [b, s] = mask.dims();
    let [n, width] = qkv.dims();
    let h = width / 3;
    let part = |i: usize| split_heads(qkv.clone().narrow(1, i * h, h).reshape([b, s, h]), heads);
    let (q, k, v) = (part(0), part(1), part(2));
    let probs = attention_probs(q.matmul(k.swap_dims(2, 3)), mask, scale, prob);
    merge_heads(probs.matmul(v)).reshape([n, h])
}

/// burn's `Dropout` (a Bernoulli mask from the backend's stream, then the `1/(1 − p)` scale).
pub fn dropout<B: Backend, const D: usize>(x: Tensor<B, D>, prob: f64) -> Tensor<B, D> {
    DropoutConfig::new(prob).init().forward(x)
}

/// `[b, s, H]` → `[b, heads, s, d]` as a strided view.
pub fn split_heads<B: Backend>(x: Tensor<B, 3>, heads: usize) -> Tensor<B, 4> {
    let [b, s, h] = x.dims();
    x.reshape([b, s, heads, h / heads]).swap_dims(1, 2)
}

/// `[b, heads, s, d]` → `[b, s, heads·d]`.
pub fn merge_heads<B: Backend>(x: Tensor<B, 4>) -> Tensor<B, 3> {
    let [b, heads, s, d] = x.dims();
    x.swap_dims(1, 2).reshape([b, s, heads * d])
}

/// `−log softmax(logits)[target]` per row.
pub fn cross_entropy<B: Backend>(logits: Tensor<B, 2>, targets: Tensor<B, 1, Int>) -> Tensor<B, 1> {
    let n = targets.dims()[0];
    log_softmax(logits, 1)
        .gather(1, targets.reshape([n, 1]))
        .reshape([n])
        .neg()
}

/// Inverse-CDF sampling on the device: `index = #{j : cdf_j ≤ u·total}` per row.
pub fn sample<B: Backend>(
    logits: Tensor<B, 2>,
    temperature: f64,
    disallow: Option<(&[i64], f32)>,
    uniforms: &[f32],
) -> Vec<i64> {
    let [n, v] = logits.dims();
    let device = logits.device();
    // f32 even on a half-precision backend, so near-ties and the penalty keep their meaning.
    let mut logits = logits.cast(FloatDType::F32).div_scalar(temperature);
    if let Some((ids, penalty)) = disallow {
        let ids = Tensor::<B, 2, Int>::from_data(TensorData::new(ids.to_vec(), [n, 1]), &device);
        let penalty = Tensor::<B, 2>::full([n, 1], -penalty, &device).cast(FloatDType::F32);
        logits = logits.scatter(1, ids, penalty, IndexingUpdateOp::Add);
    }
    let cdf = softmax(logits, 1).cumsum(1);
    let total = cdf.clone().narrow(1, v - 1, 1);
    let u = Tensor::<B, 2>::from_data(TensorData::new(uniforms.to_vec(), [n, 1]), &device)
        .cast(FloatDType::F32);
    cdf.lower_equal(u * total)
        .int()
        .sum_dim(1)
        .clamp_max(v as i64 - 1)
        .into_data()
        .iter::<i64>()
        .collect()
}

/// One reference-Adam update of the flat tensors `theta`, `m`, `v` with gradient `g` (see
/// [`super::cpu::adam`]); returns the new `(θ, m, v)`.
pub fn adam<B: Backend>(
    theta: Tensor<B, 1>,
    m: Tensor<B, 1>,
    v: Tensor<B, 1>,
    g: Tensor<B, 1>,
    k: super::cpu::AdamScalars,
) -> (Tensor<B, 1>, Tensor<B, 1>, Tensor<B, 1>) {
    let g = g.mul_scalar(k.clip_scale);
    let m = m.mul_scalar(k.beta1) + g.clone().mul_scalar(1.0 - k.beta1);
    let v = v.mul_scalar(k.beta2) + g.square().mul_scalar(1.0 - k.beta2);
    let mut update = m.clone() / v.clone().sqrt().add_scalar(k.epsilon);
    if k.weight_decay > 0.0 {
        update = update + theta.clone().mul_scalar(k.weight_decay);
    }
    (theta - update.mul_scalar(k.lr), m, v)
}
