//! The fused dense and attention kernels against their composed forms on `Autodiff<Flex>`
//! (outputs and every input's gradient), with dropout against the same mask applied by
//! explicit multiplication, and the inference route (`Flex`) against the autodiff one.

use burn::backend::Flex;
use burn::prelude::*;
use burn::tensor::TensorData;

use super::keep::Keep;
use super::tests::{Ad, TOL, assert_same, max_diff, random, run};
use super::*;

/// Rows, input and output features of the dense tests.
const N: usize = 11;
const D_IN: usize = 12;
const D_OUT: usize = 9;

/// `[1, d]` as `[d]` (the tests pass vectors as one-row matrices so that every input has one
/// rank).
fn vector(t: Tensor<Ad, 2>) -> Tensor<Ad, 1> {
    let d = t.dims()[1];
    t.reshape([d])
}

/// A `Keep` mask as an `[n..]` tensor of multipliers.
fn mask_tensor<const D: usize>(keep: Keep, shape: [usize; D]) -> Tensor<Ad, D> {
    let n = shape.iter().product();
    Tensor::from_data(
        TensorData::new(keep.multipliers(n), shape),
        &Default::default(),
    )
}

#[test]
fn dense_matches_composed_in_both_weight_layouts() {
    for transposed in [false, true] {
        let w_shape = if transposed {
            [D_OUT, D_IN]
        } else {
            [D_IN, D_OUT]
        };
        let inputs = [
            random([N, D_IN], 21),
            random(w_shape, 22),
            random([1, D_OUT], 23),
        ];
        let w = random([N, D_OUT], 24);
        let fast = run(&inputs, &w, |t| {
            dense(t[0].clone(), t[1].clone(), vector(t[2].clone()), transposed)
        });
        let reference = run(&inputs, &w, |t| {
            composed::dense(t[0].clone(), t[1].clone(), vector(t[2].clone()), transposed)
        });
        assert_same("dense", fast, reference);
    }
}

#[test]
fn dense_gelu_matches_composed() {
    let inputs = [
        random([N, D_IN], 25),
        random([D_IN, D_OUT], 26),
        random([1, D_OUT], 27),
    ];
    let w = random([N, D_OUT], 28);
    let fast = run(&inputs, &w, |t| {
        dense_gelu(t[0].clone(), t[1].clone(), vector(t[2].clone()))
    });
    let reference = run(&inputs, &w, |t| {
        let y = composed::dense(t[0].clone(), t[1].clone(), vector(t[2].clone()), false);
        burn::tensor::activation::gelu(y)
    });
    assert_same("dense_gelu", fast, reference);
}

/// x, W, b, residual, γ, β of the residual LayerNorm tests.
fn residual_inputs() -> [Tensor<Ad, 2>; 6] {
    [
        random([N, D_IN], 31),
        random([D_IN, D_OUT], 32),
        random([1, D_OUT], 33),
        random([N, D_OUT], 34).mul_scalar(2.0),
        random([1, D_OUT], 35).add_scalar(1.0),
        random([1, D_OUT], 36),
    ]
}

#[test]
fn dense_residual_layer_norm_matches_composed() {
    let inputs = residual_inputs();
    let w = random([N, D_OUT], 37);
    let norm = |t: &[Tensor<Ad, 2>]| (vector(t[4].clone()), vector(t[5].clone()), 1e-12);
    let fast = run(&inputs, &w, |t| {
        let b = vector(t[2].clone());
        dense_residual_layer_norm(t[0].clone(), t[1].clone(), b, t[3].clone(), norm(&t), 0.0)
    });
    let reference = run(&inputs, &w, |t| {
        let y = composed::dense(t[0].clone(), t[1].clone(), vector(t[2].clone()), false);
        let (g, b, eps) = norm(&t);
        composed::layer_norm(y + t[3].clone(), g, b, eps)
    });
    assert_same("dense_residual_layer_norm", fast, reference);
}

#[test]
fn dense_residual_layer_norm_with_dropout_applies_its_mask_forward_and_backward() {
    let inputs = residual_inputs();
    let w = random([N, D_OUT], 38);
    let keep = Keep::new(0.3, 77);
    let fast = run(&inputs, &w, |t| {
        let prim = |t: &Tensor<Ad, 2>| flex::prim_ad(t.clone());
        let prim1 = |t: &Tensor<Ad, 2>| flex::prim_ad(vector(t.clone()));
        let norm = fused::Norm {
            gamma: prim1(&t[4]),
            beta: prim1(&t[5]),
            eps: 1e-12,
        };
        let y = fused::dense_residual_layer_norm_ad(
            prim(&t[0]),
            prim(&t[1]),
            prim1(&t[2]),
            prim(&t[3]),
            norm,
            Some(keep),
        );
        flex::from_ad::<2>(y)
    });
    let reference = run(&inputs, &w, |t| {
        let y = composed::dense(t[0].clone(), t[1].clone(), vector(t[2].clone()), false);
        let dropped = y * mask_tensor(keep, [N, D_OUT]);
        composed::layer_norm(
            dropped + t[3].clone(),
            vector(t[4].clone()),
            vector(t[5].clone()),
            1e-12,
        )
    });
    assert_same("dense_residual_layer_norm with dropout", fast, reference);
}

/// Sequences, tokens, heads and features per head of the attention tests.
const B: usize = 2;
const S: usize = 5;
const HEADS: usize = 3;
const D: usize = 4;

fn key_mask() -> Tensor<Ad, 2> {
    let values = vec![
        0.0f32, 0.0, 0.0, -10000.0, -10000.0, 0.0, 0.0, 0.0, 0.0, 0.0,
    ];
    Tensor::from_data(TensorData::new(values, [B, S]), &Default::default())
}

/// Two sequences (one task per sequence, products on the task's thread) and one (the products
/// spread over the pool instead).
#[test]
fn attention_matches_composed() {
    for batch in [B, 1] {
        let mask = key_mask().narrow(0, B - batch, batch);
        let qkv = random([batch * S, 3 * HEADS * D], 41).mul_scalar(2.0);
        let w = random([batch * S, HEADS * D], 42);
        let fast = run(std::slice::from_ref(&qkv), &w, |t| {
            attention(t[0].clone(), mask.clone(), HEADS, 0.35, 0.0)
        });
        let reference = run(&[qkv], &w, |t| {
            composed::attention(t[0].clone(), mask.clone(), HEADS, 0.35, 0.0)
        });
        assert_same("attention", fast, reference);
    }
}

#[test]
fn attention_with_dropout_applies_its_mask_forward_and_backward() {
    let qkv = random([B * S, 3 * HEADS * D], 43).mul_scalar(2.0);
    let w = random([B * S, HEADS * D], 44);
    let keep = Keep::new(0.25, 99);
    let fast = run(std::slice::from_ref(&qkv), &w, |t| {
        let mask = flex::prim_ad(key_mask()).primitive;
        let ctx = fused::attention_ad(flex::prim_ad(t[0].clone()), mask, HEADS, 0.35, Some(keep));
        flex::from_ad::<2>(ctx)
    });
    let reference = run(&[qkv], &w, |t| {
        let h = HEADS * D;
        let part = |i: usize| {
            composed::split_heads(t[0].clone().narrow(1, i * h, h).reshape([B, S, h]), HEADS)
        };
        let probs = composed::attention_probs(
            part(0).matmul(part(1).swap_dims(2, 3)),
            key_mask(),
            0.35,
            0.0,
        );
        let dropped = probs * mask_tensor(keep, [B, HEADS, S, S]);
        composed::merge_heads(dropped.matmul(part(2))).reshape([B * S, h])
    });
    assert_same("attention with dropout", fast, reference);
}

/// The inference route (`Flex`, no autodiff, one head's scores at a time) computes what the
/// autodiff route computes.
#[test]
fn the_inference_route_matches_the_autodiff_route() {
    let on_flex =
        |t: &Tensor<Ad, 2>| Tensor::<Flex, 2>::from_data(t.to_data(), &Default::default());
    let on_flex1 = |t: &Tensor<Ad, 2>| on_flex(t).reshape([t.dims()[1]]);
    let close = |a: Tensor<Ad, 2>, b: Tensor<Flex, 2>| {
        let b = Tensor::<Ad, 2>::from_data(b.into_data(), &Default::default());
        assert!(max_diff(a, b) < TOL);
    };
    let [x, w, b, r, g, beta] = residual_inputs();
    close(
        dense(x.clone(), w.clone(), vector(b.clone()), false),
        dense(on_flex(&x), on_flex(&w), on_flex1(&b), false),
    );
    close(
        dense_gelu(x.clone(), w.clone(), vector(b.clone())),
        dense_gelu(on_flex(&x), on_flex(&w), on_flex1(&b)),
    );
    close(
        dense_residual_layer_norm(
            x.clone(),
            w.clone(),
            vector(b.clone()),
            r.clone(),
            (vector(g.clone()), vector(beta.clone()), 1e-12),
            0.0,
        ),
        dense_residual_layer_norm(
            on_flex(&x),
            on_flex(&w),
            on_flex1(&b),
            on_flex(&r),
            (on_flex1(&g), on_flex1(&beta), 1e-12),
            0.1,
        ),
    );
    let qkv = random([B * S, 3 * HEADS * D], 45);
    close(
        attention(qkv.clone(), key_mask(), HEADS, 0.5, 0.0),
        attention(on_flex(&qkv), on_flex(&key_mask()), HEADS, 0.5, 0.1),
    );
}
