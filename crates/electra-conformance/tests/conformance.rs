//! `electra-conformance` end to end on flex: it passes on the committed fixtures (CI runs that
//! in `.ci/run`), and it fails, naming the quantity, when the oracle disagrees.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../electra-model/tests/fixtures/hf-tiny")
}

/// The smallest training part, to keep the test short.
fn conformance(extra: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_electra-conformance"))
        .args([
            "--device",
            "flex",
            "--steps",
            "1",
            "--batch-size",
            "1",
            "--seq-len",
            "8",
        ])
        .args(extra)
        .output()
        .expect("run electra-conformance")
}

/// A copy of the HF fixtures with `edit` applied to `expected.json`.
fn edited_fixtures(edit: impl FnOnce(&mut Value)) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    let copy = |from: &Path, to: &Path| {
        std::fs::create_dir_all(to).expect("mkdir");
        for entry in std::fs::read_dir(from).expect("read_dir") {
            let entry = entry.expect("entry");
            if entry.path().is_file() {
                std::fs::copy(entry.path(), to.join(entry.file_name())).expect("copy");
            }
        }
    };
    copy(&fixtures(), dir.path());
    for model in ["discriminator", "generator"] {
        copy(&fixtures().join(model), &dir.path().join(model));
    }
    let path = dir.path().join("expected.json");
    let mut expected: Value =
        serde_json::from_str(&std::fs::read_to_string(&path).expect("read")).expect("json");
    edit(&mut expected);
    std::fs::write(&path, expected.to_string()).expect("write");
    dir
}

#[test]
fn a_wrong_oracle_value_fails_the_run_and_names_the_quantity() {
    // One discriminator logit moved by 1e-3: 100x flex's tolerance against PyTorch.
    let fixtures = edited_fixtures(|e| {
        let x = &mut e["discriminator"]["logits"][1][2];
        *x = Value::from(x.as_f64().expect("number") + 1e-3);
    });
    let out_dir = tempfile::tempdir().expect("tempdir");
    let json = out_dir.path().join("report.json");
    let out = conformance(&[
        "--hf-fixtures",
        fixtures.path().to_str().expect("utf-8"),
        "--json",
        json.to_str().expect("utf-8"),
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "a mismatch must fail:\n{stdout}");
    assert!(
        stderr.contains("1 of") && stderr.contains("discriminator.logits"),
        "{stderr}"
    );
    let failed: Vec<&str> = stdout.lines().filter(|l| l.contains("FAIL")).collect();
    assert_eq!(failed.len(), 1, "{stdout}");
    assert!(failed[0].contains("discriminator.logits"), "{stdout}");

    let report: Value =
        serde_json::from_str(&std::fs::read_to_string(&json).expect("report written"))
            .expect("json");
    assert_eq!(report["passed"], Value::from(false));
    let rows = report["rows"].as_array().expect("rows");
    let logits = rows
        .iter()
        .find(|r| r["quantity"] == "discriminator.logits")
        .expect("logits row");
    let diff = logits["vs_oracle"].as_f64().expect("diff");
    assert!((diff - 1e-3).abs() < 1e-5, "{diff}");
    // Every other quantity still passed, training rows included.
    assert!(
        rows.iter()
            .any(|r| r["quantity"] == "train step 1 grad_norm")
    );
    assert_eq!(
        rows.iter()
            .filter(|r| r["vs_flex"].as_f64().is_some_and(|d| d != 0.0))
            .count(),
        0,
        "flex against flex must agree exactly"
    );
}

#[test]
fn a_device_that_does_not_match_require_adapter_is_refused() {
    let out = conformance(&["--require-adapter", "llvmpipe"]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("--require-adapter llvmpipe") && stderr.contains("flex"),
        "{stderr}"
    );
}
