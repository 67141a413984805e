//! The fine-tuning model: the pre-trained encoder with a dropout + single linear head on the
//! final `[CLS]` state (spec 5.1; no pooler, unlike HF's `ElectraForSequenceClassification`,
//! which adds a dense + GELU layer), and its losses.

use burn::nn::{Dropout, DropoutConfig, Linear};
use burn::prelude::*;
use burn::tensor::activation::log_softmax;
use electra_model::electra::linear_glorot;
use electra_model::{ElectraConfig, ElectraModel, InputTensors};
use serde::{Deserialize, Serialize};

/// The encoder and a task head: `[CLS]` state → dropout → Linear `H → outputs`.
#[derive(Module, Debug)]
pub struct ElectraForSequenceClassification<B: Backend> {
    /// The pre-trained encoder (embeddings and tower).
    pub electra: ElectraModel<B>,
    /// Dropout on the `[CLS]` state (`hidden_dropout_prob`, 0.1).
    pub dropout: Dropout,
    /// The head: Glorot-uniform kernel, zero bias (spec 2.7); `outputs` = classes, or 1 for
    /// regression.
    pub classifier: Linear<B>,
}

/// How the per-example losses of a batch are combined.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LossReduction {
    /// Summed over the batch, as the reference's `run_finetuning.py` does (this makes the
    /// global-norm clip at 1.0 much more active than a mean would).
    #[default]
    Sum,
    /// Averaged over the batch.
    Mean,
}

impl<B: Backend> ElectraForSequenceClassification<B> {
    /// Puts a fresh head with `outputs` outputs on `electra`. Seed the backend first.
    pub fn new(
        electra: ElectraModel<B>,
        config: &ElectraConfig,
        outputs: usize,
        device: &B::Device,
    ) -> Self {
        Self {
            electra,
            dropout: DropoutConfig::new(config.hidden_dropout_prob).init(),
            classifier: linear_glorot(config.hidden_size, outputs, device),
        }
    }

    /// Inputs `[b, s]` → head outputs `[b, outputs]`.
    pub fn forward(&self, input: InputTensors<B>) -> Tensor<B, 2> {
        let hidden =
            self.electra
                .forward(input.input_ids, input.token_type_ids, input.attention_mask);
        let [b, _, h] = hidden.dims();
        let cls = hidden.slice([0..b, 0..1]).reshape([b, h]);
        self.classifier
            .forward(electra_model::kernels::dropout(cls, self.dropout.prob))
    }
}

/// Softmax cross-entropy of `logits [b, C]` against class indices `labels [b]`.
pub fn classification_loss<B: Backend>(
    logits: Tensor<B, 2>,
    labels: Tensor<B, 1, Int>,
    reduction: LossReduction,
) -> Tensor<B, 1> {
    let [b, _] = logits.dims();
    let picked = log_softmax(logits, 1)
        .gather(1, labels.reshape([b, 1]))
        .reshape([b]);
    reduce(picked.neg(), reduction)
}

/// Squared error of `outputs [b, 1]` against `targets [b]` (STS-B, targets scaled to 0-1).
pub fn regression_loss<B: Backend>(
    outputs: Tensor<B, 2>,
    targets: Tensor<B, 1>,
    reduction: LossReduction,
) -> Tensor<B, 1> {
    let [b, _] = outputs.dims();
    reduce((outputs.reshape([b]) - targets).square(), reduction)
}

fn reduce<B: Backend>(per_example: Tensor<B, 1>, reduction: LossReduction) -> Tensor<B, 1> {
    match reduction {
        LossReduction::Sum => per_example.sum(),
        LossReduction::Mean => per_example.mean(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::backend::Flex;

    /// Spec 2.7 / 5.1: the task head is Glorot-uniform (TF's default, no initializer given)
    /// with a zero bias, not the encoder's truncated normal(0.02).
    #[test]
    fn classifier_head_is_glorot_uniform_with_zero_bias() {
        let device = Default::default();
        let config = ElectraConfig {
            vocab_size: 30,
            embedding_size: 16,
            hidden_size: 256,
            num_hidden_layers: 1,
            num_attention_heads: 4,
            intermediate_size: 64,
            ..ElectraConfig::small()
        };
        Flex::seed(&device, 3);
        let model = ElectraForSequenceClassification::<Flex>::new(
            ElectraModel::new(&config, &device),
            &config,
            8,
            &device,
        );
        let w: Vec<f32> = model
            .classifier
            .weight
            .val()
            .into_data()
            .to_vec()
            .expect("f32");
        assert_eq!(w.len(), 256 * 8);
        let bound = (6.0f64 / (256.0 + 8.0)).sqrt();
        let max_abs = w.iter().fold(0.0f32, |m, v| m.max(v.abs())) as f64;
        assert!(
            max_abs <= bound + 1e-7 && max_abs > 0.9 * bound,
            "{max_abs} vs {bound}"
        );
        let std = (w.iter().map(|&v| (v as f64).powi(2)).sum::<f64>() / w.len() as f64).sqrt();
        let uniform = bound / 3f64.sqrt();
        assert!(
            (std / uniform - 1.0).abs() < 0.06,
            "std {std}, uniform {uniform}"
        );
        // A truncated normal(0.02) would never exceed 0.04; Glorot here reaches ~0.15.
        assert!(max_abs > 0.1, "{max_abs}");
        let bias = model.classifier.bias.as_ref().expect("bias").val();
        assert!(
            bias.into_data()
                .to_vec::<f32>()
                .expect("f32")
                .iter()
                .all(|&b| b == 0.0)
        );
    }

    #[test]
    fn cross_entropy_matches_a_hand_computation() {
        let device = Default::default();
        let logits = Tensor::<Flex, 2>::from_floats([[0.0, 0.0], [2.0, 0.0]], &device);
        let labels = Tensor::<Flex, 1, Int>::from_ints([1, 0], &device);
        let sum =
            classification_loss(logits.clone(), labels.clone(), LossReduction::Sum).into_scalar();
        // ln 2 + ln(1 + e^-2)
        let want = 2f32.ln() + (1.0 + (-2f32).exp()).ln();
        assert!((sum - want).abs() < 1e-6, "{sum} vs {want}");
        let mean = classification_loss(logits, labels, LossReduction::Mean).into_scalar();
        assert!((mean - want / 2.0).abs() < 1e-6);
        let out = Tensor::<Flex, 2>::from_floats([[0.5], [0.0]], &device);
        let t = Tensor::<Flex, 1>::from_floats([0.0, 1.0], &device);
        let mse = regression_loss(out, t, LossReduction::Sum).into_scalar();
        assert!((mse - 1.25).abs() < 1e-6);
    }
}
