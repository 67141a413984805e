//! `electra finetune`, `electra glue` and `electra glue score` end to end on files the tests
//! write, starting from the tiny HF discriminator fixture: the results table and JSON, the
//! test-server prediction files, scoring, and the errors for unknown tasks and missing folders.

use std::path::{Path, PathBuf};
use std::process::Output;

mod common;
use common::{electra, write_vocab};

use serde_json::Value;

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../electra-model/tests/fixtures/hf-tiny/discriminator")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

const WORDS: [&str; 20] = [
    "the", "cat", "dog", "sat", "ran", "on", "mat", "park", "a", "big", "small", "red", "blue",
    "is", "was", "not", "happy", "sad", "house", "tree",
];

fn sentence(i: usize, len: usize) -> String {
    (0..len)
        .map(|k| WORDS[(i * 7 + k * 3) % WORDS.len()])
        .collect::<Vec<_>>()
        .join(" ")
}

/// An RTE folder with train.tsv (no dev.tsv: validation is carved from train) and test.tsv
/// (without the final newline).
fn write_rte(glue: &Path) {
    let dir = glue.join("RTE");
    std::fs::create_dir_all(&dir).expect("mkdir");
    let mut train = String::from("index\tsentence1\tsentence2\tlabel\n");
    for i in 0..40 {
        let label = if i % 2 == 0 {
            "entailment"
        } else {
            "not_entailment"
        };
        train += &format!("{i}\t{}\t{}\t{label}\n", sentence(i, 6), sentence(i + 1, 3));
    }
    std::fs::write(dir.join("train.tsv"), train).expect("train");
    let rows: Vec<String> = (0..7)
        .map(|i| format!("{}\t{}\t{}", 100 + i, sentence(i, 5), sentence(i + 2, 4)))
        .collect();
    let test = format!("index\tsentence1\tsentence2\n{}", rows.join("\n"));
    std::fs::write(dir.join("test.tsv"), test).expect("test");
}

#[test]
fn glue_fine_tunes_writes_tables_and_prediction_files() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let glue = tmp.path().join("glue");
    write_rte(&glue);
    let vocab = tmp.path().join("vocab.txt");
    write_vocab(&vocab, &WORDS);
    let out = tmp.path().join("out");
    let result = electra(&[
        "glue",
        "--tasks",
        "rte,cola",
        "--glue-dir",
        glue.to_str().expect("utf8"),
        "--checkpoint",
        fixture().to_str().expect("utf8"),
        "--tokenizer",
        vocab.to_str().expect("utf8"),
        "--seeds",
        "2",
        "--epochs",
        "2",
        "--max-seq-len",
        "32",
        "--out",
        out.to_str().expect("utf8"),
    ]);
    assert!(
        result.status.success(),
        "electra glue failed: {}",
        stderr(&result)
    );
    // CoLA has no folder: skipped with a note naming the expected path.
    assert!(
        stderr(&result).contains("CoLA: no task folder"),
        "{}",
        stderr(&result)
    );

    let report: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("results.json")).expect("json"))
            .expect("parse");
    let rte = &report["tasks"][0];
    assert_eq!(rte["task"], "RTE");
    assert_eq!(rte["seeds"].as_array().expect("seeds").len(), 2);
    assert_eq!(rte["train_examples"], 36);
    assert_eq!(rte["validation_examples"], 4);
    assert!(
        rte["validation"]
            .as_str()
            .expect("v")
            .contains("held-out 10% of train")
    );
    assert_eq!(rte["recipe"]["epochs"], 2);
    let acc = rte["summary"]["accuracy"]["median"]
        .as_f64()
        .expect("median");
    assert!((0.0..=1.0).contains(&acc));
    assert_eq!(report["paper_average_tasks"][0], "RTE");
    assert!(
        report["skipped"][0]
            .as_str()
            .expect("note")
            .contains("CoLA")
    );
    let md = std::fs::read_to_string(out.join("results.md")).expect("md");
    assert!(md.contains("| RTE | accuracy |"), "{md}");

    // Test-server file: official name, header, the test file's indices, label strings.
    let preds = std::fs::read_to_string(out.join("predictions/RTE.tsv")).expect("preds");
    let lines: Vec<&str> = preds.lines().collect();
    assert_eq!(lines[0], "index\tprediction");
    assert_eq!(lines.len(), 8);
    for (i, line) in lines[1..].iter().enumerate() {
        let (id, label) = line.split_once('\t').expect("tab");
        assert_eq!(id, (100 + i).to_string());
        assert!(label == "entailment" || label == "not_entailment", "{line}");
    }
    // Per-step metrics: 2 seeds × 2 epochs × 2 steps (36 examples, batch 32).
    let metrics = std::fs::read_to_string(out.join("metrics.jsonl")).expect("metrics");
    assert_eq!(metrics.lines().count(), 8);
}

#[test]
fn score_uses_the_official_metrics_and_matches_by_index() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let gold = tmp.path().join("dev.tsv");
    std::fs::write(
        &gold,
        "\u{feff}Quality\t#1 ID\t#2 ID\t#1 String\t#2 String\n\
         1\t1\t2\ta\tb\n0\t3\t4\tc\td\n1\t5\t6\te\tf\n1\t7\t8\tg\th\n",
    )
    .expect("gold");
    // Rows out of order; index = row number of the dev file (MRPC dev has no index column).
    let preds = tmp.path().join("MRPC.tsv");
    std::fs::write(&preds, "index\tprediction\n3\t0\n0\t1\n1\t1\n2\t1\n").expect("preds");
    let out = electra(&[
        "glue",
        "score",
        "--task",
        "mrpc",
        "--predictions",
        preds.to_str().expect("utf8"),
        "--gold",
        gold.to_str().expect("utf8"),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    // tp 2, fp 1, fn 1: accuracy 2/4, F1 2·2/(4+1+1).
    assert!(text.contains("MRPC accuracy: 50.00"), "{text}");
    assert!(text.contains("MRPC f1: 66.67"), "{text}");

    std::fs::write(&preds, "index\tprediction\n0\t1\n1\tyes\n").expect("bad");
    let out = electra(&[
        "glue",
        "score",
        "--task",
        "mrpc",
        "--predictions",
        preds.to_str().expect("utf8"),
        "--gold",
        gold.to_str().expect("utf8"),
    ]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("MRPC.tsv:3: label `yes`"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn unknown_tasks_and_missing_folders_are_clear_errors() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().to_str().expect("utf8");
    let fixture = fixture();
    let checkpoint = fixture.to_str().expect("utf8");
    let out = electra(&[
        "finetune",
        "--task",
        "squad",
        "--glue-dir",
        dir,
        "--checkpoint",
        checkpoint,
    ]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("unknown GLUE task `squad`"),
        "{}",
        stderr(&out)
    );
    let vocab = tmp.path().join("vocab.txt");
    write_vocab(&vocab, &WORDS);
    let out = electra(&[
        "finetune",
        "--task",
        "rte",
        "--glue-dir",
        dir,
        "--checkpoint",
        checkpoint,
        "--tokenizer",
        vocab.to_str().expect("utf8"),
        "--max-seq-len",
        "32",
        "--out",
        tmp.path().join("o").to_str().expect("utf8"),
    ]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains("RTE: no task folder"), "{err}");
    assert!(
        err.contains("/RTE/task folder") || err.contains("/RTE/"),
        "{err}"
    );
}

#[test]
fn finetune_defaults_fit_the_model_and_results_are_not_replaced_silently() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let glue = tmp.path().join("glue");
    write_rte(&glue);
    let vocab = tmp.path().join("vocab.txt");
    write_vocab(&vocab, &WORDS);
    let fixture = fixture();
    let finetune = |out: &Path, extra: &[&str]| {
        let mut args = vec!["finetune", "--task", "rte"];
        args.extend_from_slice(&["--glue-dir", glue.to_str().expect("utf8")]);
        args.extend_from_slice(&["--checkpoint", fixture.to_str().expect("utf8")]);
        args.extend_from_slice(&["--tokenizer", vocab.to_str().expect("utf8")]);
        args.extend_from_slice(&["--seeds", "1", "--epochs", "1"]);
        args.extend_from_slice(&["--out", out.to_str().expect("utf8")]);
        args.extend_from_slice(extra);
        electra(&args)
    };
    // No --max-seq-len: the default (128) is cut to the fixture's 40 positions.
    let out = tmp.path().join("out");
    let first = finetune(&out, &[]);
    assert!(first.status.success(), "{}", stderr(&first));
    let report: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("results.json")).expect("json"))
            .expect("parse");
    assert_eq!(report["config"]["max_seq_len"], 40, "{report}");

    // An explicit value the model cannot take is still an error naming both numbers.
    let too_long = finetune(&tmp.path().join("other"), &["--max-seq-len", "128"]);
    assert!(!too_long.status.success());
    assert!(
        stderr(&too_long)
            .contains("--max-seq-len 128 exceeds the model's max_position_embeddings 40"),
        "{}",
        stderr(&too_long)
    );

    // The same --out again is refused, naming it and --overwrite; the results stay.
    let before = std::fs::read(out.join("results.json")).expect("results");
    let again = finetune(&out, &[]);
    assert!(!again.status.success());
    let err = stderr(&again);
    assert!(
        err.contains(out.to_str().expect("utf8")) && err.contains("--overwrite"),
        "{err}"
    );
    assert_eq!(
        std::fs::read(out.join("results.json")).expect("results"),
        before
    );

    // With --overwrite the earlier set goes whole: a prediction file of an earlier run
    // (a task not in this one) does not stay behind.
    let stale = out.join("predictions").join("CoLA.tsv");
    std::fs::write(&stale, "index\tprediction\n").expect("stale");
    let replaced = finetune(&out, &["--overwrite"]);
    assert!(replaced.status.success(), "{}", stderr(&replaced));
    assert!(!stale.exists(), "stale prediction file kept");
    assert!(out.join("predictions").join("RTE.tsv").is_file());
}
