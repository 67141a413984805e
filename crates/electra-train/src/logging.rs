//! What the loop logs, typed end to end: each step's [`StepRecord`], the mean of the steps
//! since the last log as a [`LoggedMetrics`] (written to `metrics.jsonl` and told to the
//! observer), and each evaluation. The string-keyed [`Record`] appears only where a line of
//! `metrics.jsonl` is written, through the key table of [`crate::observer`].
//!
//! Means ([`mean`]): per metric, the values summed in order starting from `0.0` and divided
//! by the number of records that have the metric (an optional metric counts only where it is
//! `Some`). A step's objective metrics are the mean over its micro-batches (of every peer and
//! node, in peer then node order); a logged record is the mean over its steps.

use std::path::Path;
use std::time::Instant;

use electra_objective::StepMetrics;

use crate::error::TrainError;
use crate::metrics::{MetricsLog, Record};
use crate::observer::{LoggedMetrics, OBJECTIVE_KEYS, TrainObserver};

/// The key prefix of evaluation records in `metrics.jsonl`.
pub(crate) const EVAL_PREFIX: &str = "eval_";

/// What one optimizer step reports.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct StepRecord {
    /// The objective's metrics, the mean over the step's micro-batches.
    pub metrics: StepMetrics,
    /// The schedule's learning rate of the step.
    pub lr: f64,
    /// The global gradient norm before clipping.
    pub grad_norm: f64,
    /// Real (non-pad) tokens trained on in the step (every node's).
    pub tokens: usize,
    /// `tokens` per second of the step.
    pub tokens_per_sec: f64,
    /// Seconds the step took (at least 1 ns).
    pub step_seconds: f64,
}

impl StepRecord {
    /// The record of a step that started at `started` and computed `micro_metrics`.
    pub fn new(
        micro_metrics: &[StepMetrics],
        lr: f64,
        grad_norm: f64,
        tokens: usize,
        started: Instant,
    ) -> Self {
        let metrics = mean(micro_metrics);
        let step_seconds = started.elapsed().as_secs_f64().max(1e-9);
        Self {
            metrics,
            lr,
            grad_norm,
            tokens,
            tokens_per_sec: tokens as f64 / step_seconds,
            step_seconds,
        }
    }
}

/// The mean of each objective metric over `records` (see the module docs). The sums start
/// from `0.0` on purpose: `Iterator::sum` starts from `-0.0`, which differs for a sum of
/// negative zeros. A metric no record has reads as [`LoggedMetrics::unlogged`] has it (NaN
/// losses, `None`); `masked_tokens` is not logged and reads 0.
pub(crate) fn mean<'m>(records: impl IntoIterator<Item = &'m StepMetrics> + Clone) -> StepMetrics {
    let mut out = LoggedMetrics::unlogged().objective;
    for (_, get, set) in OBJECTIVE_KEYS {
        let values = records.clone().into_iter().filter_map(get);
        let (sum, count) = values.fold((0.0, 0.0), |(s, n), v| (s + v, n + 1.0));
        if count > 0.0 {
            set(&mut out, sum / count);
        }
    }
    out
}

/// The logged record of the steps of `window` (not empty), at `step`.
fn window_mean(step: u64, window: &[StepRecord]) -> LoggedMetrics {
    let n = window.len() as f64;
    let avg =
        |value: fn(&StepRecord) -> f64| Some(window.iter().map(value).fold(0.0, |s, v| s + v) / n);
    LoggedMetrics {
        step,
        objective: mean(window.iter().map(|r| &r.metrics)),
        lr: avg(|r| r.lr),
        grad_norm: avg(|r| r.grad_norm),
        tokens_per_sec: avg(|r| r.tokens_per_sec),
        step_seconds: avg(|r| r.step_seconds),
    }
}

/// What the loop has logged: the steps not averaged yet, the last logged record and the last
/// evaluation.
pub(crate) struct Logging {
    /// `None` on the nodes other than node 0, which write nothing.
    log: Option<MetricsLog>,
    window: Vec<StepRecord>,
    /// The last logged record ([`LoggedMetrics::unlogged`] before the first).
    pub last: LoggedMetrics,
    pub last_eval: Option<LoggedMetrics>,
}

impl Logging {
    /// Opens `run_dir/metrics.jsonl` past `start_step` when this node writes (`writer`).
    pub fn open(run_dir: &Path, start_step: u64, writer: bool) -> Result<Self, TrainError> {
        let log = match writer {
            true => Some(MetricsLog::open(
                &run_dir.join("metrics.jsonl"),
                start_step,
            )?),
            false => None,
        };
        Ok(Self {
            log,
            window: Vec::new(),
            last: LoggedMetrics::unlogged(),
            last_eval: None,
        })
    }

    /// Adds step `step`'s record; when `due`, writes the mean of the steps since the last log
    /// and tells the observer.
    pub fn step(
        &mut self,
        record: StepRecord,
        step: u64,
        due: bool,
        observer: &mut dyn TrainObserver,
    ) -> Result<(), TrainError> {
        self.window.push(record);
        if due {
            self.write_window(step)?;
            observer.logged(&self.last);
        }
        Ok(())
    }

    /// Writes the evaluation at `step` (the mean over its batches' `metrics`) and tells the
    /// observer.
    pub fn evaluation(
        &mut self,
        step: u64,
        metrics: &[StepMetrics],
        observer: &mut dyn TrainObserver,
    ) -> Result<(), TrainError> {
        let typed = LoggedMetrics {
            step,
            objective: mean(metrics),
            ..LoggedMetrics::unlogged()
        };
        if let Some(log) = &mut self.log {
            let record = match metrics.is_empty() {
                // An evaluation of no batches (`eval_batches = 0`) has only its step.
                true => Record::from([("step".to_string(), step as f64)]),
                false => typed.to_record(EVAL_PREFIX),
            };
            log.write(&record)?;
        }
        observer.evaluated(&typed);
        self.last_eval = Some(typed);
        Ok(())
    }

    /// Writes the steps not logged yet (a run stopped between two logs).
    pub fn flush(&mut self, step: u64) -> Result<(), TrainError> {
        if self.window.is_empty() {
            return Ok(());
        }
        self.write_window(step)
    }

    fn write_window(&mut self, step: u64) -> Result<(), TrainError> {
        self.last = window_mean(step, &self.window);
        self.window.clear();
        match &mut self.log {
            Some(log) => log.write(&self.last.to_record("")),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn metrics(loss: f64, auc: Option<f64>) -> StepMetrics {
        StepMetrics {
            loss,
            mlm_loss: 2.0 * loss,
            mlm_accuracy: 0.5,
            disc_auc: auc,
            masked_tokens: 9,
            ..StepMetrics::default()
        }
    }

    fn record(loss: f64, auc: Option<f64>, lr: f64) -> StepRecord {
        StepRecord {
            metrics: metrics(loss, auc),
            lr,
            grad_norm: 1.0,
            tokens: 10,
            tokens_per_sec: 100.0,
            step_seconds: 0.1,
        }
    }

    #[test]
    fn an_optional_metric_is_averaged_over_the_records_that_have_it() {
        let m = mean(&[
            metrics(1.0, Some(0.25)),
            metrics(2.0, None),
            metrics(3.0, Some(0.75)),
        ]);
        assert_eq!((m.loss, m.mlm_loss), (2.0, 4.0));
        assert_eq!(m.disc_auc, Some(0.5), "two of three records have an AUC");
        assert_eq!(m.rtd_loss, None, "no record has an RTD loss");
        assert_eq!(m.masked_tokens, 0, "not logged");
    }

    #[test]
    fn sums_start_from_positive_zero_and_run_in_order() {
        let m = mean(&[metrics(-0.0, None), metrics(-0.0, None)]);
        assert!(m.loss == 0.0 && m.loss.is_sign_positive(), "{}", m.loss);
        // In order: (1e16 + 1) + 1 loses both ones; another order would keep them.
        let m = mean(&[metrics(1e16, None), metrics(1.0, None), metrics(1.0, None)]);
        assert_eq!(m.loss, (1e16 + 1.0 + 1.0) / 3.0);
        assert_ne!(m.loss, (1.0 + 1.0 + 1e16) / 3.0);
    }

    #[test]
    fn no_records_read_as_nothing_logged() {
        let m = mean(&[]);
        assert!(m.loss.is_nan() && m.mlm_accuracy.is_nan() && m.disc_auc.is_none());
    }

    #[test]
    fn a_logged_window_writes_the_keys_and_means_of_its_steps() {
        let window = [record(1.0, Some(0.5), 1e-3), record(3.0, None, 3e-3)];
        let logged = window_mean(4, &window);
        let line = logged.to_record("");
        let keys: Vec<&str> = line.keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            [
                "disc_auc",
                "grad_norm",
                "loss",
                "lr",
                "mlm_accuracy",
                "mlm_loss",
                "step",
                "step_seconds",
                "tokens_per_sec"
            ]
        );
        assert_eq!((line["loss"], line["lr"], line["step"]), (2.0, 2e-3, 4.0));
        assert_eq!(line["disc_auc"], 0.5);
        assert_eq!(LoggedMetrics::from_record(&line, ""), logged);
    }

    #[test]
    fn an_evaluation_is_written_with_its_prefix_and_an_empty_one_with_its_step_only() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut logging = Logging::open(dir.path(), 0, true).expect("open");
        let observer = &mut crate::observer::Silent;
        logging
            .evaluation(2, &[metrics(1.0, None), metrics(2.0, None)], observer)
            .expect("eval");
        logging.evaluation(4, &[], observer).expect("empty eval");
        let lines = crate::metrics::read(&dir.path().join("metrics.jsonl")).expect("read");
        assert_eq!(lines[0]["eval_loss"], 1.5);
        assert_eq!(lines[0]["step"], 2.0);
        assert!(!lines[0].contains_key("loss") && !lines[0].contains_key("eval_lr"));
        assert_eq!(lines[1], Record::from([("step".to_string(), 4.0)]));
        let last = logging.last_eval.expect("evaluated");
        assert!(last.objective.loss.is_nan() && last.step == 4);
    }
}
