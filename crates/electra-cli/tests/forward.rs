//! `electra forward` end to end: the binary on the HF fixture reproduces HF's outputs, and bad
//! input gets an error naming what is wrong.

use std::path::{Path, PathBuf};

mod common;
use common::electra;

use serde_json::Value;

/// Same tolerance as the library parity test: both sides compute in f32.
const TOLERANCE: f64 = 1e-5;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../electra-model/tests/fixtures/hf-tiny")
}

fn read_json(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).expect("read")).expect("json")
}

fn flatten(v: &Value, out: &mut Vec<f64>) {
    match v {
        Value::Array(items) => items.iter().for_each(|i| flatten(i, out)),
        Value::Number(n) => out.push(n.as_f64().expect("f64")),
        other => panic!("unexpected {other}"),
    }
}

fn max_abs_diff(a: &Value, b: &Value) -> f64 {
    let (mut x, mut y) = (Vec::new(), Vec::new());
    flatten(a, &mut x);
    flatten(b, &mut y);
    assert_eq!(x.len(), y.len(), "element count");
    x.iter()
        .zip(&y)
        .map(|(p, q)| (p - q).abs())
        .fold(0.0, f64::max)
}

fn run_forward(model: &str, out: &Path) -> Value {
    let checkpoint = fixtures().join(model);
    let input = fixtures().join("inputs.json");
    let result = electra(&[
        "forward",
        "--checkpoint",
        checkpoint.to_str().expect("utf8"),
        "--input",
        input.to_str().expect("utf8"),
        "--output",
        out.to_str().expect("utf8"),
    ]);
    assert!(
        result.status.success(),
        "electra forward failed: {}",
        String::from_utf8_lossy(&result.stderr)
    );
    read_json(out)
}

#[test]
fn forward_reproduces_hf_discriminator_logits() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = run_forward("discriminator", &dir.path().join("out.json"));
    let expected = read_json(&fixtures().join("expected.json"));
    let d = &expected["discriminator"];
    assert!(out.get("mlm_logits").is_none());
    assert!(max_abs_diff(&out["discriminator_logits"], &d["logits"]) <= TOLERANCE);
    assert!(max_abs_diff(&out["last_hidden_state"], &d["last_hidden_state"]) <= TOLERANCE);
}

#[test]
fn forward_reproduces_hf_generator_logits() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = run_forward("generator", &dir.path().join("out.json"));
    let expected = read_json(&fixtures().join("expected.json"));
    let g = &expected["generator"];
    assert!(out.get("discriminator_logits").is_none());
    assert!(max_abs_diff(&out["mlm_logits"], &g["logits"]) <= TOLERANCE);
    assert!(max_abs_diff(&out["last_hidden_state"], &g["last_hidden_state"]) <= TOLERANCE);
}

/// Runs forward on the discriminator fixture with `input` and returns stderr (must fail).
fn forward_error(input: &str) -> String {
    let dir = tempfile::tempdir().expect("tempdir");
    let input_path = dir.path().join("in.json");
    std::fs::write(&input_path, input).expect("write");
    let out = dir.path().join("out.json");
    let result = electra(&[
        "forward",
        "--checkpoint",
        fixtures().join("discriminator").to_str().expect("utf8"),
        "--input",
        input_path.to_str().expect("utf8"),
        "--output",
        out.to_str().expect("utf8"),
    ]);
    assert!(!result.status.success(), "should fail on {input}");
    assert!(!out.exists(), "no output on failure");
    String::from_utf8_lossy(&result.stderr).into_owned()
}

#[test]
fn ragged_rows_are_rejected_with_the_row() {
    let err = forward_error(r#"{"input_ids": [[2, 5, 3], [2, 3]]}"#);
    assert!(
        err.contains("input_ids[1] has 2 entries, expected 3"),
        "{err}"
    );
}

#[test]
fn ids_outside_the_vocabulary_are_rejected_with_the_position() {
    let err = forward_error(r#"{"input_ids": [[2, 64, 3]]}"#);
    assert!(err.contains("input_ids[0][1] = 64"), "{err}");
    assert!(err.contains("< 64"), "{err}");
    let err = forward_error(r#"{"input_ids": [[2, 5, 3]], "token_type_ids": [[0, 2, 0]]}"#);
    assert!(err.contains("token_type_ids[0][1] = 2"), "{err}");
}

#[test]
fn malformed_json_names_the_file() {
    let err = forward_error(r#"{"input_ids": [[2, 5, 3]"#);
    assert!(err.contains("in.json"), "{err}");
    let err = forward_error(r#"{"ids": [[2]]}"#);
    assert!(err.contains("input_ids"), "{err}");
}

#[test]
fn unreadable_checkpoint_is_a_clear_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let result = electra(&[
        "forward",
        "--checkpoint",
        dir.path().to_str().expect("utf8"),
        "--input",
        fixtures().join("inputs.json").to_str().expect("utf8"),
        "--output",
        dir.path().join("o.json").to_str().expect("utf8"),
    ]);
    assert!(!result.status.success());
    let err = String::from_utf8_lossy(&result.stderr);
    assert!(err.contains("config.json"), "{err}");
}

/// `--device cuda` on a build without the cuda feature names the feature; on a build with it
/// and a machine without the NVIDIA driver (CI's), names libcuda and how to install it. Either
/// way a user error: exit status 1, no panic.
#[test]
fn a_cuda_device_without_its_backend_or_driver_is_a_user_error() {
    let result = electra(&[
        "--device",
        "cuda",
        "forward",
        "--checkpoint",
        "x",
        "--input",
        "y",
        "--output",
        "z",
    ]);
    let err = String::from_utf8_lossy(&result.stderr);
    assert_eq!(result.status.code(), Some(1), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    if cfg!(feature = "cuda") {
        // With a driver the device opens and the missing checkpoint `x` is the error.
        assert!(
            err.contains("libcuda") && err.contains("devices that work here")
                || err.contains("config.json"),
            "{err}"
        );
    } else {
        assert!(err.contains("--features cuda"), "{err}");
    }
}
