//! How the loop reports: a [`TrainObserver`] hears about progress, every logged record and
//! every evaluation, as typed [`LoggedMetrics`]. The library draws nothing; the CLI's
//! observer draws a progress bar, [`LogLines`] writes `tracing` lines.
//!
//! [`LoggedMetrics`] and the `metrics.jsonl` keys are one table ([`OBJECTIVE_KEYS`]): a
//! record is written from it and read back through it, so a key cannot be renamed on one side
//! only.

use electra_objective::StepMetrics;

use crate::metrics::Record;

/// Hears about a pre-training run as it goes; every method has a no-op default.
pub trait TrainObserver {
    /// The loop starts at `start_step` (0, or the resumed checkpoint's step) and runs to
    /// `end_step`.
    fn started(&mut self, _start_step: u64, _end_step: u64) {}
    /// Optimizer step `step` (1-based: steps completed) finished.
    fn stepped(&mut self, _step: u64) {}
    /// The mean of the last `log_every` steps was logged to `metrics.jsonl`.
    fn logged(&mut self, _metrics: &LoggedMetrics) {}
    /// An evaluation on the held-out batches finished.
    fn evaluated(&mut self, _metrics: &LoggedMetrics) {}
    /// The loop ended (before the final checkpoint is written).
    fn finished(&mut self) {}
}

/// Reports nothing.
#[derive(Clone, Copy, Debug, Default)]
pub struct Silent;

impl TrainObserver for Silent {}

/// One `tracing` info line per logged record (for runs without a terminal).
#[derive(Clone, Copy, Debug, Default)]
pub struct LogLines;

impl TrainObserver for LogLines {
    fn logged(&mut self, m: &LoggedMetrics) {
        tracing::info!(
            step = m.step,
            loss = m.objective.loss,
            tokens_per_sec = m.tokens_per_sec.unwrap_or(0.0),
            "train"
        );
    }
}

/// A logged record, typed: the objective's metrics (means over the steps and micro-steps
/// logged; `masked_tokens` is not logged and reads 0) and the loop's own numbers (`None` in
/// evaluation records).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LoggedMetrics {
    /// The step the record belongs to.
    pub step: u64,
    /// Losses, accuracies and RTD scores.
    pub objective: StepMetrics,
    /// Base learning rate.
    pub lr: Option<f64>,
    /// Global gradient norm before clipping.
    pub grad_norm: Option<f64>,
    /// Real tokens per second through the training step.
    pub tokens_per_sec: Option<f64>,
    /// Seconds per optimizer step.
    pub step_seconds: Option<f64>,
}

type Get = fn(&StepMetrics) -> Option<f64>;
type Set = fn(&mut StepMetrics, f64);

/// The `metrics.jsonl` key of each objective metric, how to read it and how to set it.
pub const OBJECTIVE_KEYS: [(&str, Get, Set); 11] = [
    ("loss", |m| Some(m.loss), |m, v| m.loss = v),
    ("mlm_loss", |m| Some(m.mlm_loss), |m, v| m.mlm_loss = v),
    (
        "mlm_accuracy",
        |m| Some(m.mlm_accuracy),
        |m, v| m.mlm_accuracy = v,
    ),
    ("rtd_loss", |m| m.rtd_loss, |m, v| m.rtd_loss = Some(v)),
    (
        "target_loss",
        |m| m.target_loss,
        |m, v| m.target_loss = Some(v),
    ),
    (
        "disc_accuracy",
        |m| m.disc_accuracy,
        |m, v| m.disc_accuracy = Some(v),
    ),
    (
        "replaced_precision",
        |m| m.disc_precision,
        |m, v| m.disc_precision = Some(v),
    ),
    (
        "replaced_recall",
        |m| m.disc_recall,
        |m, v| m.disc_recall = Some(v),
    ),
    ("replaced_f1", |m| m.disc_f1, |m, v| m.disc_f1 = Some(v)),
    ("disc_auc", |m| m.disc_auc, |m, v| m.disc_auc = Some(v)),
    (
        "sampled_equals_original",
        |m| m.sampled_equals_original,
        |m, v| m.sampled_equals_original = Some(v),
    ),
];

/// The loop's own keys of a training record.
const LOOP_KEYS: [&str; 4] = ["lr", "grad_norm", "tokens_per_sec", "step_seconds"];

/// One step's objective metrics as a record, each key after `prefix` (`eval_` for evaluation).
pub fn objective_record(m: &StepMetrics, prefix: &str) -> Record {
    OBJECTIVE_KEYS
        .iter()
        .filter_map(|(key, get, _)| Some((format!("{prefix}{key}"), get(m)?)))
        .collect()
}

impl LoggedMetrics {
    /// Reads a logged record (keys after `prefix`). Objective losses missing from it read
    /// NaN, optional metrics `None`.
    pub fn from_record(record: &Record, prefix: &str) -> Self {
        let mut objective = Self::unlogged().objective;
        for (key, _, set) in OBJECTIVE_KEYS {
            if let Some(&v) = record.get(&format!("{prefix}{key}")) {
                set(&mut objective, v);
            }
        }
        let get = |key: &str| record.get(&format!("{prefix}{key}")).copied();
        let [lr, grad_norm, tokens_per_sec, step_seconds] = LOOP_KEYS.map(get);
        Self {
            step: record.get("step").map_or(0, |&s| s as u64),
            objective,
            lr,
            grad_norm,
            tokens_per_sec,
            step_seconds,
        }
    }

    /// What an empty record reads as (nothing logged yet): step 0, NaN losses and accuracy,
    /// every optional value `None`.
    pub fn unlogged() -> Self {
        Self {
            objective: StepMetrics {
                loss: f64::NAN,
                mlm_loss: f64::NAN,
                mlm_accuracy: f64::NAN,
                ..StepMetrics::default()
            },
            ..Self::default()
        }
    }

    /// The record these metrics were read from (keys after `prefix`, with `step`).
    pub fn to_record(&self, prefix: &str) -> Record {
        let mut record = objective_record(&self.objective, prefix);
        let loop_values = [
            self.lr,
            self.grad_norm,
            self.tokens_per_sec,
            self.step_seconds,
        ];
        for (key, value) in LOOP_KEYS.iter().zip(loop_values) {
            if let Some(v) = value {
                record.insert(format!("{prefix}{key}"), v);
            }
        }
        record.insert("step".into(), self.step as f64);
        record
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn every_field() -> LoggedMetrics {
        LoggedMetrics {
            step: 7,
            objective: StepMetrics {
                loss: 1.0,
                mlm_loss: 2.0,
                mlm_accuracy: 0.3,
                rtd_loss: Some(0.4),
                target_loss: Some(0.5),
                disc_accuracy: Some(0.6),
                disc_precision: Some(0.7),
                disc_recall: Some(0.8),
                disc_f1: Some(0.9),
                disc_auc: Some(0.95),
                sampled_equals_original: Some(0.25),
                masked_tokens: 0,
            },
            lr: Some(1e-4),
            grad_norm: Some(3.0),
            tokens_per_sec: Some(1000.0),
            step_seconds: Some(0.5),
        }
    }

    #[test]
    fn every_field_survives_a_record_round_trip() {
        for prefix in ["", "eval_"] {
            let m = every_field();
            let record = m.to_record(prefix);
            assert_eq!(record.len(), 16, "{record:?}");
            assert_eq!(LoggedMetrics::from_record(&record, prefix), m);
        }
    }

    #[test]
    fn the_keys_are_the_documented_metrics_jsonl_names() {
        let record = every_field().to_record("");
        for key in [
            "step",
            "loss",
            "mlm_loss",
            "mlm_accuracy",
            "rtd_loss",
            "target_loss",
            "disc_accuracy",
            "replaced_precision",
            "replaced_recall",
            "replaced_f1",
            "disc_auc",
            "sampled_equals_original",
            "lr",
            "grad_norm",
            "tokens_per_sec",
            "step_seconds",
        ] {
            assert!(record.contains_key(key), "{key} missing from {record:?}");
        }
        let eval = LoggedMetrics::from_record(&record, "eval_");
        assert!(eval.objective.loss.is_nan() && eval.objective.rtd_loss.is_none());
    }
}
