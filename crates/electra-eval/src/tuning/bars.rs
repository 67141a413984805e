//! The fine-tuning commands' terminal progress: one bar per epoch (and any other bar a task
//! family starts, such as SQuAD's evaluation), and a line per step in `metrics.jsonl` (`task`,
//! `seed`, `step`, `epoch`, `loss`, `lr`, `grad_norm`). indicatif draws the bars only on a
//! terminal. Each task family implements its observer trait on [`StepBars`] in its own folder.

use std::io::Write as _;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

use crate::tuning::epochs::{Progress, StepRecord};

/// Progress bars writing the per-step lines to `metrics.jsonl`.
pub struct StepBars {
    /// What the bars are labelled with (e.g. `RTE seed 3`).
    pub label: String,
    /// The task written in each metrics line.
    pub task: String,
    /// The seed written in each metrics line.
    pub seed: u64,
    bar: Option<ProgressBar>,
    metrics: std::fs::File,
}

impl StepBars {
    /// Bars writing the per-step lines to `metrics`.
    pub fn new(metrics: std::fs::File, task: &str) -> Self {
        Self {
            label: String::new(),
            task: task.to_string(),
            seed: 0,
            bar: None,
            metrics,
        }
    }

    /// Starts a bar of `len` `unit`s with `prefix`.
    pub fn start(&mut self, len: usize, prefix: String, unit: &str) {
        let bar = ProgressBar::new(len as u64);
        if let Ok(style) = ProgressStyle::with_template(&format!(
            "{{prefix}} [{{elapsed_precise}}] {{bar:30}} {{pos}}/{{len}} {unit} {{msg}}"
        )) {
            bar.set_style(style);
        }
        bar.set_prefix(prefix);
        bar.enable_steady_tick(Duration::from_millis(500));
        self.bar = Some(bar);
    }

    /// Advances the current bar by `n`.
    pub fn advance(&self, n: usize) {
        if let Some(bar) = &self.bar {
            bar.inc(n as u64);
        }
    }

    /// Ends the current bar, if any, with `message`.
    pub fn finish(&mut self, message: String) {
        if let Some(bar) = self.bar.take() {
            bar.finish_with_message(message);
        }
    }
}

impl Progress for StepBars {
    fn epoch_start(&mut self, epoch: usize, epochs: usize, steps: usize) {
        let prefix = format!("{} epoch {}/{epochs}", self.label, epoch + 1);
        self.start(steps, prefix, "steps");
    }

    fn step(&mut self, r: &StepRecord) {
        if let Some(bar) = &self.bar {
            bar.inc(1);
            bar.set_message(format!("loss {:.4} lr {:.2e}", r.loss, r.lr));
        }
        let line = serde_json::json!({
            "task": self.task, "seed": self.seed, "step": r.step, "epoch": r.epoch,
            "loss": r.loss, "lr": r.lr, "grad_norm": r.grad_norm,
        });
        if let Err(e) = writeln!(self.metrics, "{line}") {
            tracing::warn!("cannot write metrics.jsonl: {e}");
        }
    }

    fn epoch_end(&mut self, _epoch: usize, mean_loss: f64) {
        self.finish(format!("mean loss {mean_loss:.4}"));
    }
}
