//! Property tests over the files electra-model reads: `electra forward`'s input JSON, a
//! Hugging Face `config.json` and the checkpoint's `model.safetensors`. Arbitrary bytes and
//! structured-but-wrong inputs (ragged rows, out-of-range ids, a valid file with a value of the
//! wrong type, a truncated or bit-flipped safetensors file, a wrong header length) must give
//! `Ok` or an `Err`, never a panic; an input that validates must also run through the model.
//! Fixed, small case counts (`PROPTEST_CASES` overrides them).

use std::path::Path;
use std::sync::OnceLock;

use burn::backend::Flex;
use proptest::prelude::*;
use proptest::sample::Index;
use serde_json::json;

use electra_fs::testing::{cases as config, damage, wrong_json_value};

use crate::config::{ElectraConfig, HfConfig};
use crate::electra::ElectraForPreTraining;
use crate::hf::{self, Architecture};
use crate::input::InputBatch;

/// A model small enough to run every case: vocabulary 40, 8 positions.
fn tiny() -> ElectraConfig {
    ElectraConfig {
        vocab_size: 40,
        embedding_size: 8,
        hidden_size: 8,
        num_hidden_layers: 1,
        num_attention_heads: 2,
        intermediate_size: 16,
        max_position_embeddings: 8,
        ..ElectraConfig::tiny()
    }
}

/// The tiny discriminator saved as an HF checkpoint once: `config.json` and
/// `model.safetensors` bytes.
fn checkpoint_files() -> &'static (Vec<u8>, Vec<u8>) {
    static FILES: OnceLock<(Vec<u8>, Vec<u8>)> = OnceLock::new();
    FILES.get_or_init(|| {
        let dir = tempfile::tempdir().expect("tempdir");
        let model = ElectraForPreTraining::<Flex>::new(&tiny(), &Default::default());
        hf::save(&model, &tiny(), Architecture::PreTraining, dir.path()).expect("save");
        (
            std::fs::read(dir.path().join("config.json")).expect("config"),
            std::fs::read(dir.path().join("model.safetensors")).expect("weights"),
        )
    })
}

fn ids(lo: i64, hi: i64) -> impl Strategy<Value = Vec<Vec<i64>>> {
    proptest::collection::vec(
        proptest::collection::vec(prop_oneof![8 => lo..hi, 1 => any::<i64>()], 0..10),
        0..4,
    )
}

fn input_json() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..120),
        (
            ids(-1, 42),
            proptest::option::of(ids(-1, 3)),
            proptest::option::of(ids(-1, 3))
        )
            .prop_map(|(input_ids, attention_mask, token_type_ids)| {
                serde_json::to_vec(&InputBatch {
                    input_ids,
                    attention_mask,
                    token_type_ids,
                })
                .expect("json")
            }),
        prop_oneof![
            Just(r#"{"input_ids": [[1.5]]}"#),
            Just(r#"{"input_ids": [["a"]]}"#),
            Just(r#"{"input_ids": [[99999999999999999999999]]}"#),
            Just(r#"{"input_ids": null}"#),
            Just(r#"{"input_ids": [[1]], "extra": 1}"#),
            Just(r#"{"input_ids": [1, 2]}"#),
            Just("[]"),
        ]
        .prop_map(|s| s.as_bytes().to_vec()),
    ]
}

proptest! {
    #![proptest_config(config(64))]

    /// `electra forward --input`: parsed, validated, and (when valid) run through the model.
    #[test]
    fn forward_inputs_never_panic(bytes in input_json()) {
        let Ok(batch) = serde_json::from_slice::<InputBatch>(&bytes) else {
            return Ok(());
        };
        let device = Default::default();
        if let Ok(x) = batch.to_tensors::<Flex>(&tiny(), &device) {
            let model = ElectraForPreTraining::<Flex>::new(&tiny(), &device);
            let hidden = model.electra.forward(x.input_ids, x.token_type_ids, x.attention_mask);
            let _ = model.discriminator_predictions.forward(hidden);
        }
    }
}

fn config_json() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..120),
        (
            any::<Index>(),
            wrong_json_value(vec![json!("gelu_new"), json!(["ElectraForMaskedLM"])]),
            any::<bool>()
        )
            .prop_map(|(at, value, remove)| {
                let mut json: serde_json::Value =
                    serde_json::from_slice(&checkpoint_files().0).expect("json");
                let map = json.as_object_mut().expect("object");
                let key = map.keys().nth(at.index(map.len())).cloned().expect("key");
                if remove {
                    map.remove(&key);
                } else {
                    map.insert(key, value);
                }
                serde_json::to_vec(&json).expect("json")
            }),
    ]
}

/// Loads `dir` as `electra forward` and fine-tuning do, accepting only a model whose config
/// is small (a damaged size in `config.json` could otherwise ask for a huge model).
fn load(dir: &Path) {
    let Ok(config) = hf::read_config(dir) else {
        return;
    };
    let _ = hf::architecture(&config, dir);
    if config.model == tiny() {
        let _ = hf::load::<Flex>(dir, &Default::default());
    }
}

proptest! {
    #![proptest_config(config(96))]

    /// An HF checkpoint directory with `config.json` damaged (any bytes, a value of a wrong
    /// type, a key removed) and `model.safetensors` truncated, bit-flipped or with a wrong
    /// header length.
    #[test]
    fn damaged_hf_checkpoints_never_panic(
        config in prop_oneof![1 => config_json(), 2 => Just(checkpoint_files().0.clone())],
        weights in damage(64),
    ) {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("config.json"), &config).expect("write");
        std::fs::write(
            dir.path().join("model.safetensors"),
            weights.apply(checkpoint_files().1.clone()),
        )
        .expect("write");
        if let Ok(text) = std::str::from_utf8(&config) {
            let _ = HfConfig::parse(text);
        }
        load(dir.path());
    }
}
