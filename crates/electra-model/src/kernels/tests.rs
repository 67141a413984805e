//! Every fast kernel against its composed form on `Autodiff<Flex>`: outputs, and the gradients
//! of `sum(y·w)` for a random `w` with respect to every input.

use burn::backend::{Autodiff, Flex};
use burn::prelude::*;
use burn::tensor::TensorData;

use super::*;

pub(super) type Ad = Autodiff<Flex>;

/// Float rounding of f32 reductions over rows of a few hundred elements.
pub(super) const TOL: f32 = 2e-5;

/// Standard normal inputs from a generator of the test's own (SplitMix64 counters through
/// Box–Muller), not from the backend's process-wide stream: tests in this binary run on
/// parallel threads, and one that seeds or initialises a model between another's
/// `Backend::seed` and its draw would give the fast and the composed run different inputs.
pub(super) fn random<const D: usize>(shape: [usize; D], seed: u64) -> Tensor<Ad, D> {
    let n: usize = shape.iter().product();
    let base = crate::seed::mix(seed);
    let uniform = |i: u64| {
        // 53 random bits, in (0, 1]: never 0, so the logarithm is finite.
        ((crate::seed::splitmix64(base.wrapping_add(i)) >> 11) + 1) as f64 / (1u64 << 53) as f64
    };
    let values: Vec<f32> = (0..n as u64)
        .map(|i| {
            let (u1, u2) = (uniform(2 * i), uniform(2 * i + 1));
            ((-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()) as f32
        })
        .collect();
    Tensor::from_data(TensorData::new(values, shape), &Default::default())
}

pub(super) fn max_diff<const D: usize>(a: Tensor<Ad, D>, b: Tensor<Ad, D>) -> f32 {
    let a: Vec<f32> = a.into_data().iter::<f32>().collect();
    let b: Vec<f32> = b.into_data().iter::<f32>().collect();
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(&b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

/// Runs `f` on fresh tracked copies of `inputs`, back-propagates `sum(y·w)`, and returns the
/// output and each input's gradient.
pub(super) fn run<const D: usize, const O: usize>(
    inputs: &[Tensor<Ad, D>],
    w: &Tensor<Ad, O>,
    f: impl Fn(Vec<Tensor<Ad, D>>) -> Tensor<Ad, O>,
) -> (Tensor<Ad, O>, Vec<Tensor<Ad, D>>) {
    let tracked: Vec<_> = inputs
        .iter()
        .map(|t| t.clone().detach().require_grad())
        .collect();
    let y = f(tracked.clone());
    let grads = (y.clone() * w.clone()).sum().backward();
    let g = tracked
        .iter()
        .map(|t| Tensor::from_inner(t.grad(&grads).expect("input gets a gradient")))
        .collect();
    (y, g)
}

pub(super) fn assert_same<const D: usize, const O: usize>(
    what: &str,
    fast: (Tensor<Ad, O>, Vec<Tensor<Ad, D>>),
    reference: (Tensor<Ad, O>, Vec<Tensor<Ad, D>>),
) {
    let d = max_diff(fast.0, reference.0);
    assert!(d < TOL, "{what}: outputs differ by {d}");
    for (i, (a, b)) in fast.1.into_iter().zip(reference.1).enumerate() {
        let d = max_diff(a, b);
        assert!(d < TOL, "{what}: gradient of input {i} differs by {d}");
    }
}

#[test]
fn routes_by_backend_type() {
    assert_eq!(route::<Ad>(), Route::AutodiffFlex);
    assert_eq!(route::<Flex>(), Route::Flex);
    // Another autodiff strategy is another type: it gets the composed operations.
    use burn::backend::autodiff::checkpoint::strategy::BalancedCheckpointing;
    assert_eq!(
        route::<Autodiff<Flex, BalancedCheckpointing>>(),
        Route::Composed
    );
}

/// LayerNorm output and the gradients of x, γ, β under `f`.
fn layer_norm_run(
    f: impl Fn(Tensor<Ad, 3>, Tensor<Ad, 1>, Tensor<Ad, 1>) -> Tensor<Ad, 3>,
) -> (Tensor<Ad, 3>, Tensor<Ad, 3>, Tensor<Ad, 1>, Tensor<Ad, 1>) {
    let x = random([3, 7, 48], 3)
        .mul_scalar(3.0)
        .add_scalar(0.5)
        .require_grad();
    let gamma = random([48], 1).add_scalar(1.0).require_grad();
    let beta = random([48], 2).require_grad();
    let w = random([3, 7, 48], 4);
    let y = f(x.clone(), gamma.clone(), beta.clone());
    let grads = (y.clone() * w).sum().backward();
    let g1 = |t: &Tensor<Ad, 1>| Tensor::<Ad, 1>::from_inner(t.grad(&grads).expect("grad"));
    let dx = Tensor::<Ad, 3>::from_inner(x.grad(&grads).expect("dx"));
    (y, dx, g1(&gamma), g1(&beta))
}

#[test]
fn layer_norm_matches_burn() {
    let fast = layer_norm_run(|x, g, b| layer_norm(x, g, b, 1e-12));
    let reference = layer_norm_run(|x, g, b| composed::layer_norm(x, g, b, 1e-12));
    assert!(max_diff(fast.0, reference.0) < TOL);
    assert!(max_diff(fast.1, reference.1) < TOL);
    // dγ and dβ sum 21 rows.
    assert!(max_diff(fast.2, reference.2) < 1e-4);
    assert!(max_diff(fast.3, reference.3) < 1e-4);
}

#[test]
fn attention_probs_without_dropout_match_composed() {
    let scores = random([2, 3, 5, 5], 5).mul_scalar(4.0);
    let mask_values = vec![
        0.0f32, 0.0, 0.0, -10000.0, -10000.0, 0.0, 0.0, 0.0, 0.0, 0.0,
    ];
    let mask =
        Tensor::<Ad, 2>::from_data(TensorData::new(mask_values, [2, 5]), &Default::default());
    let w = random([2, 3, 5, 5], 6);
    let fast = run(std::slice::from_ref(&scores), &w, |x| {
        attention_probs(x[0].clone(), mask.clone(), 0.35, 0.0)
    });
    let reference = run(&[scores], &w, |x| {
        composed::attention_probs(x[0].clone(), mask.clone(), 0.35, 0.0)
    });
    assert_same("attention_probs", fast, reference);
}

#[test]
fn attention_dropout_keeps_the_expected_fraction_and_scales() {
    let scores = Tensor::<Ad, 4>::zeros([4, 4, 64, 64], &Default::default());
    let mask = Tensor::<Ad, 2>::zeros([4, 64], &Default::default());
    Ad::seed(&Default::default(), 9);
    let out: Vec<f32> = attention_probs(scores, mask, 1.0, 0.1)
        .into_data()
        .iter::<f32>()
        .collect();
    // Uniform probabilities 1/64, kept ones scaled by 1/0.9.
    let kept = out.iter().filter(|&&p| p > 0.0).count() as f64 / out.len() as f64;
    assert!((kept - 0.9).abs() < 0.01, "kept fraction {kept}");
    let expected = 1.0 / 64.0 / 0.9;
    assert!(out.iter().all(|&p| p == 0.0 || (p - expected).abs() < 1e-6));
}

#[test]
fn head_split_and_merge_match_composed() {
    let x = random([2, 5, 12], 7);
    let w4 = random([2, 3, 5, 4], 8);
    let fast = run(std::slice::from_ref(&x), &w4, |x| {
        split_heads(x[0].clone(), 3)
    });
    let reference = run(&[x], &w4, |x| composed::split_heads(x[0].clone(), 3));
    assert_same("split_heads", fast, reference);

    let y = random([2, 3, 5, 4], 9);
    let w3 = random([2, 5, 12], 10);
    let fast = run(std::slice::from_ref(&y), &w3, |x| merge_heads(x[0].clone()));
    let reference = run(&[y], &w3, |x| composed::merge_heads(x[0].clone()));
    assert_same("merge_heads", fast, reference);
}

#[test]
fn gelu_matches_burn() {
    let x = random([4, 33], 11).mul_scalar(3.0);
    let w = random([4, 33], 12);
    let fast = run(std::slice::from_ref(&x), &w, |x| gelu(x[0].clone()));
    let reference = run(&[x], &w, |x| burn::tensor::activation::gelu(x[0].clone()));
    assert_same("gelu", fast, reference);
}

#[test]
fn cross_entropy_matches_log_softmax() {
    let logits = random([6, 50], 13).mul_scalar(5.0);
    let targets = Tensor::<Ad, 1, Int>::from_data(
        TensorData::new(vec![0i64, 49, 7, 7, 20, 3], [6]),
        &Default::default(),
    );
    let w = random([6], 14);
    let fast = run(std::slice::from_ref(&logits), &w, |x| {
        cross_entropy(x[0].clone(), targets.clone())
    });
    let reference = run(&[logits], &w, |x| {
        composed::cross_entropy(x[0].clone(), targets.clone())
    });
    assert_same("cross_entropy", fast, reference);
}

#[test]
fn fast_and_composed_samplers_agree_draw_for_draw() {
    let logits = random([40, 30], 15).mul_scalar(2.0);
    let uniforms: Vec<f32> = (0..40).map(|i| (i as f32 + 0.5) / 40.0).collect();
    let banned: Vec<i64> = (0..40).map(|i| i % 30).collect();
    for disallow in [None, Some((banned.as_slice(), 1000.0))] {
        let fast = sample(logits.clone(), 1.5, disallow, &uniforms);
        let reference = composed::sample(logits.clone(), 1.5, disallow, &uniforms);
        // The two sum the probabilities in other orders: a uniform within rounding of a
        // boundary may fall on either side of it.
        let same = fast.iter().zip(&reference).filter(|(a, b)| a == b).count();
        assert!(same >= 39, "{same}/40 identical: {fast:?} vs {reference:?}");
        if let Some((ids, _)) = disallow {
            assert!(fast.iter().zip(ids).all(|(s, id)| s != id));
        }
    }
}
