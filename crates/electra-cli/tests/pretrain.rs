//! `electra pretrain` end to end on a shrunken demo config: the run directory holds what the
//! README promises, a run stopped early and resumed in a new process continues bit for bit,
//! and `export` writes loadable HF checkpoints.

use std::path::Path;
use std::process::{Command, Output};

mod common;
use common::{TINY_MODEL, electra_ok as electra};

/// With [`TINY_MODEL`] before it: a shrunken demo run.
const SMALL: &[&str] = &[
    "--set",
    "train.batch_size=4",
    "--set",
    "train.log_every=1",
    "--set",
    "train.checkpoint_every=2",
    "--set",
    "train.eval_every=2",
    "--set",
    "train.eval_batches=1",
    "--set",
    "data.max_seq_len=32",
    "--set",
    "data.demo_documents=30",
    "--set",
    "data.demo_eval_fraction=0.2",
    "--set",
    "data.shuffle_buffer=16",
];

fn pretrain(out: &Path, extra: &[&str]) -> Output {
    let mut args = vec![
        "pretrain",
        "--steps",
        "4",
        "--out",
        out.to_str().expect("utf8"),
    ];
    args.extend_from_slice(&TINY_MODEL);
    args.extend_from_slice(SMALL);
    args.extend_from_slice(extra);
    electra(&args)
}

fn losses(run: &Path) -> Vec<String> {
    std::fs::read_to_string(run.join("metrics.jsonl"))
        .expect("metrics")
        .lines()
        .filter(|l| !l.contains("eval_"))
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).expect("json");
            format!("{} {}", v["step"], v["loss"])
        })
        .collect()
}

#[test]
fn pretrain_writes_a_complete_run_and_resumes_across_processes() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let straight = tmp.path().join("straight");
    let out = pretrain(&straight, &[]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("pre-training finished: steps 0..4"),
        "{stdout}"
    );
    assert!(stdout.contains("replaced tokens: recall"), "{stdout}");
    // Standard error is a pipe here: its log lines carry no ANSI colour codes.
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("INFO"), "{stderr}");
    assert!(
        !stderr.contains('\x1b'),
        "escape codes in piped logs: {stderr:?}"
    );
    for file in [
        "config.toml",
        "metrics.jsonl",
        "curves.svg",
        "vocab.txt",
        "tokenizer.json",
    ] {
        assert!(straight.join(file).is_file(), "{file} missing");
    }
    assert!(
        straight
            .join("checkpoints/step-00000004/model.safetensors")
            .is_file()
    );

    // Stop after 2 steps (as Ctrl-C would), then resume in a new process.
    let split = tmp.path().join("split");
    let out = pretrain(&split, &["--stop-after", "2"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("stopped early"));
    electra(&["pretrain", "--resume", split.to_str().expect("utf8")]);
    let (a, b) = (losses(&straight), losses(&split));
    assert_eq!(a.len(), 4);
    assert_eq!(a, b, "resumed run diverged from the uninterrupted one");

    // A second run into the same directory is refused, not overwritten.
    let again = Command::new(env!("CARGO_BIN_EXE_electra"))
        .args(["pretrain", "--out", straight.to_str().expect("utf8")])
        .output()
        .expect("run");
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("--resume"));

    // Export gives HF checkpoints that `forward` reads.
    let hf = tmp.path().join("hf");
    electra(&[
        "export",
        straight.to_str().expect("utf8"),
        "--out",
        hf.to_str().expect("utf8"),
    ]);
    for model in ["discriminator", "generator"] {
        for file in ["config.json", "model.safetensors", "vocab.txt"] {
            assert!(hf.join(model).join(file).is_file(), "{model}/{file}");
        }
    }
    let input = tmp.path().join("in.json");
    std::fs::write(&input, r#"{"input_ids": [[2, 40, 41, 42, 3]]}"#).expect("input");
    let output = tmp.path().join("out.json");
    electra(&[
        "forward",
        "--checkpoint",
        hf.join("discriminator").to_str().expect("utf8"),
        "--input",
        input.to_str().expect("utf8"),
        "--output",
        output.to_str().expect("utf8"),
    ]);
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(output).expect("out")).expect("json");
    assert_eq!(
        v["discriminator_logits"][0].as_array().expect("row").len(),
        5
    );
}

#[test]
fn bad_flags_get_clear_errors() {
    let out = Command::new(env!("CARGO_BIN_EXE_electra"))
        .args(["pretrain", "--set", "train.stpes=3"])
        .output()
        .expect("run");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("stpes"));
    let out = Command::new(env!("CARGO_BIN_EXE_electra"))
        .args(["pretrain", "--devices", "flex,cuda:1"])
        .output()
        .expect("run");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("different backends"));
}

#[test]
fn two_cpu_peers_train_data_parallel() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let run = tmp.path().join("ddp");
    let out = pretrain(&run, &["--devices", "flex,flex"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("pre-training finished: steps 0..4"),
        "{stdout}"
    );
    assert!(
        run.join("checkpoints/step-00000004/model.safetensors")
            .is_file()
    );
    assert_eq!(losses(&run).len(), 4);
}

/// Runs electra with `RUST_BACKTRACE=1`, whatever the outcome.
fn electra_raw(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_electra"))
        .args(args)
        .env("RUST_BACKTRACE", "1")
        .output()
        .expect("run electra")
}

#[test]
fn a_damaged_newest_checkpoint_falls_back_and_exports_are_not_replaced_silently() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let run = tmp.path().join("run");
    let run_s = run.to_str().expect("utf8");
    let mut args = vec![
        "pretrain",
        "--steps",
        "6",
        "--stop-after",
        "4",
        "--out",
        run_s,
    ];
    args.extend_from_slice(&TINY_MODEL);
    args.extend_from_slice(SMALL);
    args.extend_from_slice(&["--set", "train.keep_checkpoints=2"]);
    electra(&args);
    // Kept: steps 2 and 4. Truncate the newest one's weights.
    let newest = run.join("checkpoints/step-00000004/model.safetensors");
    let bytes = std::fs::read(&newest).expect("read");
    std::fs::write(&newest, &bytes[..bytes.len() / 2]).expect("truncate");

    // Export falls back to step 2 with a warning naming what it skipped and why.
    let hf = tmp.path().join("hf");
    let hf_s = hf.to_str().expect("utf8");
    let out = electra(&["export", run_s, "--out", hf_s]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("skipping damaged checkpoint") && err.contains("step-00000004"),
        "{err}"
    );
    assert!(
        err.contains("model.safetensors"),
        "the reason is missing: {err}"
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("step-00000002"), "{stdout}");

    // Exporting into the same --out again is refused (and prints no backtrace).
    let refused = electra_raw(&["export", run_s, "--out", hf_s]);
    assert!(!refused.status.success());
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(err.contains(hf_s) && err.contains("--overwrite"), "{err}");
    assert!(!err.to_lowercase().contains("backtrace"), "{err}");
    // With --overwrite the earlier export is replaced whole.
    let stale = hf.join("generator").join("stale.bin");
    std::fs::write(&stale, b"old").expect("stale");
    electra(&["export", run_s, "--out", hf_s, "--overwrite"]);
    assert!(!stale.exists(), "a file of the earlier export stayed");
    assert!(hf.join("generator/model.safetensors").is_file());
    let leftovers: Vec<_> = std::fs::read_dir(&hf)
        .expect("read")
        .map(|e| e.expect("entry").file_name())
        .filter(|n| n.to_string_lossy().starts_with('.'))
        .collect();
    assert!(leftovers.is_empty(), "staging left behind: {leftovers:?}");

    // --resume continues from step 2 and writes a good step 4 in place of the damaged one.
    let resumed = electra(&["pretrain", "--resume", run_s]);
    let err = String::from_utf8_lossy(&resumed.stderr);
    assert!(err.contains("skipping damaged checkpoint"), "{err}");
    let stdout = String::from_utf8_lossy(&resumed.stdout);
    assert!(stdout.contains("steps 2..6"), "{stdout}");
    let again = electra(&["export", run_s, "--out", hf_s, "--overwrite"]);
    assert!(
        !String::from_utf8_lossy(&again.stderr).contains("skipping"),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
    assert!(String::from_utf8_lossy(&again.stdout).contains("step-00000006"));
}

#[test]
fn ctrl_c_and_sigterm_stop_after_the_step_and_write_a_checkpoint() {
    for signal in ["-INT", "-TERM"] {
        let tmp = tempfile::tempdir().expect("tempdir");
        let run = tmp.path().join("run");
        let mut args = vec![
            "pretrain",
            "--steps",
            "100000",
            "--out",
            run.to_str().expect("utf8"),
        ];
        args.extend_from_slice(&TINY_MODEL);
        args.extend_from_slice(SMALL);
        let child = Command::new(env!("CARGO_BIN_EXE_electra"))
            .args(&args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("spawn");
        // Wait until training is under way (a few steps logged), then send the signal.
        let metrics = run.join("metrics.jsonl");
        let started = std::time::Instant::now();
        while std::fs::read_to_string(&metrics).map_or(0, |t| t.lines().count()) < 3 {
            assert!(started.elapsed().as_secs() < 300, "training did not start");
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        let sent = Command::new("kill")
            .args([signal, &child.id().to_string()])
            .status()
            .expect("kill");
        assert!(sent.success());
        let out = child.wait_with_output().expect("wait");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{signal}: {stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(stdout.contains("stopped early"), "{signal}: {stdout}");
        // The checkpoint is of the last step logged: no step was lost or half-saved.
        let last_step = losses(&run)
            .last()
            .and_then(|l| l.split(' ').next().map(str::to_string))
            .expect("a logged step");
        let checkpoint = run.join(format!(
            "checkpoints/step-{:08}/model.safetensors",
            last_step.parse::<f64>().expect("step") as u64
        ));
        assert!(
            checkpoint.is_file(),
            "{signal}: no {}",
            checkpoint.display()
        );
    }
}

/// The entries of `run/checkpoints`, sorted.
fn checkpoint_entries(run: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(run.join("checkpoints"))
        .expect("checkpoints")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// `kill -9` at each point of a checkpoint write (the test-only kill points of
/// `electra_train::checkpoint::save`, armed by `ELECTRA_TEST_KILL_AT` in debug builds): what
/// is left on disk, then `--resume` from the newest complete checkpoint reproduces the
/// uninterrupted run's losses bit for bit and clears the leftovers.
#[cfg(unix)]
#[test]
fn kill_9_inside_a_checkpoint_write_resumes_from_the_newest_complete_one() {
    use std::os::unix::process::ExitStatusExt;

    let tmp = tempfile::tempdir().expect("tempdir");
    let keep_one = ["--set", "train.keep_checkpoints=1"];
    let straight = tmp.path().join("straight");
    let mut args = vec!["pretrain", "--steps", "6", "--out"];
    args.push(straight.to_str().expect("utf8"));
    args.extend_from_slice(SMALL);
    args.extend_from_slice(&keep_one);
    electra(&args);
    let expected = losses(&straight);
    assert_eq!(expected.len(), 6);

    // (kill point at the step-4 checkpoint, checkpoints/ after the kill, resumed from)
    let cases: [(&str, &[&str], u64); 4] = [
        ("model-written", &[".step-00000004.tmp", "step-00000002"], 2),
        (
            "optimizer-written",
            &[".step-00000004.tmp", "step-00000002"],
            2,
        ),
        ("state-written", &[".step-00000004.tmp", "step-00000002"], 2),
        // Renamed into place, the older checkpoint not yet pruned (keep_checkpoints = 1).
        ("renamed", &["step-00000002", "step-00000004"], 4),
    ];
    for (point, left, resumed_from) in cases {
        let run = tmp.path().join(point);
        let run_s = run.to_str().expect("utf8");
        let mut args = vec!["pretrain", "--steps", "6", "--out", run_s];
        args.extend_from_slice(SMALL);
        args.extend_from_slice(&keep_one);
        let killed = Command::new(env!("CARGO_BIN_EXE_electra"))
            .args(&args)
            .env("ELECTRA_TEST_KILL_AT", format!("checkpoint.{point}@4"))
            .output()
            .expect("run electra");
        assert_eq!(
            killed.status.signal(),
            Some(9),
            "{point}: not killed by SIGKILL ({:?}):\n{}",
            killed.status,
            String::from_utf8_lossy(&killed.stderr)
        );
        assert_eq!(checkpoint_entries(&run), left, "{point}: left on disk");

        let resumed = electra(&["pretrain", "--resume", run_s]);
        let stdout = String::from_utf8_lossy(&resumed.stdout);
        assert!(
            stdout.contains(&format!("steps {resumed_from}..6")),
            "{point}: {stdout}"
        );
        assert_eq!(losses(&run), expected, "{point}: resumed run diverged");
        assert_eq!(
            checkpoint_entries(&run),
            ["step-00000006"],
            "{point}: leftovers stayed"
        );
    }
}
