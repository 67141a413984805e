//! The losses (spec 1.5), written by hand because burn's built-in losses cannot average over a
//! mask (its cross-entropy divides by all rows; its BCE has no weights).

use burn::prelude::*;
use electra_model::kernels;

/// The reference adds this to every denominator (`Σw + 1e-6`), so an empty mask gives 0.
pub const DENOMINATOR_EPS: f64 = 1e-6;

/// Masked-LM loss (spec 1.5): `Σ w·(−log softmax(logits)[target]) / (Σ w + 1e-6)` over
/// `logits [n, V]`, `targets [n]`, `weights [n]` (1 = active slot). A mean over the active
/// slots of the whole batch. Returns `[1]`.
pub fn masked_lm_loss<B: Backend>(
    logits: Tensor<B, 2>,
    targets: Tensor<B, 1, Int>,
    weights: Tensor<B, 1>,
) -> Tensor<B, 1> {
    // −log softmax(logits)[target] per row, one fused kernel on the CPU backend.
    let nll = kernels::cross_entropy(logits, targets);
    (nll * weights.clone())
        .sum()
        .div(weights.sum().add_scalar(DENOMINATOR_EPS))
}

/// `log(1 + exp(x))` without overflow: `max(x, 0) + log1p(exp(−|x|))` (burn's `softplus`
/// returns ∞ for large `x`, and ∞·0 at a padded position would make the loss NaN).
pub fn stable_softplus<B: Backend, const D: usize>(x: Tensor<B, D>) -> Tensor<B, D> {
    x.clone().clamp_min(0.0) + x.abs().neg().exp().log1p()
}

/// `log σ(x) = −softplus(−x)`, without overflow.
pub fn stable_log_sigmoid<B: Backend, const D: usize>(x: Tensor<B, D>) -> Tensor<B, D> {
    stable_softplus(x.neg()).neg()
}

/// Replaced-token-detection loss (spec 1.5): binary cross-entropy with logits,
/// `Σ m·(softplus(x) − y·x) / (Σ m + 1e-6)` over `logits [b, s]`, `labels [b, s]` (1 =
/// replaced) and `weights [b, s]` (the attention mask for ELECTRA: every non-pad token,
/// `[CLS]`/`[SEP]` included). Returns `[1]`.
pub fn rtd_loss<B: Backend>(
    logits: Tensor<B, 2>,
    labels: Tensor<B, 2>,
    weights: Tensor<B, 2>,
) -> Tensor<B, 1> {
    let per_token = stable_softplus(logits.clone()) - labels * logits;
    (per_token * weights.clone())
        .sum()
        .div(weights.sum().add_scalar(DENOMINATOR_EPS))
}

/// All-Tokens MLM loss with the copy mechanism (paper §3.5): for every token,
/// `p = D·[target = input] + (1 − D)·softmax(logits)[target]` with `D = sigmoid(copy_logits)`,
/// and the loss is `Σ m·(−log p) / (Σ m + 1e-6)`.
///
/// `logits [n, V]`, `copy_logits [n]`, `targets [n]` (the original ids), `is_copy [n]` (1.0
/// where the input token equals the target), `weights [n]` (1 = non-pad). Computed in log
/// space: `log p = logaddexp(log D + log is_copy, log(1 − D) + log softmax[target])`.
pub fn copy_mlm_loss<B: Backend>(
    logits: Tensor<B, 2>,
    copy_logits: Tensor<B, 1>,
    targets: Tensor<B, 1, Int>,
    is_copy: Tensor<B, 1>,
    weights: Tensor<B, 1>,
) -> Tensor<B, 1> {
    let log_q = kernels::cross_entropy(logits, targets).neg();
    // log(1 − D) = log σ(−d); the copy term is log σ(d) where the input is the target and a
    // large negative number (not −∞, which would make NaN gradients) elsewhere.
    let generate = stable_log_sigmoid(copy_logits.clone().neg()) + log_q;
    let copy =
        stable_log_sigmoid(copy_logits) + is_copy.clone().neg().add_scalar(1.0).mul_scalar(-1e4);
    let max = generate.clone().max_pair(copy.clone());
    let log_p = max.clone() + ((generate - max.clone()).exp() + (copy - max).exp()).log();
    (log_p * weights.clone())
        .sum()
        .neg()
        .div(weights.sum().add_scalar(DENOMINATOR_EPS))
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::backend::Flex;

    type B = Flex;

    fn t1(v: &[f32]) -> Tensor<B, 1> {
        Tensor::from_data(TensorData::new(v.to_vec(), [v.len()]), &Default::default())
    }

    #[test]
    fn masked_lm_loss_averages_over_active_slots_only() {
        let dev = Default::default();
        let logits = Tensor::<B, 2>::from_data(
            TensorData::new(
                vec![1.0f32, 2.0, 3.0, 0.5, 0.0, -1.0, 9.0, 9.0, 9.0],
                [3, 3],
            ),
            &dev,
        );
        let targets = Tensor::<B, 1, Int>::from_data(TensorData::new(vec![2i64, 0, 1], [3]), &dev);
        let loss: f32 = masked_lm_loss(logits, targets, t1(&[1.0, 1.0, 0.0])).into_scalar();
        let lse = |v: [f32; 3]| v.iter().map(|x| x.exp()).sum::<f32>().ln();
        let expected = ((lse([1.0, 2.0, 3.0]) - 3.0) + (lse([0.5, 0.0, -1.0]) - 0.5)) / 2.0;
        assert!((loss - expected).abs() < 1e-5, "{loss} vs {expected}");
    }

    #[test]
    fn rtd_loss_ignores_padding() {
        let logits = t1(&[0.3, -2.0, 5.0, 100.0]).reshape([2, 2]);
        let labels = t1(&[1.0, 0.0, 0.0, 1.0]).reshape([2, 2]);
        let weights = t1(&[1.0, 1.0, 1.0, 0.0]).reshape([2, 2]);
        let loss: f32 = rtd_loss(logits, labels, weights).into_scalar();
        let bce = |x: f32, y: f32| (1.0 + x.exp()).ln() - y * x;
        let expected = (bce(0.3, 1.0) + bce(-2.0, 0.0) + bce(5.0, 0.0)) / 3.0;
        assert!((loss - expected).abs() < 1e-5, "{loss} vs {expected}");
    }

    #[test]
    fn copy_mlm_loss_mixes_copy_and_softmax() {
        let dev = Default::default();
        let logits = Tensor::<B, 2>::from_data(
            TensorData::new(vec![1.0f32, 2.0, 0.0, 0.5, -0.5, 1.5], [2, 3]),
            &dev,
        );
        let targets = Tensor::<B, 1, Int>::from_data(TensorData::new(vec![1i64, 2], [2]), &dev);
        let loss: f32 = copy_mlm_loss(
            logits,
            t1(&[0.7, -1.2]),
            targets,
            t1(&[1.0, 0.0]),
            t1(&[1.0, 1.0]),
        )
        .into_scalar();
        let softmax = |v: [f32; 3], i: usize| v[i].exp() / v.iter().map(|x| x.exp()).sum::<f32>();
        let sig = |x: f32| 1.0 / (1.0 + (-x).exp());
        let p0 = sig(0.7) + (1.0 - sig(0.7)) * softmax([1.0, 2.0, 0.0], 1);
        let p1 = (1.0 - sig(-1.2)) * softmax([0.5, -0.5, 1.5], 2);
        let expected = -(p0.ln() + p1.ln()) / 2.0;
        assert!((loss - expected).abs() < 1e-5, "{loss} vs {expected}");
    }
}
