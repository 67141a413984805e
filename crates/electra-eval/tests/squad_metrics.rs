//! `electra squad score` against the official SQuAD evaluation scripts: the fixtures in
//! `tests/fixtures/squad` (hand-made official-format files: several gold answers, articles and
//! punctuation, an answer that normalises to nothing, a missing prediction, a prediction for
//! an unknown id, no-answer scores with ties and an id the data does not have) scored by
//! `evaluate-v1.1.py` and `evaluate-v2.0.py` with `scripts/squad_metrics_reference.py`
//! (Python 3.11.7); the numbers below are what it printed, and ours must equal them to the
//! last bit.

use std::path::{Path, PathBuf};

use electra_eval::squad::Version;
use electra_eval::squad::metrics::{Scores, score_files};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/squad")
        .join(name)
}

fn v2(threshold: f64, with_odds: bool) -> Scores {
    let odds = fixture("null_odds-v2.0.json");
    let (version, scores) = score_files(
        &fixture("dev-v2.0.json"),
        &fixture("predictions-v2.0.json"),
        with_odds.then_some(odds.as_path()),
        None,
        threshold,
    )
    .expect("score");
    assert_eq!(version, Version::V2_0, "from the file's `version`");
    scores
}

/// `(key, value)` pairs of the official output, parsed back from our JSON.
fn official(scores: &Scores) -> Vec<(String, f64)> {
    let value: serde_json::Value = serde_json::from_str(&scores.to_official_json()).expect("json");
    let object = value.as_object().expect("object");
    let mut out: Vec<(String, f64)> = object
        .iter()
        .map(|(k, v)| (k.clone(), v.as_f64().expect("number")))
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

fn expect(scores: &Scores, want: &[(&str, f64)]) {
    let mut want: Vec<(String, f64)> = want.iter().map(|(k, v)| (k.to_string(), *v)).collect();
    want.sort_by(|a, b| a.0.cmp(&b.0));
    let got = official(scores);
    assert_eq!(got.len(), want.len(), "keys: {got:?}");
    for ((k, v), (wk, wv)) in got.iter().zip(&want) {
        assert_eq!(k, wk);
        assert_eq!(v.to_bits(), wv.to_bits(), "{k}: ours {v}, official {wv}");
    }
}

/// Hand check: EM 2/6 (r2 "Black Forest." and c1 "paris"; c2 has no prediction and scores 0
/// in the total of 6); F1 (0.5 + 1 + 0.8 + 1 + 0 + 6/7)/6.
#[test]
fn v1_1_equals_the_official_script() {
    let (version, scores) = score_files(
        &fixture("dev-v1.1.json"),
        &fixture("predictions-v1.1.json"),
        None,
        None,
        1.0,
    )
    .expect("score");
    assert_eq!(version, Version::V1_1);
    let Scores::V1(v1) = &scores else {
        panic!("v1 scores")
    };
    assert_eq!(v1.missing, ["c2"]);
    assert_eq!(v1.total, 6);
    let hand_f1 = 100.0 * (0.5 + 1.0 + 0.8 + 1.0 + 0.0 + 6.0 / 7.0) / 6.0;
    assert!((v1.f1 - hand_f1).abs() < 1e-12, "{} vs {hand_f1}", v1.f1);
    expect(
        &scores,
        &[
            ("exact_match", 33.333333333333336),
            ("f1", 69.28571428571428),
        ],
    );
}

#[test]
fn v2_0_without_no_answer_scores_equals_the_official_script() {
    expect(
        &v2(1.0, false),
        &[
            ("exact", 50.0),
            ("f1", 66.66666666666666),
            ("total", 8.0),
            ("HasAns_exact", 60.0),
            ("HasAns_f1", 86.66666666666666),
            ("HasAns_total", 5.0),
            ("NoAns_exact", 33.333333333333336),
            ("NoAns_f1", 33.333333333333336),
            ("NoAns_total", 3.0),
        ],
    );
}

/// With `null_odds`: the default threshold 1.0 and two others, and the best thresholds.
#[test]
fn v2_0_thresholds_equal_the_official_script() {
    let best = [
        ("best_exact", 62.5),
        ("best_exact_thresh", 0.5),
        ("best_f1", 70.83333333333334),
        ("best_f1_thresh", 0.5),
    ];
    let at_default = [
        ("exact", 62.5),
        ("f1", 70.83333333333334),
        ("total", 8.0),
        ("HasAns_exact", 60.0),
        ("HasAns_f1", 73.33333333333333),
        ("HasAns_total", 5.0),
        ("NoAns_exact", 66.66666666666667),
        ("NoAns_f1", 66.66666666666667),
        ("NoAns_total", 3.0),
    ];
    for threshold in [1.0, 0.5] {
        let want: Vec<(&str, f64)> = at_default.iter().chain(&best).copied().collect();
        expect(&v2(threshold, true), &want);
    }
    let at_minus_one = [
        ("exact", 50.0),
        ("f1", 50.0),
        ("total", 8.0),
        ("HasAns_exact", 40.0),
        ("HasAns_f1", 40.0),
        ("HasAns_total", 5.0),
        ("NoAns_exact", 66.66666666666667),
        ("NoAns_f1", 66.66666666666667),
        ("NoAns_total", 3.0),
    ];
    let want: Vec<(&str, f64)> = at_minus_one.iter().chain(&best).copied().collect();
    expect(&v2(-1.0, true), &want);
}

/// What the v2.0 script stops on is an error naming the question or the file.
#[test]
fn missing_predictions_and_odds_are_errors_for_2_0() {
    let dir = tempfile::tempdir().expect("tempdir");
    let preds = dir.path().join("p.json");
    std::fs::write(&preds, r#"{"a1": "1903"}"#).expect("write");
    let err = score_files(&fixture("dev-v2.0.json"), &preds, None, None, 1.0)
        .expect_err("missing")
        .to_string();
    assert!(
        err.contains("\"a2\"") && err.contains("no prediction"),
        "{err}"
    );
    let odds = dir.path().join("o.json");
    let with_odds = |text: &str| {
        std::fs::write(&odds, text).expect("write");
        score_files(
            &fixture("dev-v2.0.json"),
            &fixture("predictions-v2.0.json"),
            Some(&odds),
            None,
            1.0,
        )
        .expect_err(text)
        .to_string()
    };
    let err = with_odds(r#"{"a1": 0.5}"#);
    assert!(err.contains("no score for question \"a2\""), "{err}");
    let err = with_odds(r#"{"a1": "high"}"#);
    assert!(
        err.contains("o.json:1:") && err.contains("no-answer scores"),
        "{err}"
    );
}
