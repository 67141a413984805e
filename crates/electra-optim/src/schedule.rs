//! Learning-rate schedules (spec 3) and layer-wise learning-rate decay (spec 5.2).

use serde::{Deserialize, Serialize};

use crate::error::OptimError;

/// How the learning rate moves over training.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ScheduleKind {
    /// The reference: `peak · (1 − min(t,T)/T)^power · min(1, t/W)`. Warmup *multiplies* a
    /// decay that starts at step 0, so the peak itself is never quite reached.
    #[default]
    Electra,
    /// Linear warmup to the peak over `W` steps, then linear decay to 0 at `T` (the common
    /// "warmup then decay" form, e.g. HF's `get_linear_schedule_with_warmup`).
    WarmupLinear,
    /// Linear warmup, then half a cosine from the peak to 0 at `T`.
    WarmupCosine,
    /// Linear warmup, then the peak for ever.
    WarmupConstant,
}

/// A learning-rate schedule; the defaults are ELECTRA-Small pre-training's.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LrSchedule {
    /// Schedule shape (`electra`).
    pub kind: ScheduleKind,
    /// Peak learning rate (Small 5e-4, Base and Large 2e-4).
    pub peak: f64,
    /// Warmup steps `W` (10,000).
    pub warmup_steps: u64,
    /// Total steps `T` (Small 1,000,000).
    pub total_steps: u64,
    /// Decay exponent of the `electra` kind (1 = linear).
    pub power: f64,
}

impl Default for LrSchedule {
    fn default() -> Self {
        Self {
            kind: ScheduleKind::Electra,
            peak: 5e-4,
            warmup_steps: 10_000,
            total_steps: 1_000_000,
            power: 1.0,
        }
    }
}

impl LrSchedule {
    /// Checks the ranges; the error names the field.
    pub fn validate(&self) -> Result<(), OptimError> {
        if !(self.peak > 0.0 && self.peak.is_finite()) {
            return Err(OptimError::InvalidConfig(format!(
                "schedule.peak must be a positive number, got {}",
                self.peak
            )));
        }
        if self.total_steps == 0 {
            return Err(OptimError::InvalidConfig(
                "schedule.total_steps must be > 0".to_string(),
            ));
        }
        if !(self.power > 0.0 && self.power.is_finite()) {
            return Err(OptimError::InvalidConfig(format!(
                "schedule.power must be a positive number, got {}",
                self.power
            )));
        }
        Ok(())
    }

    /// The learning rate for the update made at step `t` (0-based; `lr(0) = 0` when there is
    /// warmup).
    pub fn lr(&self, t: u64) -> f64 {
        let total = self.total_steps.max(1) as f64;
        let t_f = t.min(self.total_steps) as f64;
        let warm = if self.warmup_steps == 0 {
            1.0
        } else {
            (t as f64 / self.warmup_steps as f64).min(1.0)
        };
        match self.kind {
            ScheduleKind::Electra => self.peak * (1.0 - t_f / total).powf(self.power) * warm,
            ScheduleKind::WarmupLinear | ScheduleKind::WarmupCosine if t < self.warmup_steps => {
                self.peak * warm
            }
            ScheduleKind::WarmupLinear => {
                let span = (total - self.warmup_steps as f64).max(1.0);
                self.peak * (1.0 - (t_f - self.warmup_steps as f64) / span).max(0.0)
            }
            ScheduleKind::WarmupCosine => {
                let span = (total - self.warmup_steps as f64).max(1.0);
                let progress = ((t_f - self.warmup_steps as f64) / span).clamp(0.0, 1.0);
                self.peak * 0.5 * (1.0 + (std::f64::consts::PI * progress).cos())
            }
            ScheduleKind::WarmupConstant => self.peak * warm,
        }
    }
}

/// Depth of a parameter for layer-wise decay (spec 5.2, `_get_layer_lrs`): 0 for the
/// embeddings and `embeddings_project`, `i + 1` for encoder layer `i`, `num_layers + 2` for
/// everything else (the task head).
pub fn layer_depth(path: &str, num_layers: usize) -> usize {
    if path.contains("embeddings") {
        return 0;
    }
    if let Some(rest) = path.split("layers.").nth(1)
        && let Some(index) = rest.split('.').next().and_then(|i| i.parse::<usize>().ok())
    {
        return index + 1;
    }
    num_layers + 2
}

/// The learning-rate multiplier of a parameter under layer-wise decay with factor `alpha`.
///
/// `corrected = false` is the reference formula `α^(L + 2 − depth)`, which gives the top
/// encoder layer α² instead of α (a leftover of the removed pooler, google-research/electra
/// issues #51 and #64); the released GLUE numbers were produced with it, so it is the default.
/// `corrected = true` gives the intended scheme: head ×1, top layer ×α, layer `i`
/// ×α^(L − i), embeddings ×α^(L + 1).
pub fn layerwise_lr_multiplier(path: &str, num_layers: usize, alpha: f64, corrected: bool) -> f64 {
    let depth = layer_depth(path, num_layers);
    let top = num_layers + 2;
    let exponent = if depth == top {
        0
    } else if corrected {
        num_layers + 1 - depth
    } else {
        top - depth
    };
    alpha.powi(exponent as i32)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schedule(kind: ScheduleKind) -> LrSchedule {
        LrSchedule {
            kind,
            peak: 1.0,
            warmup_steps: 10,
            total_steps: 100,
            power: 1.0,
        }
    }

    #[test]
    fn electra_schedule_multiplies_warmup_into_the_decay() {
        let s = schedule(ScheduleKind::Electra);
        assert_eq!(s.lr(0), 0.0);
        // t = 5: 0.5 warmup × 0.95 decay.
        assert!((s.lr(5) - 0.475).abs() < 1e-12);
        // t = 10: warmup done, decay 0.9: the peak is never reached.
        assert!((s.lr(10) - 0.9).abs() < 1e-12);
        assert!((s.lr(55) - 0.45).abs() < 1e-12);
        assert_eq!(s.lr(100), 0.0);
        assert_eq!(s.lr(150), 0.0);
    }

    #[test]
    fn alternatives_reach_the_peak_after_warmup() {
        let s = schedule(ScheduleKind::WarmupLinear);
        assert!((s.lr(5) - 0.5).abs() < 1e-12);
        assert!((s.lr(10) - 1.0).abs() < 1e-12);
        assert!((s.lr(55) - 0.5).abs() < 1e-12);
        assert_eq!(s.lr(100), 0.0);
        let c = schedule(ScheduleKind::WarmupCosine);
        assert!((c.lr(10) - 1.0).abs() < 1e-12);
        assert!((c.lr(55) - 0.5).abs() < 1e-12);
        assert!(c.lr(100).abs() < 1e-12);
        let k = schedule(ScheduleKind::WarmupConstant);
        assert_eq!(k.lr(1000), 1.0);
    }

    #[test]
    fn layerwise_decay_follows_the_reference_and_the_fix() {
        let l = 12;
        let a = 0.8f64;
        let emb = "electra.embeddings.word_embeddings.weight";
        let proj = "electra.encoder.embeddings_project.weight";
        let top = "electra.encoder.layers.11.output.weight";
        let first = "electra.encoder.layers.0.intermediate.weight";
        let head = "classifier.weight";
        // Reference: head ×1, top layer ×α², embeddings ×α^(L+2).
        assert_eq!(layerwise_lr_multiplier(head, l, a, false), 1.0);
        assert!((layerwise_lr_multiplier(top, l, a, false) - a * a).abs() < 1e-12);
        assert!((layerwise_lr_multiplier(first, l, a, false) - a.powi(13)).abs() < 1e-12);
        assert!((layerwise_lr_multiplier(emb, l, a, false) - a.powi(14)).abs() < 1e-12);
        assert_eq!(
            layerwise_lr_multiplier(emb, l, a, false),
            layerwise_lr_multiplier(proj, l, a, false)
        );
        // Corrected: top layer ×α.
        assert!((layerwise_lr_multiplier(top, l, a, true) - a).abs() < 1e-12);
        assert!((layerwise_lr_multiplier(emb, l, a, true) - a.powi(13)).abs() < 1e-12);
        assert_eq!(layerwise_lr_multiplier(head, l, a, true), 1.0);
    }

    #[test]
    fn invalid_schedules_name_the_field() {
        let s = LrSchedule {
            total_steps: 0,
            ..LrSchedule::default()
        };
        assert!(
            s.validate()
                .expect_err("zero")
                .to_string()
                .contains("total_steps")
        );
    }
}
