//! The §3.5 baselines are fine-tunable like ELECTRA runs: `electra export` writes the
//! discriminator-sized network of those without a replaced-token head (`mlm`, `replace-mlm`) as
//! an `ElectraForMaskedLM` and that of `all-tokens-mlm` (whose copy gate has the RTD head's
//! shape) as an `ElectraForPreTraining`, and `electra finetune` accepts both the run directory
//! and that export.

use std::path::Path;

mod common;
use common::{QUICK_RUN as SMALL, TINY_MODEL, electra_ok as electra};

use serde_json::Value;

/// A tiny RTE folder (train only: validation is carved from it).
fn write_rte(glue: &Path) {
    let dir = glue.join("RTE");
    std::fs::create_dir_all(&dir).expect("mkdir");
    let words = [
        "the", "cat", "sat", "on", "a", "mat", "dog", "ran", "in", "park",
    ];
    let sentence = |i: usize, len: usize| -> String {
        (0..len)
            .map(|k| words[(i * 3 + k * 7) % words.len()])
            .collect::<Vec<_>>()
            .join(" ")
    };
    let mut train = String::from("index\tsentence1\tsentence2\tlabel\n");
    for i in 0..20 {
        let label = ["entailment", "not_entailment"][i % 2];
        train += &format!("{i}\t{}\t{}\t{label}\n", sentence(i, 6), sentence(i + 1, 3));
    }
    std::fs::write(dir.join("train.tsv"), train).expect("train");
}

/// `electra finetune --task rte` from `checkpoint`; returns the results JSON.
fn finetune(checkpoint: &Path, glue: &Path, out: &Path) -> Value {
    electra(&[
        "finetune",
        "--task",
        "rte",
        "--glue-dir",
        glue.to_str().expect("utf8"),
        "--checkpoint",
        checkpoint.to_str().expect("utf8"),
        "--seeds",
        "1",
        "--epochs",
        "1",
        "--max-seq-len",
        "32",
        "--out",
        out.to_str().expect("utf8"),
    ]);
    let text = std::fs::read_to_string(out.join("results.json")).expect("results.json");
    serde_json::from_str(&text).expect("json")
}

fn baseline_runs_export_and_fine_tune(objective: &str, has_generator: bool, class: &str) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let run = tmp.path().join("run");
    let set_objective = format!("objective.objective={objective}");
    let mut args = vec![
        "pretrain",
        "--steps",
        "2",
        "--out",
        run.to_str().expect("utf8"),
        "--set",
        &set_objective,
    ];
    args.extend_from_slice(&TINY_MODEL);
    args.extend_from_slice(SMALL);
    electra(&args);

    let hf = tmp.path().join("hf");
    electra(&[
        "export",
        run.to_str().expect("utf8"),
        "--out",
        hf.to_str().expect("utf8"),
    ]);
    let disc = hf.join("discriminator");
    let config: Value = serde_json::from_str(
        &std::fs::read_to_string(disc.join("config.json")).expect("config.json"),
    )
    .expect("json");
    assert_eq!(config["architectures"][0], class, "{objective}");
    assert_eq!(
        config["hidden_size"], 32,
        "discriminator-sized: {objective}"
    );
    assert_eq!(hf.join("generator").is_dir(), has_generator, "{objective}");

    let glue = tmp.path().join("glue");
    write_rte(&glue);
    for (name, checkpoint) in [("run", &run), ("export", &disc)] {
        let report = finetune(checkpoint, &glue, &tmp.path().join(format!("ft-{name}")));
        let rte = &report["tasks"][0];
        assert_eq!(rte["task"], "RTE", "{objective} from the {name}");
        assert_eq!(
            rte["seeds"].as_array().map(Vec::len),
            Some(1),
            "{objective} from the {name}: {report}"
        );
    }
}

#[test]
fn an_mlm_run_exports_an_encoder_that_finetune_loads() {
    baseline_runs_export_and_fine_tune("mlm", false, "ElectraForMaskedLM");
}

#[test]
fn a_replace_mlm_run_exports_an_encoder_that_finetune_loads() {
    baseline_runs_export_and_fine_tune("replace-mlm", true, "ElectraForMaskedLM");
}

#[test]
fn an_all_tokens_mlm_run_exports_an_encoder_that_finetune_loads() {
    baseline_runs_export_and_fine_tune("all-tokens-mlm", true, "ElectraForPreTraining");
}
