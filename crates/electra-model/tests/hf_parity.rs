//! Parity with Hugging Face `transformers`, the correctness oracle.
//!
//! `scripts/make_hf_fixtures.py` builds tiny HF models (embedding_size != hidden_size, 2
//! layers, several heads) with random weights and records their outputs on a padded batch with
//! two segments; the files are committed under `tests/fixtures/hf-tiny`, so this test needs no
//! Python. We load the checkpoints through our importer and compare every recorded tensor.

use std::path::{Path, PathBuf};

use burn::backend::Flex;
use burn::prelude::*;
use electra_model::hf::{self, Architecture};
use electra_model::{ElectraConfig, ElectraForMaskedLM, ElectraForPreTraining, InputBatch};
use serde_json::Value;

type B = Flex;

/// Both sides compute in f32; the largest differences seen are ~1e-6 (summation order). Any
/// real error (a wrong transpose, LN eps, GELU form, mask) is orders of magnitude above this.
const TOLERANCE: f32 = 1e-5;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/hf-tiny")
}

fn read_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).expect("fixture readable");
    serde_json::from_str(&text).expect("fixture is JSON")
}

fn inputs() -> InputBatch {
    let text = std::fs::read_to_string(fixtures().join("inputs.json")).expect("inputs.json");
    serde_json::from_str(&text).expect("inputs.json parses")
}

/// Flattens a nested JSON array into values and shape.
fn flatten(value: &Value) -> (Vec<f32>, Vec<usize>) {
    fn walk(v: &Value, depth: usize, out: &mut Vec<f32>, shape: &mut Vec<usize>) {
        match v {
            Value::Array(items) => {
                if shape.len() == depth {
                    shape.push(items.len());
                }
                assert_eq!(shape[depth], items.len(), "ragged fixture array");
                for item in items {
                    walk(item, depth + 1, out, shape);
                }
            }
            Value::Number(n) => out.push(n.as_f64().expect("number") as f32),
            other => panic!("unexpected fixture value {other}"),
        }
    }
    let (mut out, mut shape) = (Vec::new(), Vec::new());
    walk(value, 0, &mut out, &mut shape);
    (out, shape)
}

/// Asserts that `actual` matches the fixture array `expected` within [`TOLERANCE`]; returns the
/// max abs difference.
fn assert_close<const D: usize>(name: &str, actual: Tensor<B, D>, expected: &Value) -> f32 {
    let (want, shape) = flatten(expected);
    assert_eq!(actual.dims().to_vec(), shape, "{name}: shape");
    let got = actual.into_data().to_vec::<f32>().expect("f32 data");
    let max = got
        .iter()
        .zip(&want)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f32, f32::max);
    assert!(
        max <= TOLERANCE,
        "{name}: max abs difference {max:e} > tolerance {TOLERANCE:e}"
    );
    max
}

fn check_encoder_outputs(
    model: &electra_model::ElectraModel<B>,
    config: &ElectraConfig,
    expected: &Value,
    what: &str,
) {
    let device = Default::default();
    let x = inputs()
        .to_tensors::<B>(config, &device)
        .expect("inputs fit");
    let out = model.forward_all(x.input_ids, x.token_type_ids, x.attention_mask);
    assert_close(
        &format!("{what} embedding_output"),
        out.embedding_output.clone(),
        &expected["embedding_output"],
    );
    let states = expected["hidden_states"].as_array().expect("hidden_states");
    assert_eq!(out.hidden_states.len(), states.len(), "{what}: layer count");
    for (i, (ours, theirs)) in out.hidden_states.iter().zip(states).enumerate() {
        assert_close(&format!("{what} hidden_states[{i}]"), ours.clone(), theirs);
    }
    assert_close(
        &format!("{what} last_hidden_state"),
        out.last_hidden_state(),
        &expected["last_hidden_state"],
    );
}

fn check_discriminator(dir: &Path) {
    let device = Default::default();
    let (model, config) = hf::load_pretraining::<B>(dir, &device).expect("load discriminator");
    let expected = &read_json(&fixtures().join("expected.json"))["discriminator"];
    check_encoder_outputs(&model.electra, &config.model, expected, "discriminator");
    let x = inputs()
        .to_tensors::<B>(&config.model, &device)
        .expect("inputs");
    let logits = model.forward(x.input_ids, x.token_type_ids, x.attention_mask);
    let diff = assert_close("discriminator logits", logits, &expected["logits"]);
    eprintln!("discriminator logits max abs diff: {diff:e}");
}

#[test]
fn discriminator_matches_hf_from_safetensors() {
    check_discriminator(&fixtures().join("discriminator"));
}

#[test]
fn discriminator_matches_hf_from_pytorch_bin() {
    let dir = fixtures().join("discriminator-bin");
    assert!(dir.join("pytorch_model.bin").is_file());
    check_discriminator(&dir);
}

#[test]
fn generator_matches_hf() {
    let device = Default::default();
    let dir = fixtures().join("generator");
    let (model, config) = hf::load_masked_lm::<B>(&dir, &device).expect("load generator");
    let expected = &read_json(&fixtures().join("expected.json"))["generator"];
    check_encoder_outputs(&model.electra, &config.model, expected, "generator");
    let x = inputs()
        .to_tensors::<B>(&config.model, &device)
        .expect("inputs");
    let logits = model.forward(x.input_ids, x.token_type_ids, x.attention_mask);
    let diff = assert_close("generator mlm logits", logits, &expected["logits"]);
    eprintln!("generator logits max abs diff: {diff:e}");
}

#[test]
fn generator_and_discriminator_files_share_the_embedding_block() {
    // Spec 8.3: the released files carry the same (shared) embeddings; so do the fixtures.
    let device = Default::default();
    let (d, _) = hf::load_pretraining::<B>(&fixtures().join("discriminator"), &device)
        .expect("discriminator");
    let (g, _) =
        hf::load_masked_lm::<B>(&fixtures().join("generator"), &device).expect("generator");
    let (de, ge) = (&d.electra.embeddings, &g.electra.embeddings);
    for (a, b) in [
        (
            de.word_embeddings.weight.val(),
            ge.word_embeddings.weight.val(),
        ),
        (
            de.position_embeddings.weight.val(),
            ge.position_embeddings.weight.val(),
        ),
        (
            de.token_type_embeddings.weight.val(),
            ge.token_type_embeddings.weight.val(),
        ),
    ] {
        assert_eq!(a.into_data(), b.into_data());
    }
}

#[test]
fn load_dispatches_on_architectures() {
    let device = Default::default();
    let (model, _) = hf::load::<B>(&fixtures().join("generator"), &device).expect("generator");
    assert!(matches!(model, hf::HfModel::MaskedLm(_)));
    let (model, _) = hf::load::<B>(&fixtures().join("discriminator"), &device).expect("disc");
    assert!(matches!(model, hf::HfModel::PreTraining(_)));
}

#[test]
fn loading_the_wrong_architecture_lists_every_missing_and_unexpected_tensor() {
    let device = Default::default();
    let err = hf::load_masked_lm::<B>(&fixtures().join("discriminator"), &device)
        .expect_err("a discriminator is not a generator");
    let msg = err.to_string();
    for needle in [
        "ElectraForMaskedLM",
        "missing tensor `generator_predictions.dense.weight`",
        "missing tensor `generator_predictions.LayerNorm.weight`",
        "missing tensor `generator_lm_head.bias`",
        "unexpected tensor `discriminator_predictions.dense.weight`",
        "unexpected tensor `discriminator_predictions.dense_prediction.bias`",
    ] {
        assert!(msg.contains(needle), "`{needle}` not in:\n{msg}");
    }
}

/// A scratch checkpoint directory: the fixture's weights with an edited config.
fn checkpoint_with_config(edit: impl FnOnce(&mut Value)) -> tempfile::TempDir {
    let src = fixtures().join("discriminator");
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::copy(
        src.join("model.safetensors"),
        dir.path().join("model.safetensors"),
    )
    .expect("copy weights");
    let mut config = read_json(&src.join("config.json"));
    edit(&mut config);
    std::fs::write(
        dir.path().join("config.json"),
        serde_json::to_string(&config).expect("json"),
    )
    .expect("write config");
    dir
}

#[test]
fn mis_shaped_tensors_are_all_listed() {
    let dir = checkpoint_with_config(|c| c["intermediate_size"] = Value::from(50));
    let device = Default::default();
    let msg = hf::load_pretraining::<B>(dir.path(), &device)
        .expect_err("shape mismatch")
        .to_string();
    // Both layers' feed-forward weights and the intermediate bias are the wrong size.
    for layer in 0..2 {
        for name in [
            "intermediate.dense.weight",
            "intermediate.dense.bias",
            "output.dense.weight",
        ] {
            let needle = format!("wrong shape for `electra.encoder.layer.{layer}.{name}`");
            assert!(msg.contains(&needle), "`{needle}` not in:\n{msg}");
        }
    }
}

#[test]
fn bad_config_names_the_file_and_key() {
    let dir = checkpoint_with_config(|c| c["num_attention_heads"] = Value::from(5));
    let device = Default::default();
    let msg = hf::load_pretraining::<B>(dir.path(), &device)
        .expect_err("bad heads")
        .to_string();
    assert!(msg.contains("config.json"), "{msg}");
    assert!(msg.contains("num_attention_heads"), "{msg}");
}

#[test]
fn export_then_import_is_exact() {
    let device = Default::default();
    let (disc, config) =
        hf::load_pretraining::<B>(&fixtures().join("discriminator"), &device).expect("load");
    let out = tempfile::tempdir().expect("tempdir");
    hf::save(&disc, &config.model, Architecture::PreTraining, out.path()).expect("save");
    let (again, config2) = hf::load_pretraining::<B>(out.path(), &device).expect("reload");
    assert_eq!(config.model, config2.model);
    let x = inputs()
        .to_tensors::<B>(&config.model, &device)
        .expect("inputs");
    let a = disc.forward(
        x.input_ids.clone(),
        x.token_type_ids.clone(),
        x.attention_mask.clone(),
    );
    let b = again.forward(x.input_ids, x.token_type_ids, x.attention_mask);
    assert_eq!(a.into_data(), b.into_data());

    let (gen_model, gconfig) =
        hf::load_masked_lm::<B>(&fixtures().join("generator"), &device).expect("load gen");
    hf::save(
        &gen_model,
        &gconfig.model,
        Architecture::MaskedLm,
        out.path(),
    )
    .expect("save gen");
    let (gen_again, _) = hf::load_masked_lm::<B>(out.path(), &device).expect("reload gen");
    let bias = |m: &ElectraForMaskedLM<B>| m.generator_predictions.output_bias.val().into_data();
    assert_eq!(bias(&gen_model), bias(&gen_again));
    let layer = |m: &ElectraForMaskedLM<B>| {
        m.electra.encoder.layers[1]
            .intermediate
            .weight
            .val()
            .into_data()
    };
    assert_eq!(layer(&gen_model), layer(&gen_again));
}

#[test]
fn padding_content_does_not_change_real_positions() {
    // Additive key mask: whatever sits at padded positions, real positions see the same.
    let config = ElectraConfig {
        vocab_size: 50,
        embedding_size: 8,
        hidden_size: 16,
        num_hidden_layers: 2,
        num_attention_heads: 2,
        intermediate_size: 32,
        max_position_embeddings: 16,
        ..ElectraConfig::small()
    };
    let device = Default::default();
    B::seed(&device, 7);
    let model = ElectraForPreTraining::<B>::new(&config, &device);
    let batch = |pad_id: i64| InputBatch {
        input_ids: vec![vec![2, 11, 12, 3, pad_id, pad_id]],
        attention_mask: Some(vec![vec![1, 1, 1, 1, 0, 0]]),
        token_type_ids: None,
    };
    let run = |b: InputBatch| {
        let x = b.to_tensors::<B>(&config, &device).expect("valid");
        model
            .forward(x.input_ids, x.token_type_ids, x.attention_mask)
            .slice([0..1, 0..4])
            .into_data()
            .to_vec::<f32>()
            .expect("f32")
    };
    let (a, b) = (run(batch(0)), run(batch(42)));
    let max = a
        .iter()
        .zip(&b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0f32, f32::max);
    assert_eq!(max, 0.0, "padding leaked into real positions");
}
