//! `electra data build|inspect` and `electra tokenizer train` end to end on tiny inputs.

use std::path::Path;
use std::process::{Command, Output};

mod common;
use common::electra;

fn ok(out: &Output) -> String {
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

#[test]
fn demo_build_then_inspect_then_corrupt() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let out = tmp.path().join("demo");
    ok(&electra(&[
        "data",
        "build",
        "--out",
        s(&out),
        "--shards",
        "2",
        "--demo-documents",
        "40",
        "--max-seq-len",
        "64",
    ]));
    let text = ok(&electra(&["data", "inspect", s(&out)]));
    assert!(text.contains("all 2 shard(s) verified"), "{text}");
    assert!(text.contains("demo corpus"), "{text}");

    // Pre-training reads the shards with the tokenizer the build saved beside them.
    let run = tmp.path().join("run");
    let trained = ok(&electra(&[
        "pretrain",
        "--data",
        s(&out),
        "--out",
        s(&run),
        "--steps",
        "2",
        "--set",
        "train.batch_size=4",
        "--set",
        "data.max_seq_len=64",
        "--set",
        "model.num_hidden_layers=1",
    ]));
    assert!(trained.contains("steps 0..2"), "{trained}");
    let config = std::fs::read_to_string(run.join("config.toml")).expect("config");
    assert!(config.contains("tokenizer"), "{config}");

    let shard = out.join("shard-00001-of-00002.parquet");
    let bytes = std::fs::read(&shard).expect("read shard");
    std::fs::write(&shard, &bytes[..bytes.len() / 2]).expect("truncate");
    let bad = electra(&["data", "inspect", s(&out)]);
    assert!(!bad.status.success());
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(err.contains("shard-00001-of-00002.parquet"), "{err}");
}

#[test]
fn train_tokenizer_then_build_from_files() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let corpus = tmp.path().join("corpus.txt");
    let mut text = String::new();
    for i in 0..200 {
        text.push_str(&format!(
            "The quick brown fox {i} jumps over the lazy dog.\n"
        ));
        if i % 10 == 9 {
            text.push('\n');
        }
    }
    std::fs::write(&corpus, text).expect("write corpus");
    let tok = tmp.path().join("tok");
    ok(&electra(&[
        "tokenizer",
        "train",
        "--input",
        s(&corpus),
        "--vocab-size",
        "120",
        "--out",
        s(&tok),
    ]));
    assert!(tok.join("tokenizer.json").is_file());
    // Training into a directory that holds a tokenizer is refused unless --overwrite.
    let train_again = |extra: &[&str]| {
        let mut args = vec!["tokenizer", "train", "--input", s(&corpus)];
        args.extend_from_slice(&["--vocab-size", "120", "--out", s(&tok)]);
        args.extend_from_slice(extra);
        electra(&args)
    };
    let refused = train_again(&[]);
    assert!(!refused.status.success());
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(
        err.contains(s(&tok)) && err.contains("--overwrite") && err.contains("vocab.txt"),
        "{err}"
    );
    ok(&train_again(&["--overwrite"]));
    let vocab = std::fs::read_to_string(tok.join("vocab.txt")).expect("vocab");
    assert!(
        vocab.starts_with("[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\n"),
        "{vocab}"
    );

    let build = |out: &Path, shards: &str| {
        let vocab = tok.join("vocab.txt");
        electra(&[
            "data",
            "build",
            "--input",
            s(&corpus),
            "--tokenizer",
            s(&vocab),
            "--out",
            s(out),
            "--shards",
            shards,
            "--max-seq-len",
            "32",
        ])
    };
    let shards = tmp.path().join("shards");
    let text = ok(&build(&shards, "1"));
    assert!(text.contains("20 documents"), "{text}");
    ok(&electra(&["data", "inspect", s(&shards)]));
    // Fewer files than shards: a one-line warning says how many shards stay empty.
    let two = build(&tmp.path().join("two"), "2");
    ok(&two);
    let warning = String::from_utf8_lossy(&two.stderr);
    assert!(
        warning.contains("1 input file(s) for 2 shards: each file goes whole into one shard, so 1 shard(s) will be empty"),
        "{warning}"
    );

    // Missing tokenizer and empty input are clear errors.
    let bad = electra(&["data", "build", "--input", s(&corpus), "--out", s(&shards)]);
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("--tokenizer"));
    let empty = tmp.path().join("empty.txt");
    std::fs::write(&empty, "\n\n").expect("write");
    let bad = electra(&[
        "data",
        "build",
        "--input",
        s(&empty),
        "--tokenizer",
        s(&tok),
        "--out",
        s(&tmp.path().join("x")),
    ]);
    assert!(!bad.status.success());
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(
        err.contains("empty corpus") && err.contains("empty.txt"),
        "{err}"
    );
}

/// The `shard-*.parquet` files in `dir`, sorted.
fn shard_files(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("read dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("shard-") && n.ends_with(".parquet"))
        .collect();
    names.sort();
    names
}

#[test]
fn rebuilding_shards_needs_overwrite_and_leaves_nothing_stale() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let out = tmp.path().join("demo");
    let build = |shards: &str, extra: &[&str]| {
        let mut args = vec!["data", "build", "--out", s(&out), "--shards", shards];
        args.extend_from_slice(&["--demo-documents", "40", "--max-seq-len", "32"]);
        args.extend_from_slice(extra);
        // User errors stand alone: no backtrace even when one is asked for.
        Command::new(env!("CARGO_BIN_EXE_electra"))
            .args(&args)
            .env("RUST_BACKTRACE", "1")
            .output()
            .expect("run electra")
    };
    ok(&build("4", &[]));
    assert_eq!(shard_files(&out).len(), 4);

    let refused = build("2", &[]);
    assert_eq!(refused.status.code(), Some(1));
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(
        err.contains(s(&out)) && err.contains("--overwrite"),
        "{err}"
    );
    assert!(err.lines().any(|l| l.starts_with("Error: ")), "{err}");
    assert!(!err.to_lowercase().contains("backtrace"), "{err}");
    assert_eq!(
        shard_files(&out).len(),
        4,
        "a refused build changed the set"
    );

    ok(&build("2", &["--overwrite"]));
    assert_eq!(
        shard_files(&out),
        [
            "shard-00000-of-00002.parquet",
            "shard-00001-of-00002.parquet"
        ]
    );
    let text = ok(&electra(&["data", "inspect", s(&out)]));
    assert!(text.contains("all 2 shard(s) verified"), "{text}");
}
