//! Per-step monitoring metrics (spec 1.5; the reference's `metric_fn` in `run_pretraining.py`).

use burn::prelude::*;

use crate::model::ObjectiveOutput;

/// Host values of one step's metrics. RTD entries are `None` for objectives without a
/// replaced-token-detection head; sampling entries are `None` for `mlm`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct StepMetrics {
    /// The total loss.
    pub loss: f64,
    /// The generator's MLM loss (for `mlm`: the model's).
    pub mlm_loss: f64,
    /// Fraction of active slots where the MLM argmax is the original token.
    pub mlm_accuracy: f64,
    /// The discriminator's RTD loss.
    pub rtd_loss: Option<f64>,
    /// The discriminator-sized model's loss in `replace-mlm` / `all-tokens-mlm`.
    pub target_loss: Option<f64>,
    /// Fraction of RTD-weighted tokens where `logit > 0` matches the label.
    pub disc_accuracy: Option<f64>,
    /// Of the tokens predicted replaced, the fraction that are replaced (0 when none is
    /// predicted replaced).
    pub disc_precision: Option<f64>,
    /// Of the replaced tokens, the fraction predicted replaced (0 when none is replaced).
    pub disc_recall: Option<f64>,
    /// Harmonic mean of precision and recall (0 when both are 0).
    pub disc_f1: Option<f64>,
    /// Area under the ROC curve of the RTD logits over the weighted tokens: the chance that a
    /// replaced token scores above an original one (0.5 = no discrimination; the reference
    /// monitors it as `disc_auc`). `None` when the batch has only one class.
    pub disc_auc: Option<f64>,
    /// Fraction of active slots whose sample equals the original token (the reference's
    /// "sampled MLM accuracy"); such positions are labelled original.
    pub sampled_equals_original: Option<f64>,
    /// Number of active masked slots in the batch.
    pub masked_tokens: usize,
}

/// Replaced-token counts over weighted tokens.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Confusion {
    /// Replaced, predicted replaced.
    pub true_positive: usize,
    /// Original, predicted replaced.
    pub false_positive: usize,
    /// Original, predicted original.
    pub true_negative: usize,
    /// Replaced, predicted original.
    pub false_negative: usize,
}

impl Confusion {
    /// Counts over tokens with weight > 0; a token is predicted replaced iff its logit > 0.
    pub fn count(logits: &[f32], labels: &[i64], weights: &[f32]) -> Self {
        let mut c = Self::default();
        for ((&x, &y), &w) in logits.iter().zip(labels).zip(weights) {
            if w <= 0.0 {
                continue;
            }
            match (x > 0.0, y == 1) {
                (true, true) => c.true_positive += 1,
                (true, false) => c.false_positive += 1,
                (false, false) => c.true_negative += 1,
                (false, true) => c.false_negative += 1,
            }
        }
        c
    }

    /// `(accuracy, precision, recall, f1)`, each 0 when its denominator is 0.
    pub fn scores(&self) -> (f64, f64, f64, f64) {
        let ratio = |a: usize, b: usize| if b == 0 { 0.0 } else { a as f64 / b as f64 };
        let total =
            self.true_positive + self.false_positive + self.true_negative + self.false_negative;
        let accuracy = ratio(self.true_positive + self.true_negative, total);
        let precision = ratio(self.true_positive, self.true_positive + self.false_positive);
        let recall = ratio(self.true_positive, self.true_positive + self.false_negative);
        let f1 = if precision + recall == 0.0 {
            0.0
        } else {
            2.0 * precision * recall / (precision + recall)
        };
        (accuracy, precision, recall, f1)
    }
}

fn scalar<B: Backend>(t: &Tensor<B, 1>) -> f64 {
    t.clone()
        .into_data()
        .iter::<f64>()
        .next()
        .unwrap_or(f64::NAN)
}

impl StepMetrics {
    /// Reads one step's metrics back from the device (a synchronisation point).
    pub fn compute<B: Backend>(out: &ObjectiveOutput<B>) -> Self {
        let active: Vec<usize> = (0..out.mlm_weights.len())
            .filter(|&i| out.mlm_weights[i] > 0.0)
            .collect();
        let fraction = |hits: usize| {
            if active.is_empty() {
                0.0
            } else {
                hits as f64 / active.len() as f64
            }
        };
        let predicted: Vec<i64> = out
            .mlm_logits
            .clone()
            .detach()
            .argmax(1)
            .into_data()
            .iter::<i64>()
            .collect();
        let mlm_hits = active
            .iter()
            .filter(|&&i| predicted[i] == out.mlm_targets[i])
            .count();
        let sampled_equals_original = out.sampled_ids.as_ref().map(|sampled| {
            fraction(
                active
                    .iter()
                    .filter(|&&i| sampled[i] == out.mlm_targets[i])
                    .count(),
            )
        });
        let (rtd, disc_auc) = match (&out.discriminator_logits, &out.labels, &out.rtd_weights) {
            (Some(logits), Some(labels), Some(weights)) => {
                let logits: Vec<f32> = logits.clone().detach().into_data().iter::<f32>().collect();
                (
                    Some(Confusion::count(&logits, labels, weights).scores()),
                    auc(&logits, labels, weights),
                )
            }
            _ => (None, None),
        };
        Self {
            loss: scalar(&out.loss),
            mlm_loss: scalar(&out.mlm_loss),
            mlm_accuracy: fraction(mlm_hits),
            rtd_loss: out.rtd_loss.as_ref().map(scalar),
            target_loss: out.target_loss.as_ref().map(scalar),
            disc_accuracy: rtd.map(|r| r.0),
            disc_precision: rtd.map(|r| r.1),
            disc_recall: rtd.map(|r| r.2),
            disc_f1: rtd.map(|r| r.3),
            disc_auc,
            sampled_equals_original,
            masked_tokens: active.len(),
        }
    }
}

/// ROC AUC of `logits` for `labels` (1 = positive) over tokens with weight > 0, by the rank-sum
/// (Mann-Whitney) formula with ties counted half. `None` without both classes.
pub fn auc(logits: &[f32], labels: &[i64], weights: &[f32]) -> Option<f64> {
    let mut scored: Vec<(f32, bool)> = logits
        .iter()
        .zip(labels)
        .zip(weights)
        .filter(|(_, w)| **w > 0.0)
        .map(|((&x, &y), _)| (x, y == 1))
        .collect();
    let positives = scored.iter().filter(|(_, y)| *y).count();
    let negatives = scored.len() - positives;
    if positives == 0 || negatives == 0 {
        return None;
    }
    scored.sort_by(|a, b| a.0.total_cmp(&b.0));
    // Sum of the (1-based, tie-averaged) ranks of the positives.
    let mut rank_sum = 0.0;
    let mut i = 0;
    while i < scored.len() {
        // The tie group [i, j); always at least one element, so a NaN (equal to nothing)
        // still advances.
        let mut j = i + 1;
        while j < scored.len() && scored[j].0 == scored[i].0 {
            j += 1;
        }
        let mean_rank = (i + 1 + j) as f64 / 2.0;
        rank_sum += mean_rank * scored[i..j].iter().filter(|(_, y)| *y).count() as f64;
        i = j;
    }
    let (p, n) = (positives as f64, negatives as f64);
    Some((rank_sum - p * (p + 1.0) / 2.0) / (p * n))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auc_matches_hand_counts() {
        // Positives 0.9, 0.4; negatives 0.5, 0.1 (one ignored by weight): pairs (0.9>0.5),
        // (0.9>0.1), (0.4<0.5), (0.4>0.1) -> 3/4.
        let logits = [0.9, 0.4, 0.5, 0.1, 5.0];
        let labels = [1, 1, 0, 0, 0];
        let weights = [1.0, 1.0, 1.0, 1.0, 0.0];
        assert_eq!(auc(&logits, &labels, &weights), Some(0.75));
        // Ties count half; one class only gives None.
        assert_eq!(auc(&[1.0, 1.0], &[1, 0], &[1.0, 1.0]), Some(0.5));
        assert_eq!(auc(&[1.0, 2.0], &[0, 0], &[1.0, 1.0]), None);
        // A perfect ranking.
        assert_eq!(auc(&[3.0, 2.0, -1.0], &[1, 1, 0], &[1.0; 3]), Some(1.0));
        // NaN logits (a diverged model) give a number, not a hang.
        assert!(auc(&[f32::NAN, f32::NAN, 1.0], &[1, 0, 1], &[1.0; 3]).is_some());
    }

    #[test]
    fn confusion_scores_match_hand_counts() {
        // tokens: (logit, label, weight)
        let logits = [2.0, 1.0, -1.0, -3.0, 0.5, 4.0, -2.0];
        let labels = [1, 0, 1, 0, 1, 1, 0];
        let weights = [1.0, 1.0, 1.0, 1.0, 1.0, 0.0, 1.0];
        let c = Confusion::count(&logits, &labels, &weights);
        assert_eq!(
            c,
            Confusion {
                true_positive: 2,
                false_positive: 1,
                true_negative: 2,
                false_negative: 1
            }
        );
        let (acc, p, r, f1) = c.scores();
        assert!((acc - 4.0 / 6.0).abs() < 1e-12);
        assert!((p - 2.0 / 3.0).abs() < 1e-12);
        assert!((r - 2.0 / 3.0).abs() < 1e-12);
        assert!((f1 - 2.0 / 3.0).abs() < 1e-12);
        assert_eq!(Confusion::default().scores(), (0.0, 0.0, 0.0, 0.0));
    }
}
