//! GLUE metrics: accuracy, F1, Matthews correlation, Pearson and Spearman (ties get their
//! average rank), each task's official set, and the GLUE averages.
//!
//! All metrics are computed in f64 and returned as fractions (0.85, not 85); tables multiply
//! by 100 as the paper does. Degenerate inputs follow scikit-learn and SciPy where those are
//! defined (an F1 or MCC with a zero denominator is 0); a correlation of a constant series is
//! NaN, as in SciPy.

use std::collections::BTreeMap;

use crate::error::EvalError;
use crate::glue::task::{Metric, Task};

/// Share of `predictions` equal to `gold`.
pub fn accuracy(predictions: &[usize], gold: &[usize]) -> f64 {
    if gold.is_empty() {
        return f64::NAN;
    }
    let correct = predictions.iter().zip(gold).filter(|(p, g)| p == g).count();
    correct as f64 / gold.len() as f64
}

/// F1 of class 1 (GLUE's positive class for MRPC and QQP): `2·tp / (2·tp + fp + fn)`; 0 when
/// there are no positives at all (scikit-learn's `zero_division=0`).
pub fn f1(predictions: &[usize], gold: &[usize]) -> f64 {
    let (mut tp, mut fp, mut fneg) = (0u64, 0u64, 0u64);
    for (&p, &g) in predictions.iter().zip(gold) {
        match (p == 1, g == 1) {
            (true, true) => tp += 1,
            (true, false) => fp += 1,
            (false, true) => fneg += 1,
            (false, false) => {}
        }
    }
    let denom = 2 * tp + fp + fneg;
    if denom == 0 {
        0.0
    } else {
        2.0 * tp as f64 / denom as f64
    }
}

/// Matthews correlation coefficient, multi-class form (Gorodkin's R_K, scikit-learn's
/// `matthews_corrcoef`); 0 when the denominator is 0 (one class predicted or present).
pub fn matthews_corrcoef(predictions: &[usize], gold: &[usize]) -> f64 {
    let k = predictions
        .iter()
        .chain(gold)
        .copied()
        .max()
        .map_or(0, |m| m + 1);
    let mut confusion = vec![vec![0f64; k]; k];
    for (&p, &g) in predictions.iter().zip(gold) {
        confusion[g][p] += 1.0;
    }
    let n: f64 = gold.len() as f64;
    let correct: f64 = (0..k).map(|i| confusion[i][i]).sum();
    let t: Vec<f64> = (0..k).map(|i| confusion[i].iter().sum()).collect();
    let p: Vec<f64> = (0..k)
        .map(|j| (0..k).map(|i| confusion[i][j]).sum())
        .collect();
    let tp: f64 = t.iter().zip(&p).map(|(a, b)| a * b).sum();
    let cov_ytyp = correct * n - tp;
    let cov_ypyp = n * n - p.iter().map(|x| x * x).sum::<f64>();
    let cov_ytyt = n * n - t.iter().map(|x| x * x).sum::<f64>();
    let denom = (cov_ytyt * cov_ypyp).sqrt();
    if denom == 0.0 { 0.0 } else { cov_ytyp / denom }
}

/// Pearson correlation; NaN if either series is constant or they are shorter than 2.
pub fn pearson(x: &[f64], y: &[f64]) -> f64 {
    let n = x.len().min(y.len());
    if n < 2 {
        return f64::NAN;
    }
    let mx = x[..n].iter().sum::<f64>() / n as f64;
    let my = y[..n].iter().sum::<f64>() / n as f64;
    let (mut sxy, mut sxx, mut syy) = (0.0, 0.0, 0.0);
    for (a, b) in x[..n].iter().zip(&y[..n]) {
        let (dx, dy) = (a - mx, b - my);
        sxy += dx * dy;
        sxx += dx * dx;
        syy += dy * dy;
    }
    if sxx == 0.0 || syy == 0.0 {
        return f64::NAN;
    }
    (sxy / (sxx.sqrt() * syy.sqrt())).clamp(-1.0, 1.0)
}

/// 1-based ranks with ties given their average rank (SciPy's `rankdata(method="average")`).
pub fn average_ranks(x: &[f64]) -> Vec<f64> {
    let mut order: Vec<usize> = (0..x.len()).collect();
    order.sort_by(|&a, &b| x[a].total_cmp(&x[b]));
    let mut ranks = vec![0.0; x.len()];
    let mut i = 0;
    while i < order.len() {
        let mut j = i;
        while j + 1 < order.len() && x[order[j + 1]] == x[order[i]] {
            j += 1;
        }
        // Positions i..=j share the mean of ranks i+1..=j+1.
        let rank = (i + j) as f64 / 2.0 + 1.0;
        for &o in &order[i..=j] {
            ranks[o] = rank;
        }
        i = j + 1;
    }
    ranks
}

/// Spearman rank correlation: Pearson of the average ranks.
pub fn spearman(x: &[f64], y: &[f64]) -> f64 {
    pearson(&average_ranks(x), &average_ranks(y))
}

/// Predictions of a model on a labelled set: class indices, or regression outputs.
#[derive(Clone, Debug, PartialEq)]
pub enum Predictions {
    /// One class index per example.
    Classes(Vec<usize>),
    /// One score per example (STS-B).
    Scores(Vec<f64>),
}

impl Predictions {
    /// Number of predictions.
    pub fn len(&self) -> usize {
        match self {
            Self::Classes(c) => c.len(),
            Self::Scores(s) => s.len(),
        }
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// One task's official metrics, by metric.
pub type Scores = BTreeMap<Metric, f64>;

/// The official metrics of `task` for `predictions` against `gold` (class indices, or scores
/// for STS-B).
pub fn task_scores(
    task: Task,
    predictions: &Predictions,
    gold: &[crate::glue::data::Label],
) -> Result<Scores, EvalError> {
    if predictions.len() != gold.len() {
        return Err(EvalError::Mismatch(format!(
            "{task}: {} predictions for {} gold labels",
            predictions.len(),
            gold.len()
        )));
    }
    let mut out = Scores::new();
    match predictions {
        Predictions::Scores(p) => {
            let g: Vec<f64> = gold.iter().map(|l| f64::from(l.value())).collect();
            for &m in task.metrics() {
                let v = match m {
                    Metric::Pearson => pearson(p, &g),
                    Metric::Spearman => spearman(p, &g),
                    other => {
                        return Err(EvalError::Mismatch(format!(
                            "{task}: metric {} needs class predictions",
                            other.name()
                        )));
                    }
                };
                out.insert(m, v);
            }
        }
        Predictions::Classes(p) => {
            let g: Vec<usize> = gold.iter().map(|l| l.class()).collect();
            for &m in task.metrics() {
                let v = match m {
                    Metric::Accuracy => accuracy(p, &g),
                    Metric::F1 => f1(p, &g),
                    Metric::Mcc => matthews_corrcoef(p, &g),
                    other => {
                        return Err(EvalError::Mismatch(format!(
                            "{task}: metric {} needs score predictions",
                            other.name()
                        )));
                    }
                };
                out.insert(m, v);
            }
        }
    }
    Ok(out)
}

/// The task's score on the GLUE leaderboard: the mean of its official metrics.
pub fn leaderboard_task_score(scores: &Scores) -> f64 {
    scores.values().sum::<f64>() / scores.len().max(1) as f64
}

/// The tasks in the paper's dev-set GLUE score: the eight of Tables 1-2 (no WNLI, no AX).
pub const PAPER_TASKS: [Task; 8] = [
    Task::Cola,
    Task::Sst2,
    Task::Mrpc,
    Task::Stsb,
    Task::Qqp,
    Task::Mnli,
    Task::Qnli,
    Task::Rte,
];

/// A GLUE average and the tasks it covers.
#[derive(Clone, Debug, PartialEq)]
pub struct GlueAverage {
    /// The mean (a fraction).
    pub value: f64,
    /// Tasks that went into it.
    pub tasks: Vec<Task>,
    /// Tasks of the definition that were missing (the average is then partial).
    pub missing: Vec<Task>,
}

/// The paper's GLUE score: the plain mean of the eight tasks' paper metrics (MCC for CoLA,
/// Spearman for STS-B, accuracy elsewhere, MNLI matched), WNLI excluded (spec 6.1). Tasks
/// absent from `by_task` are listed in `missing`, and the mean is over those present.
pub fn paper_glue_average(by_task: &BTreeMap<Task, Scores>) -> Option<GlueAverage> {
    average_over(&PAPER_TASKS, by_task, |task, s| {
        s.get(&task.paper_metric()).copied()
    })
}

/// The leaderboard-style score: each task's official metrics averaged first, over the nine
/// tasks including WNLI (AX is not part of it).
pub fn leaderboard_glue_average(by_task: &BTreeMap<Task, Scores>) -> Option<GlueAverage> {
    let mut tasks = PAPER_TASKS.to_vec();
    tasks.push(Task::Wnli);
    average_over(&tasks, by_task, |_, s| Some(leaderboard_task_score(s)))
}

fn average_over(
    tasks: &[Task],
    by_task: &BTreeMap<Task, Scores>,
    score: impl Fn(Task, &Scores) -> Option<f64>,
) -> Option<GlueAverage> {
    let mut present = Vec::new();
    let mut missing = Vec::new();
    let mut sum = 0.0;
    for &t in tasks {
        match by_task.get(&t).and_then(|s| score(t, s)) {
            Some(v) => {
                sum += v;
                present.push(t);
            }
            None => missing.push(t),
        }
    }
    (!present.is_empty()).then(|| GlueAverage {
        value: sum / present.len() as f64,
        tasks: present,
        missing,
    })
}

pub use crate::tuning::stats::{median, summary};
