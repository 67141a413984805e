//! End-to-end throughput of the real pre-training step and of inference, for `cargo xtask bench`
//! and `cargo xtask compare-pytorch` (through the `throughput` binary).
//!
//! The training step is the trainer's (`electra-train::trainer`), minus data loading and
//! metrics: `ElectraPretrainingModel::step` (masking, generator, Gumbel sampling,
//! discriminator, losses), the loss read back to the host, `backward`,
//! `GradientsParams::from_grads`, and `ElectraAdam::step` (global-norm clipping, reference
//! Adam, decoupled weight decay). Inference is the discriminator (embeddings, tower, RTD head)
//! on the inner backend, without autodiff and dropout. Both run on [`synthetic_host_batch`],
//! which the PyTorch reference script (`benches/reference/electra_step.py`) builds the same way.

use std::time::Instant;

use burn::module::AutodiffModule;
use burn::optim::GradientsParams;
use burn::prelude::*;
use burn::tensor::backend::AutodiffBackend;
use electra_eval::finetune::FinetuneConfig;
use electra_eval::metrics::median;
use electra_eval::model::{ElectraForSequenceClassification, classification_loss};
use electra_eval::squad::finetune::{SquadConfig, SquadTuner, synthetic_batch as squad_batch};
use electra_eval::squad::model::HeadKind;
use electra_model::{ElectraConfig, ElectraModel, InputTensors, additive_attention_mask};
use electra_objective::masking::max_predictions;
use electra_objective::{ElectraPretrainingModel, HostBatch};
use electra_train::ElectraAdam;
use electra_train::config::RunConfig;
use serde::Serialize;

use crate::flops::StepFlops;

/// Learning rate of the measured steps (ELECTRA-Small's peak; its value does not affect speed).
pub const BENCH_LR: f64 = 5e-4;

/// The batch both sides measure: `batch` rows of `seq` real tokens, `[CLS]` (101) first,
/// `[SEP]` (102) last, ordinary ids `1000 + ((row·seq + t)·7919 mod (V − 1000))` between, one
/// segment. Deterministic, so both processes see the same ids.
pub fn synthetic_host_batch(batch: usize, seq: usize, vocab: usize) -> HostBatch {
    let span = vocab.saturating_sub(1000).max(1) as u64;
    let mut ids = Vec::with_capacity(batch * seq);
    for row in 0..batch {
        for t in 0..seq {
            let id = if t == 0 {
                101
            } else if t + 1 == seq {
                102
            } else {
                1000 + (((row * seq + t) as u64 * 7919) % span) as i64
            };
            ids.push(id);
        }
    }
    HostBatch {
        input_ids: ids,
        token_type_ids: vec![0; batch * seq],
        attention_mask: vec![1; batch * seq],
        batch,
        seq,
        max_seq_len: seq,
    }
}

/// What to time.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// The full training step.
    Step,
    /// Discriminator inference.
    Forward,
    /// One GLUE fine-tuning step: the discriminator's encoder with a fresh two-class `[CLS]`
    /// head (dropout + linear), the summed cross-entropy, backward and the reference Adam.
    Finetune,
    /// One SQuAD fine-tuning step with Hugging Face's question-answering head
    /// (`ElectraForQuestionAnswering`: independent start and end logits), the recipe's loss and
    /// Adam (`electra_eval::squad::finetune::SquadTuner`), on a synthetic batch of questions of
    /// up to 64 tokens and their contexts.
    Squad,
}

/// The shapes of one measurement.
#[derive(Clone, Debug, Serialize)]
pub struct Shape {
    /// Run preset (`electra-train` presets: `tiny`, `small`, ...).
    pub preset: String,
    /// Sequences per step.
    pub batch: usize,
    /// Tokens per sequence.
    pub seq: usize,
}

/// The model configs of a preset, as the trainer builds them; what the reference script needs
/// to build the same networks (HF `ElectraConfig` field names).
#[derive(Clone, Debug, Serialize)]
pub struct Description {
    /// The discriminator's config.
    pub discriminator: ElectraConfig,
    /// The generator's config (spec 2.4).
    pub generator: ElectraConfig,
    /// Prediction slots per sequence.
    pub slots: usize,
    /// Objective settings the reference must copy.
    pub mask_prob: f64,
    /// Generator loss weight (1).
    pub gen_weight: f64,
    /// Discriminator loss weight λ (50).
    pub disc_weight: f64,
    /// Gumbel sampling temperature (1).
    pub temperature: f64,
    /// Special token ids.
    pub pad_token_id: i64,
    /// `[CLS]`.
    pub cls_token_id: i64,
    /// `[SEP]`.
    pub sep_token_id: i64,
    /// `[MASK]`.
    pub mask_token_id: i64,
    /// Adam β1, β2, ε, weight decay, clip norm.
    pub adam: [f64; 5],
    /// Learning rate of the measured steps.
    pub lr: f64,
}

/// The preset's run config with the measured sequence length.
pub fn run_config(preset: &str, seq: usize) -> Result<RunConfig, String> {
    let mut config = RunConfig::preset(preset).map_err(|e| e.to_string())?;
    config.data.max_seq_len = seq;
    Ok(config)
}

/// The configs of `preset` at sequence length `seq`.
pub fn describe(config: &RunConfig, seq: usize) -> Result<Description, String> {
    let o = &config.objective;
    let generator = o
        .generator_config(&config.model)
        .map_err(|e| e.to_string())?;
    let a = &config.optimizer;
    Ok(Description {
        discriminator: config.model.clone(),
        generator,
        slots: max_predictions(o.mask_prob, seq),
        mask_prob: o.mask_prob,
        gen_weight: o.gen_weight,
        disc_weight: o.disc_weight,
        temperature: o.temperature,
        pad_token_id: o.pad_token_id,
        cls_token_id: o.cls_token_id,
        sep_token_id: o.sep_token_id,
        mask_token_id: o.mask_token_id,
        adam: [
            a.beta1,
            a.beta2,
            a.epsilon,
            a.weight_decay,
            a.clip_norm.unwrap_or(0.0),
        ],
        lr: BENCH_LR,
    })
}

/// Timings of one measurement.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    /// Who measured (`electra-rs` here; the reference script writes `pytorch` or `pytorch-hf`).
    pub implementation: String,
    /// What was timed.
    pub mode: Mode,
    /// Shapes.
    pub shape: Shape,
    /// The backend and device (`flex`, `cuda:0`, ...).
    pub device: String,
    /// Worker threads (rayon's pool).
    pub threads: usize,
    /// The CPU, the vector instructions in use and the load at the start.
    pub cpu: crate::cpu::CpuInfo,
    /// Untimed steps before the timed ones.
    pub warmup: usize,
    /// Seconds of each timed step.
    pub step_seconds: Vec<f64>,
    /// Median of `step_seconds`.
    pub median_seconds: f64,
    /// `batch·seq / median_seconds` (every token is real).
    pub tokens_per_second: f64,
    /// `batch / median_seconds`.
    pub sequences_per_second: f64,
    /// Model FLOPs per sequence ([`crate::flops`]).
    pub flops_per_sequence: f64,
    /// Achieved model FLOP/s at the median, in TFLOP/s.
    pub achieved_tflops: f64,
    /// The peak the utilisation assumes, TFLOP/s.
    pub peak_tflops: f64,
    /// `achieved_tflops / peak_tflops`.
    pub mfu: f64,
    /// Peak resident memory of the process, MiB (`VmHWM`).
    pub peak_rss_mib: Option<f64>,
    /// Loss of the last timed step (training), a sanity check that the step computed something.
    pub last_loss: Option<f64>,
    /// Parameters of the measured model.
    pub parameters: usize,
}

/// Peak resident set size of this process in MiB, from `/proc/self/status` (`VmHWM`); `None`
/// where that file does not exist (not Linux).
pub fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

/// Settings of [`measure`].
#[derive(Clone, Debug)]
pub struct Settings {
    /// Run preset.
    pub preset: String,
    /// Sequences per step.
    pub batch: usize,
    /// Tokens per sequence.
    pub seq: usize,
    /// Untimed steps first.
    pub warmup: usize,
    /// Timed steps.
    pub steps: usize,
    /// What to time.
    pub mode: Mode,
    /// Assumed peak, TFLOP/s.
    pub peak_tflops: f64,
    /// The device as given (reported only).
    pub device: String,
    /// Worker threads in use (reported only).
    pub threads: usize,
}

/// Builds the preset's model (seeded from the run config) and times `settings.steps` steps
/// after `settings.warmup` untimed ones.
pub fn measure<B: AutodiffBackend>(
    settings: &Settings,
    device: &B::Device,
) -> Result<Report, String> {
    let cpu = crate::cpu::CpuInfo::detect();
    let config = run_config(&settings.preset, settings.seq)?;
    config.validate().map_err(|e| e.to_string())?;
    let description = describe(&config, settings.seq)?;
    let flops = StepFlops::new(
        &description.discriminator,
        &description.generator,
        settings.seq,
        description.slots,
    );
    B::seed(device, config.seed);
    let model = ElectraPretrainingModel::<B>::new(&config.model, &config.objective, device)
        .map_err(|e| e.to_string())?;
    let batch = synthetic_host_batch(settings.batch, settings.seq, config.model.vocab_size);
    let total = settings.warmup + settings.steps;
    let mut seconds = Vec::with_capacity(settings.steps);
    let mut last_loss = None;
    let (parameters, flops_per_sequence) = match settings.mode {
        Mode::Step => {
            let parameters = model.num_params();
            let mut optimizer =
                ElectraAdam::<B>::new(config.optimizer.clone()).map_err(|e| e.to_string())?;
            let mut model = model;
            for i in 0..total {
                let started = Instant::now();
                let out = model.step(&batch, i as u64).map_err(|e| e.to_string())?;
                let loss = out.loss.clone().into_scalar().elem::<f64>();
                let grads = GradientsParams::from_grads(out.loss.backward(), &model);
                let (next, _) = optimizer.step(BENCH_LR, model, grads, &|_| 1.0);
                model = next;
                B::sync(device).map_err(|e| format!("{e:?}"))?;
                if i >= settings.warmup {
                    seconds.push(started.elapsed().as_secs_f64());
                    last_loss = Some(loss);
                }
            }
            (parameters, flops.step())
        }
        Mode::Finetune => {
            let encoder = ElectraModel::new(&config.model, device);
            let mut model =
                ElectraForSequenceClassification::new(encoder, &config.model, 2, device);
            let parameters = model.num_params();
            let finetune = FinetuneConfig::default();
            let mut optimizer =
                ElectraAdam::<B>::new(finetune.optimizer.clone()).map_err(|e| e.to_string())?;
            let (b, s) = (settings.batch, settings.seq);
            let labels: Vec<i64> = (0..b as i64).map(|i| i % 2).collect();
            for i in 0..total {
                let started = Instant::now();
                let input = InputTensors {
                    input_ids: Tensor::<B, 1, Int>::from_data(
                        TensorData::new(batch.input_ids.clone(), [b * s]),
                        device,
                    )
                    .reshape([b, s]),
                    token_type_ids: Tensor::zeros([b, s], device),
                    attention_mask: Tensor::ones([b, s], device),
                };
                let classes =
                    Tensor::<B, 1, Int>::from_data(TensorData::new(labels.clone(), [b]), device);
                let loss =
                    classification_loss(model.forward(input), classes, finetune.loss_reduction);
                let value = loss.clone().into_scalar().elem::<f64>();
                let grads = GradientsParams::from_grads(loss.backward(), &model);
                model = optimizer.step(BENCH_LR, model, grads, &|_| 1.0).0;
                B::sync(device).map_err(|e| format!("{e:?}"))?;
                if i >= settings.warmup {
                    seconds.push(started.elapsed().as_secs_f64());
                    last_loss = Some(value);
                }
            }
            // Forward and backward of the discriminator's encoder (the head is negligible).
            (parameters, 3.0 * flops.inference())
        }
        Mode::Squad => {
            let (b, s) = (settings.batch, settings.seq);
            let squad = SquadConfig {
                head: HeadKind::HuggingFace,
                ..SquadConfig::default()
            };
            let recipe = squad.recipe(&config.model);
            let encoder = ElectraModel::new(&config.model, device);
            let mut tuner = SquadTuner::new(encoder, &config.model, &recipe, &squad, device)
                .map_err(|e| e.to_string())?;
            let parameters = tuner.model.num_params();
            let query = squad.windows.max_query_length.min(s / 4);
            let (qa, targets) = squad_batch::<B>(b, s, query, config.model.vocab_size, device);
            for i in 0..total {
                let started = Instant::now();
                let (loss, _) = tuner
                    .step_batch(&qa, &targets, BENCH_LR)
                    .map_err(|e| e.to_string())?;
                B::sync(device).map_err(|e| format!("{e:?}"))?;
                if i >= settings.warmup {
                    seconds.push(started.elapsed().as_secs_f64());
                    last_loss = Some(loss);
                }
            }
            // Forward and backward of the encoder (the head is negligible).
            (parameters, 3.0 * flops.inference())
        }
        Mode::Forward => {
            let model = model.valid();
            let head = model
                .discriminator_predictions
                .as_ref()
                .ok_or("the ELECTRA objective has an RTD head")?;
            let parameters = model.embeddings.num_params()
                + model.discriminator.num_params()
                + head.num_params();
            let inner = model.device();
            let (b, s) = (settings.batch, settings.seq);
            for i in 0..total {
                let started = Instant::now();
                let ids = Tensor::<B::InnerBackend, 1, Int>::from_data(
                    TensorData::new(batch.input_ids.clone(), [b * s]),
                    &inner,
                )
                .reshape([b, s]);
                let types = Tensor::<B::InnerBackend, 2, Int>::zeros([b, s], &inner);
                let mask = additive_attention_mask(Tensor::<B::InnerBackend, 2, Int>::ones(
                    [b, s],
                    &inner,
                ));
                let logits = head.forward(model.discriminator_hidden(ids, types, mask));
                // Reading the logits back finishes the computation on any backend.
                let data = logits.into_data();
                if i >= settings.warmup {
                    seconds.push(started.elapsed().as_secs_f64());
                    last_loss = data.iter::<f64>().next();
                }
            }
            (parameters, flops.inference())
        }
    };
    let median_seconds = median(&seconds);
    let tokens = (settings.batch * settings.seq) as f64;
    let achieved = flops_per_sequence * settings.batch as f64 / median_seconds / 1e12;
    Ok(Report {
        implementation: "electra-rs".into(),
        mode: settings.mode,
        shape: Shape {
            preset: settings.preset.clone(),
            batch: settings.batch,
            seq: settings.seq,
        },
        device: settings.device.clone(),
        threads: settings.threads,
        cpu,
        warmup: settings.warmup,
        step_seconds: seconds,
        median_seconds,
        tokens_per_second: tokens / median_seconds,
        sequences_per_second: settings.batch as f64 / median_seconds,
        flops_per_sequence,
        achieved_tflops: achieved,
        peak_tflops: settings.peak_tflops,
        mfu: achieved / settings.peak_tflops,
        peak_rss_mib: peak_rss_mib(),
        last_loss: if settings.mode != Mode::Forward {
            last_loss
        } else {
            None
        },
        parameters,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_synthetic_batch_is_framed_and_in_range() {
        let b = synthetic_host_batch(3, 8, 30522);
        assert_eq!(b.input_ids.len(), 24);
        for row in 0..3 {
            assert_eq!(b.input_ids[row * 8], 101);
            assert_eq!(b.input_ids[row * 8 + 7], 102);
            assert!(
                b.input_ids[row * 8 + 1..row * 8 + 7]
                    .iter()
                    .all(|&id| (1000..30522).contains(&id))
            );
        }
        // Row 1, token 1: 1000 + (9·7919 mod 29522) = 1000 + 12227.
        assert_eq!(b.input_ids[9], 1000 + (9 * 7919) % 29522);
        assert_eq!(b.real_tokens(2), 8);
    }

    #[test]
    fn peak_rss_is_read_on_linux() {
        if cfg!(target_os = "linux") {
            let mib = peak_rss_mib().expect("VmHWM");
            assert!(mib > 1.0, "{mib}");
        }
    }
}
