//! The question-answering model: the pre-trained encoder with one of two heads.
//!
//! **The reference's head** ([`HeadKind::Reference`], `qa_tasks.py` with its defaults
//! `joint_prediction` and `answerable_classifier`; spec 5.1), on the final hidden states
//! `h [b, s, H]` and the answer mask `m` (1 at `[CLS]` and segment-1 tokens):
//! - start logits `start_logits(h) + 1000·(m − 1)` (`start_logits`: Linear H→1);
//! - end logits conditioned on a start `i`: `end_logits(gelu(end_hidden([h_i ; h_j]))) +
//!   1000·(m_j − 1)` (`end_hidden`: Linear 2H→512, the reference's `qa_hidden`; `end_logits`:
//!   Linear 512→1, `qa_logits`). Training uses the gold start; inference keeps the
//!   `beam_size` best starts by log-probability and, for each, the `beam_size` best ends;
//! - the answerability classifier `answerable_logit(gelu(answerable_hidden([h_CLS ;
//!   Σ_j softmax(start)_j h_j])))` (Linears 2H→512 and 512→1), trained with the
//!   sigmoid cross-entropy against `is_impossible` times `answerable_weight` (0.5). As in the
//!   reference it is on by default for 1.1 as well (its target is then always 0 and its
//!   output unused); `answerable_classifier = false` removes it.
//! - loss per window: `(CE(start) + CE(end)) / 2 (+ 0.5 · BCE)`.
//!
//! Its dense layers are initialised as TF's `tf.layers.dense` does (Glorot-uniform kernel,
//! zero bias). `[h_i ; h_j]·W` is computed as `h_i·W_start + h_j·W_end` (the two halves of
//! `end_hidden`'s kernel), which is the same sum without building the `[b, s, 2H]` (or, in
//! the beam, `[b, k, s, 2H]`) concatenation.
//!
//! **Hugging Face's head** ([`HeadKind::HuggingFace`], `ElectraForQuestionAnswering`):
//! `qa_outputs`, one Linear H→2 giving independent start and end logits, no mask, loss
//! `(CE(start) + CE(end)) / 2`; initialised N(0, 0.02) (truncated at two standard deviations,
//! as our encoder's kernels) with a zero bias. It imports from and exports to HF checkpoints
//! ([`crate::squad::hf`]) and matches `transformers` to 1e-5. Post-processing masks its
//! logits the way the reference's non-joint head does (`[CLS]` and context only).

use burn::nn::{Linear, LinearConfig};
use burn::prelude::*;
use burn::tensor::activation::{log_softmax, softmax};
use electra_model::electra::{linear_2d, linear_glorot, truncated_normal};
use electra_model::{ElectraConfig, ElectraModel, InputTensors, kernels};
use serde::{Deserialize, Serialize};

use crate::squad::features::QaBatch;

/// Width of the reference head's hidden layers (`qa_hidden` and the answerability layer).
pub const REFERENCE_HIDDEN: usize = 512;

/// The head to put on an encoder.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeadConfig {
    /// Which head.
    pub kind: HeadKind,
    /// The reference head's answerability classifier.
    pub answerable_classifier: bool,
    /// Width of the reference head's hidden layers ([`REFERENCE_HIDDEN`]; smaller only for
    /// tiny test models).
    pub joint_hidden: usize,
}

impl HeadConfig {
    /// `kind` with the reference's settings (classifier on, width 512).
    pub fn of(kind: HeadKind) -> Self {
        Self {
            kind,
            answerable_classifier: true,
            joint_hidden: REFERENCE_HIDDEN,
        }
    }
}

/// Which question-answering head.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum HeadKind {
    /// The reference's joint head (module docs); `reference` on the command line.
    #[default]
    #[serde(rename = "reference")]
    Reference,
    /// Hugging Face's `ElectraForQuestionAnswering` (`qa_outputs`); `hf`.
    #[serde(rename = "hf")]
    HuggingFace,
}

impl HeadKind {
    /// `reference` or `hf`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Reference => "reference",
            Self::HuggingFace => "hf",
        }
    }
}

impl std::str::FromStr for HeadKind {
    type Err = crate::error::EvalError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "reference" => Ok(Self::Reference),
            "hf" => Ok(Self::HuggingFace),
            other => Err(crate::error::EvalError::InvalidConfig(format!(
                "unknown head `{other}`: expected `reference` (the ELECTRA reference's joint \
                 head) or `hf` (Hugging Face's ElectraForQuestionAnswering)"
            ))),
        }
    }
}

/// The reference's head (module docs).
#[derive(Module, Debug)]
pub struct ReferenceHead<B: Backend> {
    /// Start logits, H→1.
    pub start_logits: Linear<B>,
    /// `qa_hidden`: 2H→512 over `[h_start ; h_end]`, then GELU.
    pub end_hidden: Linear<B>,
    /// `qa_logits`: 512→1.
    pub end_logits: Linear<B>,
    /// The answerability classifier's hidden layer, 2H→512 over `[h_CLS ; start-weighted h]`.
    pub answerable_hidden: Option<Linear<B>>,
    /// Its output, 512→1: the logit of "unanswerable".
    pub answerable_logit: Option<Linear<B>>,
}

/// The encoder with a question-answering head: exactly one of `qa_outputs` (HF) and
/// `reference` is present. With `qa_outputs` the parameters are named as HF's
/// `ElectraForQuestionAnswering` (`electra.*`, `qa_outputs.*`).
#[derive(Module, Debug)]
pub struct ElectraForSquad<B: Backend> {
    /// The pre-trained encoder.
    pub electra: ElectraModel<B>,
    /// HF's head: Linear H→2 (start, end).
    pub qa_outputs: Option<Linear<B>>,
    /// The reference's head.
    pub reference: Option<ReferenceHead<B>>,
}

/// What the head gives for one window at inference.
#[derive(Clone, Debug, PartialEq)]
pub enum WindowOutput {
    /// The reference head: the beam.
    Joint {
        /// The best starts: `(position, log-probability)`, best first.
        starts: Vec<(usize, f32)>,
        /// For each start, its best ends: `(position, log-probability)`, best first.
        ends: Vec<Vec<(usize, f32)>>,
        /// The window's no-answer score: the logit of "unanswerable" when the answerability
        /// classifier is on, else (as the reference computes it then) the start logit of
        /// `[CLS]` plus the end logits it keeps at inference, which are zeros.
        null_score: f32,
        /// Whether `null_score` is the answerability classifier's.
        from_classifier: bool,
    },
    /// HF's head: every position's start and end logit (the window's real length).
    Independent {
        /// Start logits.
        start: Vec<f32>,
        /// End logits.
        end: Vec<f32>,
    },
}

/// A window's training targets: start, end (positions in its input) and `is_impossible`.
pub type Targets = (usize, usize, bool);

fn linear_normal<B: Backend>(d_in: usize, d_out: usize, std: f64, device: &B::Device) -> Linear<B> {
    let mut linear = LinearConfig::new(d_in, d_out)
        .with_initializer(burn::nn::Initializer::Zeros)
        .init(device);
    linear.weight = burn::module::Param::from_tensor(truncated_normal([d_in, d_out], std, device));
    linear
}

/// The best `k` of `values`: `(index, value)`, largest first, lower index first on ties (as
/// TF's `top_k`).
pub fn top_k(values: &[f32], k: usize) -> Vec<(usize, f32)> {
    let mut order: Vec<usize> = (0..values.len()).collect();
    order.sort_by(|&a, &b| values[b].total_cmp(&values[a]));
    order.truncate(k);
    order.into_iter().map(|i| (i, values[i])).collect()
}

impl<B: Backend> ElectraForSquad<B> {
    /// Puts a fresh `head` on `electra` (seed the backend first).
    pub fn new(
        electra: ElectraModel<B>,
        config: &ElectraConfig,
        head: &HeadConfig,
        device: &B::Device,
    ) -> Self {
        let h = config.hidden_size;
        let (answerable, width) = (head.answerable_classifier, head.joint_hidden);
        match head.kind {
            HeadKind::HuggingFace => Self {
                electra,
                qa_outputs: Some(linear_normal(h, 2, config.initializer_range, device)),
                reference: None,
            },
            HeadKind::Reference => Self {
                electra,
                qa_outputs: None,
                reference: Some(ReferenceHead {
                    start_logits: linear_glorot(h, 1, device),
                    end_hidden: linear_glorot(2 * h, width, device),
                    end_logits: linear_glorot(width, 1, device),
                    answerable_hidden: answerable.then(|| linear_glorot(2 * h, width, device)),
                    answerable_logit: answerable.then(|| linear_glorot(width, 1, device)),
                }),
            },
        }
    }

    /// Which head this model has.
    pub fn head(&self) -> HeadKind {
        if self.qa_outputs.is_some() {
            HeadKind::HuggingFace
        } else {
            HeadKind::Reference
        }
    }

    fn hidden(&self, input: &InputTensors<B>) -> Tensor<B, 3> {
        self.electra.forward(
            input.input_ids.clone(),
            input.token_type_ids.clone(),
            input.attention_mask.clone(),
        )
    }

    /// HF's start and end logits `[b, s]` each (no mask), as `ElectraForQuestionAnswering`
    /// returns them; `None` for the reference head.
    pub fn hf_logits(&self, input: &InputTensors<B>) -> Option<(Tensor<B, 2>, Tensor<B, 2>)> {
        let qa = self.qa_outputs.as_ref()?;
        let hidden = self.hidden(input);
        let [b, s, _] = hidden.dims();
        let logits = linear_2d(qa, hidden);
        let start = logits.clone().slice([0..b, 0..s, 0..1]).reshape([b, s]);
        let end = logits.slice([0..b, 0..s, 1..2]).reshape([b, s]);
        Some((start, end))
    }

    /// Per-window training losses `[b]` (see the module docs) for `targets`, one per row.
    pub fn losses(
        &self,
        batch: &QaBatch<B>,
        targets: &[Targets],
        answerable_weight: f64,
    ) -> Tensor<B, 1> {
        let device = batch.input.input_ids.device();
        let b = targets.len();
        let starts = positions::<B>(targets.iter().map(|t| t.0), &device);
        let ends = positions::<B>(targets.iter().map(|t| t.1), &device);
        if let Some((start, end)) = self.hf_logits(&batch.input) {
            return (kernels::cross_entropy(start, starts) + kernels::cross_entropy(end, ends))
                .div_scalar(2.0);
        }
        let Some(head) = &self.reference else {
            unreachable!("a model has one head")
        };
        let hidden = self.hidden(&batch.input);
        let mask_add = mask_add::<B>(batch, &device);
        let start_logits = start_logits(head, hidden.clone(), mask_add.clone());
        let gold: Vec<usize> = targets.iter().map(|t| t.0).collect();
        let h_start = gather_rows(hidden.clone(), &gold);
        let end = end_logits(head, hidden.clone(), h_start).reshape([b, batch.seq_len]) + mask_add;
        let mut loss = (kernels::cross_entropy(start_logits.clone(), starts)
            + kernels::cross_entropy(end, ends))
        .div_scalar(2.0);
        if let Some(logit) = answerable_logit(head, hidden, start_logits) {
            let y: Vec<f32> = targets.iter().map(|t| f32::from(u8::from(t.2))).collect();
            let y = Tensor::<B, 1>::from_floats(y.as_slice(), &device);
            loss = loss + binary_cross_entropy(logit, y).mul_scalar(answerable_weight);
        }
        loss
    }

    /// The head's outputs for every row of `batch` (no gradients needed): the beam of `beam`
    /// starts × `beam` ends for the reference head, the logits for HF's.
    pub fn infer(&self, batch: &QaBatch<B>, beam: usize) -> Vec<WindowOutput> {
        if let Some((start, end)) = self.hf_logits(&batch.input) {
            let start = host(start);
            let end = host(end);
            let s = batch.seq_len;
            return batch
                .lengths
                .iter()
                .enumerate()
                .map(|(row, &len)| WindowOutput::Independent {
                    start: start[row * s..row * s + len].to_vec(),
                    end: end[row * s..row * s + len].to_vec(),
                })
                .collect();
        }
        let Some(head) = &self.reference else {
            unreachable!("a model has one head")
        };
        let device = batch.input.input_ids.device();
        let hidden = self.hidden(&batch.input);
        let [b, s, h] = hidden.dims();
        let mask_add = mask_add::<B>(batch, &device);
        let start_logits = start_logits(head, hidden.clone(), mask_add.clone());
        let start_log_probs = host(log_softmax(start_logits.clone(), 1));
        let cls_start: Vec<f32> = host(start_logits.clone().slice([0..b, 0..1]));
        let answerable = answerable_logit(head, hidden.clone(), start_logits).map(host);
        let k = beam.min(s).max(1);
        let starts: Vec<Vec<(usize, f32)>> = batch
            .lengths
            .iter()
            .enumerate()
            .map(|(row, &len)| top_k(&start_log_probs[row * s..row * s + len], k))
            .collect();
        // Rows with fewer real positions than `k` repeat their last start to fill the beam.
        let flat: Vec<usize> = starts
            .iter()
            .flat_map(|row| (0..k).map(move |i| row[i.min(row.len() - 1)].0))
            .collect();
        let h_start = gather_rows_k(hidden.clone(), &flat, k).reshape([b, k, 1, h]);
        let end =
            end_logits(head, hidden, h_start).reshape([b, k, s]) + mask_add.reshape([b, 1, s]);
        let end_log_probs = host(log_softmax(end, 2));
        (0..b)
            .map(|row| {
                let len = batch.lengths[row];
                let ends = (0..starts[row].len())
                    .map(|i| {
                        let at = (row * k + i) * s;
                        top_k(&end_log_probs[at..at + len], k)
                    })
                    .collect();
                WindowOutput::Joint {
                    starts: starts[row].clone(),
                    ends,
                    null_score: answerable.as_ref().map_or(cls_start[row], |a| a[row]),
                    from_classifier: answerable.is_some(),
                }
            })
            .collect()
    }
}

fn host<B: Backend, const D: usize>(t: Tensor<B, D>) -> Vec<f32> {
    t.into_data().iter::<f32>().collect()
}

fn positions<B: Backend>(
    values: impl Iterator<Item = usize>,
    device: &B::Device,
) -> Tensor<B, 1, Int> {
    let v: Vec<i64> = values.map(|p| p as i64).collect();
    let n = v.len();
    Tensor::from_data(TensorData::new(v, [n]), device)
}

/// `1000·(m − 1)` `[b, s]`: 0 where an answer may be, −1000 elsewhere.
fn mask_add<B: Backend>(batch: &QaBatch<B>, device: &B::Device) -> Tensor<B, 2> {
    let b = batch.lengths.len();
    let values: Vec<f32> = batch
        .answer_mask
        .iter()
        .map(|m| 1000.0 * (m - 1.0))
        .collect();
    Tensor::<B, 1>::from_floats(values.as_slice(), device).reshape([b, batch.seq_len])
}

/// Masked start logits `[b, s]`.
fn start_logits<B: Backend>(
    head: &ReferenceHead<B>,
    hidden: Tensor<B, 3>,
    mask_add: Tensor<B, 2>,
) -> Tensor<B, 2> {
    let [b, s, _] = hidden.dims();
    linear_2d(&head.start_logits, hidden).reshape([b, s]) + mask_add
}

/// Row `r`'s hidden state at position `index[r]`: `[b, s, H]` → `[b, H]`.
fn gather_rows<B: Backend>(hidden: Tensor<B, 3>, index: &[usize]) -> Tensor<B, 2> {
    let [b, s, h] = hidden.dims();
    let flat: Vec<i64> = index
        .iter()
        .enumerate()
        .map(|(r, &i)| (r * s + i) as i64)
        .collect();
    let idx = Tensor::<B, 1, Int>::from_data(TensorData::new(flat, [b]), &hidden.device());
    hidden.reshape([b * s, h]).select(0, idx)
}

/// `k` hidden states per row: `index` holds `k` positions per row → `[b·k, H]`.
fn gather_rows_k<B: Backend>(hidden: Tensor<B, 3>, index: &[usize], k: usize) -> Tensor<B, 2> {
    let [b, s, h] = hidden.dims();
    let flat: Vec<i64> = index
        .iter()
        .enumerate()
        .map(|(n, &i)| ((n / k) * s + i) as i64)
        .collect();
    let idx = Tensor::<B, 1, Int>::from_data(TensorData::new(flat, [b * k]), &hidden.device());
    hidden.reshape([b * s, h]).select(0, idx)
}

/// End logits (before the mask) for `k` starts per row, `h_start` holding `b·k·H` values
/// (row-major by row, then start): `end_logits(gelu(h_start·W_start + h_j·W_end + bias))`
/// for every position `j` → `[b, k, s, 1]`.
fn end_logits<B: Backend, const D: usize>(
    head: &ReferenceHead<B>,
    hidden: Tensor<B, 3>,
    h_start: Tensor<B, D>,
) -> Tensor<B, 4> {
    let [b, s, h] = hidden.dims();
    let weight = head.end_hidden.weight.val();
    let width = weight.dims()[1];
    let w_start = weight.clone().slice([0..h, 0..width]);
    let w_end = weight.slice([h..2 * h, 0..width]);
    let n = h_start.shape().num_elements() / h;
    let starts = h_start.reshape([n, h]);
    let k = n / b;
    let mut start_part = starts.matmul(w_start);
    if let Some(bias) = &head.end_hidden.bias {
        start_part = start_part + bias.val().reshape([1, width]);
    }
    let end_part = hidden
        .reshape([b * s, h])
        .matmul(w_end)
        .reshape([b, 1, s, width]);
    let pre = start_part.reshape([b, k, 1, width]) + end_part;
    let act = kernels::gelu(pre).reshape([b * k * s, width]);
    head.end_logits.forward(act).reshape([b, k, s, 1])
}

/// The answerability logit `[b]` from `[h_CLS ; Σ softmax(start)·h]`, if the head has one.
fn answerable_logit<B: Backend>(
    head: &ReferenceHead<B>,
    hidden: Tensor<B, 3>,
    start_logits: Tensor<B, 2>,
) -> Option<Tensor<B, 1>> {
    let (dense, out) = (
        head.answerable_hidden.as_ref()?,
        head.answerable_logit.as_ref()?,
    );
    let [b, s, h] = hidden.dims();
    let p = softmax(start_logits, 1).reshape([b, 1, s]);
    let weighted = p.matmul(hidden.clone()).reshape([b, h]);
    let cls = hidden.slice([0..b, 0..1, 0..h]).reshape([b, h]);
    let features = Tensor::cat(vec![cls, weighted], 1);
    let act = kernels::gelu(dense.forward(features));
    Some(out.forward(act).reshape([b]))
}

/// Sigmoid cross-entropy of logits `x` against targets `y` in {0, 1}, stably:
/// `max(x, 0) − x·y + log(1 + e^(−|x|))`.
fn binary_cross_entropy<B: Backend>(x: Tensor<B, 1>, y: Tensor<B, 1>) -> Tensor<B, 1> {
    x.clone().clamp_min(0.0) - x.clone() * y + (x.abs().neg().exp() + 1.0).log()
}
