//! What a finished pre-training says: the summary printed at the end of `electra pretrain`
//! (the last logged losses, the discriminator's scores against chance, the held-out numbers
//! and where everything was written).

use std::fmt::Write as _;

use crate::launch::Finished;

impl Finished {
    /// The summary printed at the end of a run; on a node other than node 0, one line.
    pub fn report(&self) -> String {
        let s = &self.summary;
        let state = if s.interrupted {
            "stopped early"
        } else {
            "finished"
        };
        let run_dir = self.run_dir.display();
        if !self.writer {
            let (nodes, rank) = self.nodes;
            return format!(
                "node {rank} of {nodes}: pre-training {state}: steps {}..{}; node 0 wrote the \
                 checkpoint and metrics into {run_dir}",
                s.start_step, s.final_step
            );
        }
        let mut out = String::new();
        let _ = writeln!(
            out,
            "\npre-training {state}: steps {}..{} in {:.1} s, {:.0} tokens/s",
            s.start_step, s.final_step, s.seconds, s.tokens_per_sec
        );
        self.scores(&mut out);
        let _ = writeln!(out, "  run directory: {run_dir}");
        let _ = writeln!(out, "  checkpoint:    {}", s.checkpoint.display());
        let metrics = self.run_dir.join("metrics.jsonl");
        let _ = writeln!(out, "  metrics:       {}", metrics.display());
        let _ = write!(out, "  plot:          {}", self.plot().display());
        if s.interrupted {
            let _ = write!(
                out,
                "\n  continue with: electra pretrain --resume {run_dir}"
            );
        }
        out
    }

    /// The training and held-out lines of [`Self::report`].
    fn scores(&self, out: &mut String) {
        let nan = f64::NAN;
        let last = &self.summary.last.objective;
        let _ = writeln!(
            out,
            "  train (mean of the last {} steps): loss {:.4}, generator MLM loss {:.4}, MLM accuracy {:.3}",
            self.config.train.log_every, last.loss, last.mlm_loss, last.mlm_accuracy
        );
        if let Some(rtd_loss) = last.rtd_loss {
            // Share of replaced tokens among all real ones: masked share × samples that differ.
            let replaced_rate = self.config.objective.mask_prob
                * (1.0 - last.sampled_equals_original.unwrap_or(nan));
            let _ = writeln!(
                out,
                "  discriminator: RTD loss {rtd_loss:.4}, accuracy {:.3} (always answering 'original' scores {:.3})",
                last.disc_accuracy.unwrap_or(nan),
                1.0 - replaced_rate
            );
            let _ = writeln!(
                out,
                "  replaced tokens: recall {:.3} (chance: {:.3}), precision {:.3}, F1 {:.3}; ROC AUC {:.3} (chance: 0.5)",
                last.disc_recall.unwrap_or(nan),
                replaced_rate,
                last.disc_precision.unwrap_or(nan),
                last.disc_f1.unwrap_or(nan),
                last.disc_auc.unwrap_or(nan)
            );
        }
        if let Some(e) = &self.summary.last_eval {
            let e = &e.objective;
            let _ = writeln!(
                out,
                "  held-out: MLM loss {:.4}, MLM accuracy {:.3}, RTD loss {:.4}, replaced recall {:.3}, F1 {:.3}, AUC {:.3}",
                e.mlm_loss,
                e.mlm_accuracy,
                e.rtd_loss.unwrap_or(nan),
                e.disc_recall.unwrap_or(nan),
                e.disc_f1.unwrap_or(nan),
                e.disc_auc.unwrap_or(nan)
            );
        }
    }
}
