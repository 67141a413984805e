//! `electra squad`, `squad predict` and `squad score` end to end on files the tests write,
//! from the tiny HF discriminator fixture: both heads, SQuAD 2.0, the output files in the
//! official formats, resuming after a crash between seeds, the exported model answering new
//! questions, and errors for bad input.

use std::path::{Path, PathBuf};
use std::process::Command;

mod common;
use common::{electra, electra_ok, write_vocab};

use serde_json::Value;

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../electra-model/tests/fixtures/hf-tiny/discriminator")
}

const WORDS: [&str; 24] = [
    "the", "cat", "dog", "sat", "ran", "on", "mat", "park", "a", "big", "small", "red", "blue",
    "is", "was", "not", "where", "who", "what", "house", "tree", "?", ".", "did",
];

/// A SQuAD 2.0 file: `n` paragraphs of two questions each, one answerable, one not.
fn write_squad(path: &Path, n: usize, offset: usize) {
    let colours = ["red", "blue"];
    let things = ["cat", "dog", "house", "tree"];
    let mut paragraphs = Vec::new();
    for i in 0..n {
        let colour = colours[(i + offset) % 2];
        let thing = things[(i + offset) % 4];
        let context = format!("the {colour} {thing} sat on the big mat in the park .");
        let start = 4;
        paragraphs.push(serde_json::json!({
            "context": context,
            "qas": [
                {"id": format!("q{offset}-{i}"), "question": format!("what {thing} sat ?"),
                 "is_impossible": false,
                 "answers": [{"text": format!("{colour} {thing}"), "answer_start": start}]},
                {"id": format!("u{offset}-{i}"), "question": "who ran ?", "is_impossible": true,
                 "answers": []},
            ],
        }));
    }
    let file =
        serde_json::json!({"version": "v2.0", "data": [{"title": "t", "paragraphs": paragraphs}]});
    std::fs::write(path, serde_json::to_string(&file).expect("json")).expect("write");
}

fn json(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).expect("read")).expect("json")
}

struct Files {
    _tmp: tempfile::TempDir,
    root: PathBuf,
}

fn files() -> Files {
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = tmp.path().to_path_buf();
    write_vocab(&root.join("vocab.txt"), &WORDS);
    write_squad(&root.join("train.json"), 12, 0);
    write_squad(&root.join("dev.json"), 4, 1);
    Files { _tmp: tmp, root }
}

fn squad_args<'a>(f: &'a Files, out: &'a str, head: &'a str, seeds: &'a str) -> Vec<String> {
    let p = |n: &str| f.root.join(n).display().to_string();
    [
        "squad",
        "--checkpoint",
        &fixture().display().to_string(),
        "--tokenizer",
        &p("vocab.txt"),
        "--train",
        &p("train.json"),
        "--dev",
        &p("dev.json"),
        "--seeds",
        seeds,
        "--epochs",
        "1",
        "--batch-size",
        "8",
        "--max-seq-len",
        "24",
        "--doc-stride",
        "4",
        "--max-query-len",
        "6",
        "--head",
        head,
        "--out",
        &p(out),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

fn run(args: &[String]) -> std::process::Output {
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    electra_ok(&refs)
}

/// `electra ARGS`, success or not.
fn attempt(args: &[String]) -> std::process::Output {
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    electra(&refs)
}

/// The reference head on 2.0 over two seeds, killed after the first seed is recorded and run
/// again: the second invocation resumes (seed 1 is not trained again) and writes the official
/// files; `squad score` reproduces the run's numbers from them; the model answers new
/// questions with spans of their contexts.
#[test]
fn squad_2_0_runs_resumes_scores_and_predicts() {
    let f = files();
    let args = squad_args(&f, "out", "reference", "2");
    let killed = Command::new(env!("CARGO_BIN_EXE_electra"))
        .args(&args)
        .env("ELECTRA_TEST_KILL_AT", "squad.seed-recorded@1")
        .output()
        .expect("run");
    assert!(!killed.status.success(), "killed after seed 1");
    let out = f.root.join("out");
    assert!(out.join("seeds/seed-1.json").is_file());
    assert!(
        !out.join("results.json").exists(),
        "no result of a half-done run"
    );
    let resumed = run(&args);
    let stdout = String::from_utf8_lossy(&resumed.stdout);
    assert!(stdout.contains("seed 1 (finished earlier)"), "{stdout}");
    assert!(stdout.contains("seed 2:"), "{stdout}");

    let results = json(&out.join("results.json"));
    assert_eq!(results["version"], "2.0");
    assert_eq!(results["seeds"].as_array().expect("seeds").len(), 2);
    assert_eq!(
        (
            results["dev_questions"].as_u64(),
            results["train_questions"].as_u64()
        ),
        (Some(8), Some(24))
    );
    for key in [
        "exact",
        "f1",
        "HasAns_exact",
        "NoAns_exact",
        "best_exact",
        "best_f1_thresh",
    ] {
        assert!(
            results["summary"][key]["median"].is_number(),
            "{key}: {results}"
        );
    }
    let predictions = json(&out.join("predictions.json"));
    let odds = json(&out.join("null_odds.json"));
    let answers = json(&out.join("answers.json"));
    let dev = json(&f.root.join("dev.json"));
    let contexts: Vec<String> = dev["data"][0]["paragraphs"]
        .as_array()
        .expect("paragraphs")
        .iter()
        .map(|p| p["context"].as_str().expect("context").to_string())
        .collect();
    assert_eq!(predictions.as_object().expect("object").len(), 8);
    for (id, text) in predictions.as_object().expect("object") {
        let text = text.as_str().expect("text");
        assert!(contexts.iter().any(|c| c.contains(text)), "{id}: {text:?}");
        assert!(odds[id].is_number(), "{id}");
        assert!(answers[id].is_string(), "{id}");
    }
    let model = json(&out.join("model/config.json"));
    assert_eq!(model["architectures"][0], "ElectraReferenceQA");
    assert!(model["squad_null_threshold"].is_number());

    // `squad score` on the written files gives the best seed's numbers.
    let scored = run(&[
        "squad".into(),
        "score".into(),
        f.root.join("dev.json").display().to_string(),
        out.join("predictions.json").display().to_string(),
        "--na-prob".into(),
        out.join("null_odds.json").display().to_string(),
        "--na-prob-thresh".into(),
        "-2.75".into(),
    ]);
    let scored: Value = serde_json::from_slice(&scored.stdout).expect("score json");
    let best = results["best_seed"].as_u64().expect("best seed");
    let seed = results["seeds"]
        .as_array()
        .expect("seeds")
        .iter()
        .find(|s| s["seed"].as_u64() == Some(best))
        .expect("best seed's result");
    for key in ["exact", "f1", "best_exact", "best_f1"] {
        assert_eq!(scored[key], seed["scores"][key], "{key}");
    }

    // The exported model answers new questions with spans of their contexts.
    let questions = f.root.join("questions.json");
    std::fs::write(
        &questions,
        r#"[{"id": "n1", "question": "what dog sat ?", "context": "the red dog sat on the mat ."},
            {"question": "who ran ?", "context": "a cat ran in the park ."}]"#,
    )
    .expect("questions");
    let answered = f.root.join("answers.json");
    run(&[
        "squad".into(),
        "predict".into(),
        "--checkpoint".into(),
        out.join("model").display().to_string(),
        "--input".into(),
        questions.display().to_string(),
        "--output".into(),
        answered.display().to_string(),
    ]);
    let answered = json(&answered);
    let list = answered.as_array().expect("list");
    assert_eq!(
        (list.len(), list[0]["id"].as_str(), list[1]["id"].as_str()),
        (2, Some("n1"), Some("1"))
    );
    for (a, context) in list
        .iter()
        .zip(["the red dog sat on the mat .", "a cat ran in the park ."])
    {
        assert!(a["null_odds"].is_number());
        let span = a["best_span"].as_str().expect("best span");
        assert!(context.contains(span), "{span:?} not in {context:?}");
    }
}

/// Hugging Face's head exports an `ElectraForQuestionAnswering` directory (1 seed).
#[test]
fn the_hf_head_exports_electra_for_question_answering() {
    let f = files();
    run(&squad_args(&f, "hf", "hf", "1"));
    let model = json(&f.root.join("hf/model/config.json"));
    assert_eq!(model["architectures"][0], "ElectraForQuestionAnswering");
    assert!(f.root.join("hf/model/model.safetensors").is_file());
    assert!(f.root.join("hf/model/vocab.txt").is_file());
    // A finished run is not overwritten silently.
    let again = attempt(&squad_args(&f, "hf", "hf", "1"));
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("--overwrite"));
}

/// Bad input names the file and the question.
#[test]
fn bad_squad_files_are_errors_naming_the_question() {
    let f = files();
    std::fs::write(
        f.root.join("train.json"),
        r#"{"version": "v2.0", "data": [{"paragraphs": [{"context": "the cat", "qas": [{"id": "x7", "answers": []}]}]}]}"#,
    )
    .expect("write");
    let out = attempt(&squad_args(&f, "bad", "reference", "1"));
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("train.json") && err.contains("\"x7\"") && err.contains("`question`"),
        "{err}"
    );
    let scored = electra(&[
        "squad",
        "score",
        &f.root.join("dev.json").display().to_string(),
        &f.root.join("vocab.txt").display().to_string(),
    ]);
    assert!(!scored.status.success());
    assert!(String::from_utf8_lossy(&scored.stderr).contains("vocab.txt:1:"));
}
