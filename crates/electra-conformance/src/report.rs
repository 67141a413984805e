//! Comparing one backend's [`Measurements`] with flex's and the oracle's: the table rows, the
//! printed table and the JSON report.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::measure::{Measurements, StepResult, sampling_probabilities};
use crate::tolerance::Tolerances;

/// One compared quantity.
#[derive(Clone, Debug, Serialize)]
pub struct Row {
    /// What was compared (e.g. `discriminator.logits`, `step 2 grad_norm`).
    pub quantity: String,
    /// Max abs difference from the oracle (PyTorch via HF fixtures, or the exact answer);
    /// `None` where there is none.
    pub vs_oracle: Option<f64>,
    /// Max abs difference from the flex reference run.
    pub vs_flex: Option<f64>,
    /// The bound both differences are held to.
    pub tolerance: f64,
    /// The scale of the quantity on flex: the value of a scalar, the largest magnitude of a
    /// tensor, the largest change of any parameter in the step.
    pub flex_value: Option<f64>,
    /// Where the largest difference is, when that helps (a parameter path).
    pub worst: Option<String>,
}

impl Row {
    /// Whether every difference is finite and within the tolerance.
    pub fn passed(&self) -> bool {
        [self.vs_oracle, self.vs_flex]
            .into_iter()
            .flatten()
            .all(|d| d.is_finite() && d <= self.tolerance)
    }
}

/// Max abs difference of two equally long lists; infinite if the lengths differ or any value
/// is not finite (so that a NaN can never pass).
pub fn max_abs_diff<A: Copy + Into<f64>, B: Copy + Into<f64>>(a: &[A], b: &[B]) -> f64 {
    if a.len() != b.len() || a.is_empty() {
        return f64::INFINITY;
    }
    let mut max = 0.0f64;
    for (&x, &y) in a.iter().zip(b) {
        let d = (x.into() - y.into()).abs();
        if !d.is_finite() {
            return f64::INFINITY;
        }
        max = max.max(d);
    }
    max
}

fn diff_scalar(a: f64, b: f64) -> f64 {
    max_abs_diff(&[a], &[b])
}

/// The rows for `device` against `flex` and the oracle's `expected_tensors` /
/// `expected_losses`.
pub fn compare(
    device: &Measurements,
    flex: &Measurements,
    expected_tensors: &BTreeMap<String, Vec<f64>>,
    expected_losses: &BTreeMap<String, f64>,
    tol: &Tolerances,
) -> Vec<Row> {
    let mut rows = Vec::new();
    let missing = f64::INFINITY;
    for (name, want) in expected_tensors {
        let got = device.tensors.get(name);
        rows.push(Row {
            quantity: name.clone(),
            vs_oracle: Some(got.map_or(missing, |g| max_abs_diff(g, want))),
            vs_flex: Some(match (got, flex.tensors.get(name)) {
                (Some(g), Some(f)) => max_abs_diff(g, f),
                _ => missing,
            }),
            tolerance: tol.activations,
            flex_value: flex.tensors.get(name).map(|f| largest(f)),
            worst: None,
        });
    }
    for (name, &want) in expected_losses {
        let got = device.losses.get(name).copied().unwrap_or(f64::NAN);
        let reference = flex.losses.get(name).copied().unwrap_or(f64::NAN);
        rows.push(Row {
            quantity: name.clone(),
            vs_oracle: Some(diff_scalar(got, want)),
            vs_flex: Some(diff_scalar(got, reference)),
            tolerance: tol.losses,
            flex_value: Some(reference),
            worst: None,
        });
    }
    rows.push(Row {
        quantity: "sampler: rows with a certain answer that were wrong".into(),
        vs_oracle: Some(device.forced_sampling_errors as f64),
        vs_flex: None,
        tolerance: 0.0,
        flex_value: None,
        worst: None,
    });
    rows.push(Row {
        quantity: "sampler: token frequencies vs softmax".into(),
        vs_oracle: Some(max_abs_diff(
            &device.sampling_frequencies,
            &sampling_probabilities(),
        )),
        vs_flex: None,
        tolerance: tol.sampling_frequency,
        flex_value: None,
        worst: None,
    });
    let steps = device.steps.len().max(flex.steps.len());
    for i in 0..steps {
        let (d, f) = (device.steps.get(i), flex.steps.get(i));
        let t = i + 1;
        type Get = fn(&StepResult) -> f64;
        let quantities: [(&str, Get, f64); 4] = [
            ("mlm_loss", |s| s.mlm_loss, tol.step_losses),
            ("rtd_loss", |s| s.rtd_loss, tol.step_losses),
            ("loss", |s| s.loss, tol.step_losses),
            ("grad_norm", |s| s.grad_norm, tol.grad_norm),
        ];
        for (name, get, tolerance) in quantities {
            rows.push(Row {
                quantity: format!("train step {t} {name}"),
                vs_oracle: None,
                vs_flex: Some(match (d, f) {
                    (Some(d), Some(f)) => diff_scalar(get(d), get(f)),
                    _ => missing,
                }),
                tolerance,
                flex_value: f.map(get),
                worst: None,
            });
        }
        let (diff, worst) = match (d, f) {
            (Some(d), Some(f)) => parameter_diff(&d.parameters, &f.parameters),
            _ => (missing, None),
        };
        rows.push(Row {
            quantity: format!("train step {t} parameters after Adam"),
            vs_oracle: None,
            vs_flex: Some(diff),
            tolerance: tol.parameters,
            flex_value: f.map(|f| f.max_update),
            worst,
        });
    }
    rows
}

/// The largest difference over all parameters and the path where it is; infinite if the
/// two sides do not have the same parameters.
fn parameter_diff(
    a: &BTreeMap<String, Vec<f32>>,
    b: &BTreeMap<String, Vec<f32>>,
) -> (f64, Option<String>) {
    if a.len() != b.len() {
        return (f64::INFINITY, None);
    }
    let mut worst = (0.0f64, None);
    for (path, values) in a {
        let d = b
            .get(path)
            .map_or(f64::INFINITY, |other| max_abs_diff(values, other));
        if d > worst.0 || worst.1.is_none() {
            worst = (d, Some(path.clone()));
        }
        if !d.is_finite() {
            break;
        }
    }
    worst
}

fn largest(values: &[f64]) -> f64 {
    values.iter().fold(0.0, |m, v| m.max(v.abs()))
}

fn cell(d: Option<f64>) -> String {
    match d {
        Some(0.0) => "0".to_string(),
        Some(d) if d.is_finite() && d >= 1.0 && d.fract() == 0.0 => format!("{d}"),
        Some(d) => format!("{d:.2e}"),
        None => "-".to_string(),
    }
}

/// The table as text (Markdown, so that it can go into `docs/backends.md` as it is).
pub fn table(rows: &[Row]) -> String {
    let width = rows
        .iter()
        .map(|r| r.quantity.len())
        .max()
        .unwrap_or(8)
        .max(8);
    let mut out = format!(
        "| {:width$} | {:>10} | {:>10} | {:>10} | {:>9} | {} |\n|{}|{}|{}|{}|{}|----|\n",
        "quantity",
        "flex value",
        "vs PyTorch",
        "vs flex",
        "tolerance",
        "ok",
        "-".repeat(width + 2),
        "-".repeat(12),
        "-".repeat(12),
        "-".repeat(12),
        "-".repeat(11),
    );
    for r in rows {
        out.push_str(&format!(
            "| {:width$} | {:>10} | {:>10} | {:>10} | {:>9} | {} |\n",
            r.quantity,
            r.flex_value
                .map_or("-".to_string(), |v| if (1e-2..1e4).contains(&v.abs()) {
                    format!("{v:.4}")
                } else {
                    format!("{v:.2e}")
                }),
            cell(r.vs_oracle),
            cell(r.vs_flex),
            cell(Some(r.tolerance)),
            if r.passed() { "ok" } else { "FAIL" },
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nan_and_length_mismatches_never_pass() {
        assert_eq!(max_abs_diff(&[1.0f32, 2.0], &[1.0f64, 2.5]), 0.5);
        assert_eq!(max_abs_diff(&[f32::NAN], &[0.0f64]), f64::INFINITY);
        assert_eq!(max_abs_diff(&[1.0f32], &[1.0f64, 2.0]), f64::INFINITY);
        let row = |d: f64| Row {
            quantity: "x".into(),
            vs_oracle: Some(d),
            vs_flex: None,
            tolerance: 1e-5,
            flex_value: None,
            worst: None,
        };
        assert!(row(1e-6).passed());
        assert!(!row(2e-5).passed());
        assert!(!row(f64::NAN).passed());
    }

    #[test]
    fn parameter_diff_names_the_worst_path_and_catches_missing_ones() {
        let a = BTreeMap::from([
            ("w".to_string(), vec![1.0f32, 2.0]),
            ("b".into(), vec![0.0]),
        ]);
        let mut b = a.clone();
        b.insert("w".into(), vec![1.0, 2.25]);
        assert_eq!(parameter_diff(&a, &b), (0.25, Some("w".to_string())));
        b.remove("b");
        b.insert("c".into(), vec![0.0]);
        assert_eq!(parameter_diff(&a, &b).0, f64::INFINITY);
    }
}
