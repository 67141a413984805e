//! HF `ElectraForQuestionAnswering` parity (the `hf` head): the fixture of
//! `scripts/make_hf_qa_fixture.py` (transformers 4.57.6) loads, gives transformers' start and
//! end logits and loss to 1e-5, and exports to a directory with HF's tensor names that loads
//! back to the same model.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use burn::backend::Flex;
use burn::prelude::*;
use electra_eval::squad::hf;
use electra_eval::squad::model::HeadKind;
use electra_model::InputTensors;
use serde_json::Value;

/// Our f32 forward against PyTorch's f32 forward (both exact-erf GELU, same mask constant
/// effect): measured agreement is ~1e-6; a transposed `qa_outputs` or swapped start/end is
/// off by O(1).
const TOLERANCE: f32 = 1e-5;

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/hf-qa-tiny")
}

fn expected() -> Value {
    let text = std::fs::read_to_string(fixture().join("expected.json")).expect("expected.json");
    serde_json::from_str(&text).expect("json")
}

fn ints(v: &Value, key: &str) -> Vec<Vec<i64>> {
    serde_json::from_value(v[key].clone()).expect(key)
}

fn floats(v: &Value, key: &str) -> Vec<f32> {
    let rows: Vec<Vec<f32>> = serde_json::from_value(v[key].clone()).expect(key);
    rows.concat()
}

fn inputs(v: &Value, device: &burn::backend::flex::FlexDevice) -> InputTensors<Flex> {
    let tensor = |key: &str| {
        let rows = ints(v, key);
        let (b, s) = (rows.len(), rows[0].len());
        Tensor::<Flex, 1, Int>::from_data(TensorData::new(rows.concat(), [b * s]), device)
            .reshape([b, s])
    };
    InputTensors {
        input_ids: tensor("input_ids"),
        token_type_ids: tensor("token_type_ids"),
        attention_mask: tensor("attention_mask"),
    }
}

fn assert_close(got: &[f32], want: &[f32], what: &str) {
    assert_eq!(got.len(), want.len(), "{what}");
    let worst = got
        .iter()
        .zip(want)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f32, f32::max);
    eprintln!("{what}: max |diff| {worst:e}");
    assert!(worst < TOLERANCE, "{what}: max |diff| {worst}");
}

/// Tensor names of a safetensors file (its JSON header).
fn tensor_names(path: &Path) -> BTreeSet<String> {
    let bytes = std::fs::read(path).expect("read");
    let len = u64::from_le_bytes(bytes[..8].try_into().expect("8 bytes")) as usize;
    let header: serde_json::Map<String, Value> =
        serde_json::from_slice(&bytes[8..8 + len]).expect("header");
    header
        .keys()
        .filter(|k| *k != "__metadata__")
        .cloned()
        .collect()
}

#[test]
fn hf_question_answering_matches_transformers_and_round_trips() {
    let device = Default::default();
    let want = expected();
    let (model, config) = hf::load::<Flex>(&fixture().join("model"), &device).expect("load");
    assert_eq!(model.head(), HeadKind::HuggingFace);
    assert_eq!(config.model.hidden_size, 32);
    let input = inputs(&want, &device);
    let (start, end) = model.hf_logits(&input).expect("hf head");
    let start: Vec<f32> = start.into_data().iter::<f32>().collect();
    let end: Vec<f32> = end.into_data().iter::<f32>().collect();
    assert_close(&start, &floats(&want, "start_logits"), "start_logits");
    assert_close(&end, &floats(&want, "end_logits"), "end_logits");
    assert!(
        start.iter().zip(&end).any(|(s, e)| (s - e).abs() > 0.1),
        "start and end differ"
    );

    // HF's loss: (CE(start) + CE(end)) / 2, each averaged over the batch = the mean of our
    // per-window losses.
    let positions =
        |key: &str| -> Vec<usize> { serde_json::from_value(want[key].clone()).expect(key) };
    let targets: Vec<(usize, usize, bool)> = positions("start_positions")
        .into_iter()
        .zip(positions("end_positions"))
        .map(|(a, b)| (a, b, false))
        .collect();
    let batch = electra_eval::squad::features::QaBatch {
        input: input.clone(),
        answer_mask: vec![1.0; 30],
        lengths: vec![10; 3],
        seq_len: 10,
    };
    let loss = model.losses(&batch, &targets, 0.5).mean().into_scalar();
    let hf_loss = want["loss"].as_f64().expect("loss") as f32;
    assert_close(&[loss], &[hf_loss], "loss");

    // Export, then the names are HF's and the reloaded model computes the same logits.
    let out = tempfile::tempdir().expect("tempdir");
    hf::save(&model, &config.model, out.path()).expect("save");
    assert_eq!(
        tensor_names(&out.path().join("model.safetensors")),
        tensor_names(&fixture().join("model/model.safetensors"))
    );
    let written: Value = serde_json::from_str(
        &std::fs::read_to_string(out.path().join("config.json")).expect("config"),
    )
    .expect("json");
    assert_eq!(written["architectures"][0], "ElectraForQuestionAnswering");
    let (again, _) = hf::load::<Flex>(out.path(), &device).expect("reload");
    let (start2, _) = again.hf_logits(&input).expect("hf head");
    let start2: Vec<f32> = start2.into_data().iter::<f32>().collect();
    assert_eq!(start2, start);
}

#[test]
fn autodiff_and_inner_losses_agree() {
    use burn::backend::Autodiff;
    use burn::module::AutodiffModule;
    use electra_eval::squad::model::{ElectraForSquad, HeadConfig};
    let device = Default::default();
    let want = expected();
    let mut config = electra_model::ElectraConfig::micro(64);
    config.hidden_dropout_prob = 0.0;
    config.attention_probs_dropout_prob = 0.0;
    for kind in [HeadKind::HuggingFace, HeadKind::Reference] {
        Autodiff::<Flex>::seed(&device, 1);
        let model = ElectraForSquad::<Autodiff<Flex>>::new(
            electra_model::ElectraModel::new(&config, &device),
            &config,
            &HeadConfig::of(kind),
            &device,
        );
        let input_ad = {
            let i = inputs(&want, &device);
            InputTensors::<Autodiff<Flex>> {
                input_ids: Tensor::from_inner(i.input_ids),
                token_type_ids: Tensor::from_inner(i.token_type_ids),
                attention_mask: Tensor::from_inner(i.attention_mask),
            }
        };
        let targets = vec![(6, 7, false), (4, 5, false), (0, 0, true)];
        let mask = vec![1.0; 30];
        let batch = electra_eval::squad::features::QaBatch {
            input: input_ad,
            answer_mask: mask.clone(),
            lengths: vec![10; 3],
            seq_len: 10,
        };
        let ad: Vec<f32> = model
            .losses(&batch, &targets, 0.5)
            .into_data()
            .iter::<f32>()
            .collect();
        let inner = model.valid();
        let batch_inner = electra_eval::squad::features::QaBatch {
            input: inputs(&want, &device),
            answer_mask: mask,
            lengths: vec![10; 3],
            seq_len: 10,
        };
        let inn: Vec<f32> = inner
            .losses(&batch_inner, &targets, 0.5)
            .into_data()
            .iter::<f32>()
            .collect();
        eprintln!("{kind:?}: autodiff {ad:?} inner {inn:?}");
        assert_close(&ad, &inn, "losses");
    }
}
