//! The metrics against values computed independently with scikit-learn 1.9.1 and SciPy 1.17.1
//! by `scripts/glue_metrics_reference.py` (same inputs as here), and the GLUE averages.

use std::collections::BTreeMap;

use electra_eval::data::Label;
use electra_eval::metrics::{
    Predictions, accuracy, average_ranks, f1, leaderboard_glue_average, matthews_corrcoef,
    paper_glue_average, pearson, spearman, summary, task_scores,
};
use electra_eval::task::{Metric, Task};

const BINARY_PRED: [usize; 20] = [1, 0, 1, 1, 0, 1, 0, 0, 1, 1, 1, 0, 0, 1, 0, 1, 1, 0, 1, 1];
const BINARY_GOLD: [usize; 20] = [1, 0, 0, 1, 0, 1, 1, 0, 1, 0, 1, 0, 1, 1, 0, 0, 1, 0, 1, 1];
const MULTI_PRED: [usize; 15] = [0, 1, 2, 2, 1, 0, 0, 2, 1, 1, 2, 0, 1, 2, 0];
const MULTI_GOLD: [usize; 15] = [0, 1, 2, 1, 1, 0, 2, 2, 0, 1, 2, 0, 2, 2, 1];
const X: [f64; 10] = [0.1, 0.4, 0.4, 0.9, 0.3, 0.3, 0.3, 0.8, 0.6, 0.2];
const Y: [f64; 10] = [0.0, 2.0, 1.5, 5.0, 1.5, 1.5, 2.4, 4.0, 4.0, 0.4];

fn close(a: f64, b: f64) {
    assert!((a - b).abs() < 1e-12, "{a} vs {b}");
}

#[test]
fn classification_metrics_match_scikit_learn() {
    close(accuracy(&BINARY_PRED, &BINARY_GOLD), 0.75);
    close(f1(&BINARY_PRED, &BINARY_GOLD), 0.782608695652174);
    close(
        matthews_corrcoef(&BINARY_PRED, &BINARY_GOLD),
        0.4923659639173309,
    );
    close(
        matthews_corrcoef(&MULTI_PRED, &MULTI_GOLD),
        0.5033670414105182,
    );
    close(accuracy(&MULTI_PRED, &MULTI_GOLD), 0.6666666666666666);
}

#[test]
fn correlations_match_scipy_with_ties() {
    close(pearson(&X, &Y), 0.951960896007154);
    // With ordinal (tie-breaking) ranks SciPy gives 0.8545...; average ranks give 0.9.
    close(spearman(&X, &Y), 0.9);
    assert_eq!(
        average_ranks(&X),
        vec![1.0, 6.5, 6.5, 10.0, 4.0, 4.0, 4.0, 9.0, 8.0, 2.0]
    );
}

#[test]
fn degenerate_inputs_follow_the_reference_libraries() {
    // Everything predicted negative: F1 0, MCC 0 (scikit-learn), accuracy still defined.
    assert_eq!(f1(&[0, 0], &[1, 0]), 0.0);
    assert_eq!(matthews_corrcoef(&[0, 0, 0], &[1, 0, 1]), 0.0);
    assert!(pearson(&[1.0, 1.0, 1.0], &[1.0, 2.0, 3.0]).is_nan());
    close(matthews_corrcoef(&[1, 0, 1], &[1, 0, 1]), 1.0);
    close(matthews_corrcoef(&[0, 1, 0], &[1, 0, 1]), -1.0);
}

#[test]
fn task_scores_use_the_official_metrics() {
    let gold: Vec<Label> = BINARY_GOLD.iter().map(|&c| Label::Class(c)).collect();
    let s = task_scores(
        Task::Mrpc,
        &Predictions::Classes(BINARY_PRED.to_vec()),
        &gold,
    )
    .expect("mrpc");
    assert_eq!(
        s.keys().copied().collect::<Vec<_>>(),
        [Metric::Accuracy, Metric::F1]
    );
    let s = task_scores(
        Task::Cola,
        &Predictions::Classes(BINARY_PRED.to_vec()),
        &gold,
    )
    .expect("cola");
    close(s[&Metric::Mcc], 0.4923659639173309);
    let gold: Vec<Label> = Y.iter().map(|&v| Label::Score(v as f32)).collect();
    let s = task_scores(Task::Stsb, &Predictions::Scores(X.to_vec()), &gold).expect("sts");
    assert!((s[&Metric::Spearman] - 0.9).abs() < 1e-6);
    let err = task_scores(Task::Rte, &Predictions::Classes(vec![0]), &[]).expect_err("len");
    assert!(
        err.to_string().contains("1 predictions for 0 gold labels"),
        "{err}"
    );
}

#[test]
fn glue_averages_follow_the_paper_and_the_leaderboard() {
    // The ELECTRA-Base row of the README's dev table (spec 7.7): the paper's GLUE score is
    // the plain mean of the eight paper metrics.
    let base = [
        (Task::Cola, Metric::Mcc, 0.677),
        (Task::Sst2, Metric::Accuracy, 0.951),
        (Task::Mrpc, Metric::Accuracy, 0.895),
        (Task::Stsb, Metric::Spearman, 0.912),
        (Task::Qqp, Metric::Accuracy, 0.915),
        (Task::Mnli, Metric::Accuracy, 0.888),
        (Task::Qnli, Metric::Accuracy, 0.932),
        (Task::Rte, Metric::Accuracy, 0.827),
    ];
    let mut by_task = BTreeMap::new();
    for (t, m, v) in base {
        by_task.insert(t, BTreeMap::from([(m, v)]));
    }
    let avg = paper_glue_average(&by_task).expect("avg");
    assert!(avg.missing.is_empty());
    close(
        avg.value,
        (0.677 + 0.951 + 0.895 + 0.912 + 0.915 + 0.888 + 0.932 + 0.827) / 8.0,
    );
    // Leaderboard: MRPC's F1 and accuracy are averaged first; WNLI counts; missing ones listed.
    by_task.insert(
        Task::Mrpc,
        BTreeMap::from([(Metric::Accuracy, 0.8), (Metric::F1, 0.9)]),
    );
    let lb = leaderboard_glue_average(&by_task).expect("lb");
    assert_eq!(lb.missing, vec![Task::Wnli]);
    close(
        lb.value,
        (0.677 + 0.951 + 0.85 + 0.912 + 0.915 + 0.888 + 0.932 + 0.827) / 8.0,
    );
}

#[test]
fn seed_summary_is_median_mean_and_sample_std() {
    let (median, mean, std) = summary(&[0.5, 0.9, 0.7, 0.6]);
    close(median, 0.65);
    close(mean, 0.675);
    // numpy.std([0.5, 0.9, 0.7, 0.6], ddof=1)
    close(std, 0.17078251276599332);
    assert_eq!(summary(&[0.3]), (0.3, 0.3, 0.0));
}

#[test]
fn median_of_odd_and_even_counts() {
    use electra_eval::metrics::median;
    assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
    assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), 2.5);
    assert_eq!(median(&[]), 0.0);
}
