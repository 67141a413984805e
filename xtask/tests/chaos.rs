//! The chaos soak at CI size: `cargo xtask chaos` with the debug `electra`, a shrunken model,
//! 40 steps and 5 seeded SIGKILLs at random moments, each followed by `--resume`; the losses
//! and the final checkpoint must equal the uninterrupted run's byte for byte (the task fails
//! otherwise). The full soak (`--kills 50`, 300 steps, the release binary) is run by hand;
//! its figure is in docs/what-happens-when.md.

use std::process::Command;

mod common;
use common::debug_binaries;

#[test]
fn a_run_killed_at_random_moments_and_resumed_equals_the_uninterrupted_one() {
    let bins = debug_binaries();
    let out = std::env::temp_dir().join(format!("xtask-chaos-{}", std::process::id()));
    let mut args: Vec<String> = [
        "chaos",
        "--kills",
        "5",
        "--seed",
        "7",
        "--steps",
        "40",
        "--checkpoint-every",
        "4",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    for set in [
        "model.embedding_size=16",
        "model.hidden_size=32",
        "model.num_hidden_layers=1",
        "model.num_attention_heads=2",
        "model.intermediate_size=64",
        "objective.generator_hidden_multiplier=0.5",
        "train.batch_size=4",
        "data.max_seq_len=32",
        "data.demo_documents=40",
        "data.shuffle_buffer=16",
    ] {
        args.extend(["--set".to_string(), set.to_string()]);
    }
    let output = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(&args)
        .arg("--bin")
        .arg(bins.join(format!("electra{}", std::env::consts::EXE_SUFFIX)))
        .arg("--out")
        .arg(&out)
        .output()
        .expect("run xtask chaos");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stdout}\n{stderr}");
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("chaos.json")).expect("chaos.json"))
            .expect("json");
    assert_eq!(report["identical"], true, "{report}");
    // The kills land while the run is still going (their moments spread over the
    // uninterrupted run's time, and every restart pays the start-up again).
    let kills = report["kills_survived"].as_u64().expect("kills");
    assert!(kills >= 3, "only {kills} of 5 kills landed: {report}");
    assert!(stdout.contains("bit-identical"), "{stdout}");
    let _ = std::fs::remove_dir_all(&out);
}
