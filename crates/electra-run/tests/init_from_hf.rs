//! Continuing pre-training from a released generator and discriminator (`[init]`, `electra
//! pretrain --init-generator DIR --init-discriminator DIR`): the run takes its sizes from the two
//! checkpoints, says how the two stored copies of the shared embeddings differ and which it
//! keeps, and its first step's generator and discriminator losses on a fixed batch and masking
//! equal PyTorch's on the same checkpoints.
//!
//! `scripts/make_hf_fixtures.py` (`make_pair_fixture`) writes `tests/fixtures/hf-pair`: the tiny
//! discriminator of `electra-model`'s `hf-tiny`, a half-width generator whose copy of the
//! embedding block differs in two tensors, and the losses torch computes on `hf-tiny`'s batch
//! with `objective-tiny`'s slots and replacements, once with the generator reading the
//! discriminator's copy (what `tied` keeps) and once with each network reading its own
//! (`untied`, `gdes`).

// Test helpers outside #[test] fns are not covered by clippy.toml's allow-unwrap-in-tests.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};

use burn::backend::Flex;
use burn::prelude::*;
use electra_model::InputBatch;
use electra_objective::{EmbeddingSharing, HostBatch, MaskedBatch, Replacements};
use electra_run::config::RunConfig;
use electra_run::init::{adopt_hf_pair, describe, load_hf_pair};
use serde_json::Value;

type B = Flex;

/// Both sides compute in f32 in different orders; a real mistake (the wrong copy kept, a
/// missed LayerNorm, the generator's projection) moves these losses by far more.
const RELATIVE_TOLERANCE: f64 = 1e-5;

fn crate_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn pair() -> PathBuf {
    crate_dir().join("tests/fixtures/hf-pair")
}

fn read_json(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// A `[rows][cols]` JSON array, row-major.
fn row_major<T: serde::de::DeserializeOwned + Clone>(v: &Value) -> Vec<T> {
    serde_json::from_value::<Vec<Vec<T>>>(v.clone())
        .unwrap()
        .concat()
}

/// The run config of a continued run, resolved as `electra pretrain` resolves it.
fn config(sharing: EmbeddingSharing, expected: &Value) -> RunConfig {
    let dir = |d: &str| format!("\"{}\"", pair().join(d).display());
    let mut sets = vec![
        format!("init.generator={}", dir("generator")),
        format!("init.discriminator={}", dir("discriminator")),
        format!("objective.embedding_sharing={}", sharing.name()),
        "data.max_seq_len=10".into(),
    ];
    for key in [
        "pad_token_id",
        "cls_token_id",
        "sep_token_id",
        "mask_token_id",
    ] {
        sets.push(format!("objective.{key}={}", expected[key]));
    }
    let mut config = RunConfig::resolve(Some("tiny"), None, &sets).unwrap();
    adopt_hf_pair(&mut config).unwrap();
    config.validate().unwrap();
    config
}

/// `hf-tiny`'s batch with `objective-tiny`'s slots and replacements.
fn batch() -> (HostBatch, MaskedBatch, Vec<i64>) {
    let fixtures = crate_dir().join("..");
    let text =
        std::fs::read_to_string(fixtures.join("electra-model/tests/fixtures/hf-tiny/inputs.json"))
            .unwrap();
    let rows: InputBatch = serde_json::from_str(&text).unwrap();
    let batch = HostBatch::from_rows(
        &rows.input_ids,
        rows.token_type_ids.as_ref().unwrap(),
        rows.attention_mask.as_ref().unwrap(),
    )
    .unwrap();
    let slots =
        read_json(&fixtures.join("electra-objective/tests/fixtures/objective-tiny/expected.json"));
    let masked = MaskedBatch {
        masked_input_ids: row_major(&slots["masked_input_ids"]),
        positions: row_major(&slots["positions"]),
        targets: row_major(&slots["targets"]),
        weights: row_major(&slots["weights"]),
        slots: slots["positions"][0].as_array().unwrap().len(),
    };
    (batch, masked, row_major(&slots["sampled_ids"]))
}

fn scalar(t: &Tensor<B, 1>) -> f64 {
    t.clone().into_data().iter::<f64>().next().unwrap()
}

#[test]
fn the_first_step_of_a_continued_pair_matches_pytorch() {
    let expected = read_json(&pair().join("expected.json"));
    let (batch, masked, sampled) = batch();
    let device = Default::default();
    for (sharing, reference) in [
        (EmbeddingSharing::Tied, "discriminator_copy"),
        (EmbeddingSharing::Gdes, "own_copies"),
        (EmbeddingSharing::Untied, "own_copies"),
    ] {
        let config = config(sharing, &expected);
        // The sizes come from the checkpoints: the generator is half the discriminator's width.
        assert_eq!(
            (config.model.hidden_size, config.model.embedding_size),
            (32, 16)
        );
        assert_eq!(config.objective.generator_hidden_multiplier, 0.5);
        let (model, report) = load_hf_pair::<B>(&config, &device).unwrap().unwrap();
        let out = model
            .forward(&batch, &masked, Replacements::Given(&sampled))
            .unwrap();
        let want = &expected[reference];
        for (name, ours) in [
            ("mlm_loss", scalar(&out.mlm_loss)),
            ("rtd_loss", scalar(out.rtd_loss.as_ref().unwrap())),
            ("total_loss", scalar(&out.loss)),
        ] {
            let torch = want[name].as_f64().unwrap();
            let rel = (ours - torch).abs() / torch.abs();
            println!("{sharing:?} {name}: ours {ours:.9} torch {torch:.9} relative {rel:.2e}");
            assert!(
                rel < RELATIVE_TOLERANCE,
                "{sharing:?} {name}: {ours} vs {torch}"
            );
        }
        // The two copies' differences are named and measured (untied compares nothing).
        if sharing == EmbeddingSharing::Untied {
            assert!(report.differences.is_empty());
            continue;
        }
        let named: Vec<&str> = report.differences.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            named,
            [
                "embeddings.position_embeddings",
                "embeddings.LayerNorm.bias"
            ]
        );
        for (name, diff) in &report.differences {
            let nudge = expected["differences"][name.as_str()].as_f64().unwrap();
            assert!(
                (f64::from(*diff) - nudge).abs() < 1e-6,
                "{name}: {diff} vs {nudge}"
            );
        }
        let text = describe(&report).join("\n");
        assert!(
            text.contains("position_embeddings") && text.contains("kept:"),
            "{text}"
        );
    }
    // The reference is not vacuous: the two copies give different generator losses.
    let (a, b) = (
        expected["discriminator_copy"]["mlm_loss"].as_f64().unwrap(),
        expected["own_copies"]["mlm_loss"].as_f64().unwrap(),
    );
    assert!((a - b).abs() / a > 1e-4, "{a} vs {b}");
}

#[test]
fn a_generator_that_the_discriminator_cannot_give_is_named() {
    let expected = read_json(&pair().join("expected.json"));
    // hf-tiny's generator (hidden 24, 2 heads, FFN 40) is not what the reference's
    // get_generator_config derives from its discriminator (1 head, FFN 96).
    let tiny = crate_dir().join("../electra-model/tests/fixtures/hf-tiny");
    let mut config = config(EmbeddingSharing::Tied, &expected);
    config.init.generator = Some(tiny.join("generator"));
    let err = adopt_hf_pair(&mut config).unwrap_err().to_string();
    assert!(
        err.contains("num_attention_heads") && err.contains("generator/config.json"),
        "{err}"
    );
    // Only one of the two is an error naming the missing one.
    config.init.generator = None;
    let err = adopt_hf_pair(&mut config).unwrap_err().to_string();
    assert!(err.contains("init.generator"), "{err}");
}

#[test]
fn the_run_config_records_where_the_weights_came_from() {
    let expected = read_json(&pair().join("expected.json"));
    let config = config(EmbeddingSharing::Gdes, &expected);
    let text = config.to_toml().unwrap();
    assert!(text.contains("[init]"), "{text}");
    assert!(text.contains("hf-pair/generator") && text.contains("hf-pair/discriminator"));
    // A fresh run writes no [init] section at all (configs of earlier runs stay the same).
    let fresh = RunConfig::resolve(Some("tiny"), None, &[]).unwrap();
    assert!(!fresh.to_toml().unwrap().contains("[init]"));
}
