//! What the CLI's end-to-end tests share: running the `electra` binary and a shrunken model.
#![allow(dead_code)]

use std::path::Path;
use std::process::{Command, Output};

/// Runs `electra ARGS` and returns what it did, success or not.
pub fn electra(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_electra"))
        .args(args)
        .output()
        .expect("run electra")
}

/// Runs `electra ARGS` and fails the test, with its stderr, unless it succeeded.
pub fn electra_ok(args: &[&str]) -> Output {
    let out = electra(args);
    assert!(
        out.status.success(),
        "electra {args:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// `--set` flags that shrink the demo preset's model to a test size.
pub const TINY_MODEL: [&str; 12] = [
    "--set",
    "model.embedding_size=16",
    "--set",
    "model.hidden_size=32",
    "--set",
    "model.num_hidden_layers=1",
    "--set",
    "model.num_attention_heads=2",
    "--set",
    "model.intermediate_size=64",
    "--set",
    "objective.generator_hidden_multiplier=0.5",
];

/// With [`TINY_MODEL`] before it: a shrunken demo run without evaluation.
pub const QUICK_RUN: &[&str] = &[
    "--set",
    "train.batch_size=4",
    "--set",
    "train.checkpoint_every=2",
    "--set",
    "train.eval_every=0",
    "--set",
    "data.max_seq_len=32",
    "--set",
    "data.demo_documents=20",
    "--set",
    "data.shuffle_buffer=16",
];

/// A 64-token vocabulary (the size of the tiny HF fixture's): the five specials, `words`, then
/// `[unusedN]` fillers.
pub fn write_vocab(path: &Path, words: &[&str]) {
    let mut vocab: Vec<String> = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
        .iter()
        .chain(words.iter())
        .map(|s| s.to_string())
        .collect();
    let mut i = 0;
    while vocab.len() < 64 {
        vocab.push(format!("[unused{i}]"));
        i += 1;
    }
    std::fs::write(path, vocab.join("\n") + "\n").expect("vocab");
}
