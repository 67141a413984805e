//! The `flops` binary: a run config resolved as `electra pretrain` resolves it, and the
//! library's per-objective count scaled to steps (what `cargo xtask experiment` sizes runs by).

use std::process::Command;

use serde_json::Value;

fn flops(args: &[&str]) -> Result<Value, String> {
    let out = Command::new(env!("CARGO_BIN_EXE_flops"))
        .args(args)
        .output()
        .expect("run flops");
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).to_string());
    }
    Ok(serde_json::from_slice(&out.stdout).expect("json"))
}

fn number(v: &Value, key: &str) -> f64 {
    v[key].as_f64().unwrap_or_else(|| panic!("{key} in {v}"))
}

#[test]
fn a_run_config_prints_its_training_flops() {
    let electra = flops(&["--preset", "tiny", "--set", "train.steps=10"]).expect("electra");
    assert_eq!(electra["objective"], "electra");
    assert_eq!(
        (electra["batch_size"].as_u64(), electra["slots"].as_u64()),
        (Some(16), Some(19))
    );
    let forward = number(&electra, "forward_flops_per_sequence");
    // The tiny preset's ELECTRA step: 2.091e8 forward FLOPs per sequence (flops.rs formulas).
    assert!((forward - 2.0908e8).abs() < 1e5, "{electra}");
    assert_eq!(number(&electra, "train_flops_per_sequence"), 3.0 * forward);
    assert_eq!(
        number(&electra, "train_flops_per_step"),
        3.0 * forward * 16.0
    );
    assert_eq!(
        number(&electra, "train_flops_total"),
        3.0 * forward * 16.0 * 10.0
    );

    let mlm = flops(&["--preset", "tiny", "--set", "objective.objective=mlm"]).expect("mlm");
    assert_eq!(mlm["objective"], "mlm");
    let ratio = number(&mlm, "train_flops_per_step") / number(&electra, "train_flops_per_step");
    assert!(
        ratio > 0.9 && ratio < 0.95,
        "BERT's step is ~7 % cheaper: {ratio}"
    );
}

#[test]
fn an_unknown_key_is_named() {
    let err = flops(&["--preset", "tiny", "--set", "model.hiden_size=3"]).expect_err("unknown key");
    assert!(err.contains("hiden_size"), "{err}");
}
