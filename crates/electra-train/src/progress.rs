//! The terminal progress bar of a pre-training run: steps done, the last logged losses and
//! the throughput. indicatif draws it only on a terminal (standard error), so a run whose
//! output goes to a file or a pipe gets none.

use indicatif::{ProgressBar, ProgressStyle};

use crate::observer::{LoggedMetrics, TrainObserver};

/// A [`TrainObserver`] that draws a progress bar.
#[derive(Default)]
pub struct Bar {
    bar: Option<ProgressBar>,
}

impl TrainObserver for Bar {
    fn started(&mut self, start_step: u64, end_step: u64) {
        let bar = ProgressBar::new(end_step);
        bar.set_style(
            ProgressStyle::with_template(
                "{elapsed_precise} [{bar:30}] {pos}/{len} steps {msg} (eta {eta})",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        bar.set_position(start_step);
        self.bar = Some(bar);
    }

    fn stepped(&mut self, step: u64) {
        if let Some(bar) = &self.bar {
            bar.set_position(step);
        }
    }

    fn logged(&mut self, m: &LoggedMetrics) {
        if let Some(bar) = &self.bar {
            bar.set_message(format!(
                "loss {:.3} mlm {:.3} rtd {:.4} {:.0} tok/s",
                m.objective.loss,
                m.objective.mlm_loss,
                m.objective.rtd_loss.unwrap_or(f64::NAN),
                m.tokens_per_sec.unwrap_or(0.0)
            ));
        }
    }

    fn finished(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
    }
}
