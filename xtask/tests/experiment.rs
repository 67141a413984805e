//! `cargo xtask experiment equal-compute --budget smoke` end to end, on the built-in demo corpus
//! and generated GLUE files (no shared data): an interrupted pre-training resumes, a rerun skips
//! every finished unit, a deleted fine-tuning result is redone with the same numbers, and a
//! fresh clone (no `work/`) continues from the committed results.json, re-creating only the
//! checkpoint it still needs, and a recorded run that cannot be made again is replaced on
//! request with nothing lost.
//!
//! The pipeline runs the debug `electra` and `flops` binaries, built here with one `cargo test
//! --no-run` (a no-op when `cargo test --workspace` has built them already); about a minute.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

mod common;
use common::debug_binaries;

/// Runs the smoke experiment; returns whether it succeeded and its log.
fn run_experiment(bins: &Path, out: &Path, extra: &[&str]) -> (bool, String) {
    run_named("equal-compute", bins, out, extra)
}

/// Runs `experiment`'s smoke budget; returns whether it succeeded and its log.
fn run_named(experiment: &str, bins: &Path, out: &Path, extra: &[&str]) -> (bool, String) {
    let output: Output = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(["experiment", experiment, "--budget", "smoke", "--out"])
        .arg(out)
        .arg("--bin-dir")
        .arg(bins)
        .args(extra)
        .output()
        .expect("run xtask");
    let log = String::from_utf8_lossy(&output.stderr).to_string();
    (output.status.success(), log)
}

fn experiment(bins: &Path, out: &Path, extra: &[&str]) -> String {
    let (ok, log) = run_experiment(bins, out, extra);
    assert!(ok, "experiment failed:\n{log}");
    log
}

fn experiment_fails(bins: &Path, out: &Path, extra: &[&str]) -> String {
    let (ok, log) = run_experiment(bins, out, extra);
    assert!(!ok, "experiment should have failed:\n{log}");
    log
}

fn json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).expect("json")
}

/// The fine-tuning records without their timings: what must not change on a rerun.
fn scores(results: &Value) -> Vec<Value> {
    results["finetune"]
        .as_array()
        .expect("finetune records")
        .iter()
        .map(|r| {
            let mut r = r.clone();
            for key in ["wall_seconds", "train_seconds"] {
                r.as_object_mut().expect("object").remove(key);
            }
            r
        })
        .collect()
}

fn mtime(path: &Path) -> std::time::SystemTime {
    std::fs::metadata(path)
        .and_then(|m| m.modified())
        .expect("mtime")
}

#[test]
fn smoke_budget_runs_resumes_and_skips_finished_work() {
    let bins = debug_binaries();
    let tmp = tempfile_dir();
    let out = tmp.join("exp");

    // 1. Interrupted: every pre-training run stops at step 2 (ELECTRA's first checkpoint is 3).
    let log = experiment(&bins, &out, &["--stop-after", "2"]);
    assert!(log.contains("stopped at step 2"), "{log}");
    let work = out.join("work");
    assert!(work.join("runs/electra/checkpoints/step-00000002").is_dir());
    assert!(
        !work.join("records/pretrain").exists(),
        "nothing finished yet"
    );
    let plan = json(&out.join("plan.json"));
    let runs = plan["runs"].as_array().expect("runs");
    let (electra, mlm) = (&runs[0], &runs[1]);
    assert_eq!(
        (electra["objective"].as_str(), electra["steps"].as_u64()),
        (Some("electra"), Some(6))
    );
    // Equal FLOPs: BERT's cheaper steps buy more of them, within one step of ELECTRA's total.
    let (fe, fm) = (
        electra["train_flops_per_step"].as_f64().expect("f"),
        mlm["train_flops_per_step"].as_f64().expect("f"),
    );
    let mlm_steps = mlm["steps"].as_u64().expect("steps");
    assert!(fm < fe && mlm_steps > 6, "{plan}");
    assert!(
        (mlm_steps as f64 * fm - 6.0 * fe).abs() <= fm / 2.0 + 1.0,
        "{plan}"
    );

    // 2. The rerun resumes ELECTRA from step 2 and finishes everything.
    let log = experiment(&bins, &out, &[]);
    assert!(log.contains("pretrain --resume"), "{log}");
    // The headline (final ELECTRA, final BERT, random init: 3 models × 2 tasks × 2 seeds)
    // before the intermediate checkpoints.
    let (headline, rest) = (
        log.find("fine-tuning (headline): 12 run, 0 already recorded"),
        log.find("fine-tuning (the rest): 8 run, 0 already recorded"),
    );
    assert!(
        headline.is_some() && rest.is_some() && headline < rest,
        "{log}"
    );
    let metrics =
        std::fs::read_to_string(work.join("runs/electra/metrics.jsonl")).expect("metrics");
    let steps: Vec<u64> = metrics
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v.get("loss").is_some())
        .filter_map(|v| v["step"].as_f64())
        .map(|s| s as u64)
        .collect();
    // log_every 2, and a stopped invocation logs its last step (2: interrupted; 3: the first
    // checkpoint): every step once, none repeated, so the run continued instead of restarting.
    assert_eq!(
        steps,
        vec![2, 3, 4, 6],
        "each step logged once across the sittings"
    );
    let first = json(&out.join("results.json"));
    assert_eq!(first["pretrain"].as_array().map(Vec::len), Some(2));
    // Every export and fine-tuning names the build of `electra` that made it.
    for record in [&first["exports"][0], &first["finetune"][0]] {
        let sha = record["build"]["electra_sha256"]
            .as_str()
            .unwrap_or_default();
        assert_eq!(sha.len(), 64, "{record}");
    }
    // 2 objectives × 2 checkpoints + random init, × 2 tasks × 2 seeds.
    assert_eq!(first["finetune"].as_array().map(Vec::len), Some(20));
    let electra_vs_bert = &first["paired"][0];
    assert_eq!(electra_vs_bert["comparison"], "electra - mlm");
    assert_eq!(
        electra_vs_bert["per_seed_average"].as_array().map(Vec::len),
        Some(2)
    );
    assert!(
        electra_vs_bert["average"]["low"].is_number(),
        "{electra_vs_bert}"
    );
    let md = std::fs::read_to_string(out.join("results.md")).expect("results.md");
    assert!(
        md.contains("| random-init | 0 |") && md.contains("### electra - mlm"),
        "{md}"
    );
    for plot in [
        "glue-vs-flops.svg",
        "pretrain-electra.svg",
        "pretrain-mlm.svg",
    ] {
        let svg = std::fs::read_to_string(out.join("plots").join(plot)).expect("svg");
        assert!(svg.contains("<svg"), "{plot}");
    }

    // 3. Delete one fine-tuning result: only it is redone, with the same numbers.
    let records = work.join("records/finetune");
    let victim = records.join("mlm__step-00000007__SST-2__seed-2.json");
    let kept = records.join("electra__step-00000006__RTE__seed-1.json");
    let pretrain_record = work.join("records/pretrain/electra.json");
    let (kept_time, pretrain_time) = (mtime(&kept), mtime(&pretrain_record));
    std::fs::remove_file(&victim).expect("delete one result");
    let log = experiment(&bins, &out, &[]);
    assert!(
        log.contains("fine-tuning (headline): 1 run, 11 already recorded")
            && log.contains("fine-tuning (the rest): 0 run, 8 already recorded"),
        "{log}"
    );
    assert!(
        !log.contains("$ electra pretrain"),
        "no pre-training on a rerun:\n{log}"
    );
    assert!(victim.is_file());
    assert_eq!(
        (mtime(&kept), mtime(&pretrain_record)),
        (kept_time, pretrain_time)
    );
    let second = json(&out.join("results.json"));
    assert_eq!(scores(&first), scores(&second));
    assert_eq!(first["summary"], second["summary"]);
    assert_eq!(first["paired"], second["paired"]);

    // 4. A fresh clone: work/ is gone and the committed results.json lacks ELECTRA's step-3
    // fine-tunings. The records come back from results.json, nothing recorded is redone, and
    // the one checkpoint still needed is pre-trained again, proven identical by its hash, and
    // fine-tuned to the same scores.
    let mut committed = second.clone();
    let is_electra_3 = |r: &Value| r["model"] == "electra" && r["step"] == 3;
    committed["finetune"]
        .as_array_mut()
        .expect("finetune")
        .retain(|r| !is_electra_3(r));
    fresh_clone(&out, &committed);
    let log = experiment(&bins, &out, &[]);
    assert!(
        log.contains("restored from results.json")
            && log.contains("2 pre-training, 4 export, 16 fine-tuning and 0 replaced-run records"),
        "{log}"
    );
    assert!(
        log.contains("fine-tuning (headline): 0 run, 12 already recorded")
            && log.contains("fine-tuning (the rest): 4 run, 4 already recorded"),
        "{log}"
    );
    assert!(
        log.contains("electra step 3: re-created") && log.contains("same discriminator_sha256"),
        "{log}"
    );
    assert_eq!(
        log.matches("$ electra pretrain").count(),
        1,
        "only ELECTRA, only to step 3:\n{log}"
    );
    let third = json(&out.join("results.json"));
    assert_eq!(scores(&first), scores(&third));
    assert_eq!(first["paired"], third["paired"]);
    let export = third["exports"]
        .as_array()
        .expect("exports")
        .iter()
        .find(|r| r["objective"] == "electra" && r["step"] == 3)
        .expect("electra step 3");
    assert_eq!(
        export["recreated"]["check"], "same discriminator_sha256 as recorded",
        "{export}"
    );
    assert_eq!(
        export["pretrain_seconds"], first["exports"][0]["pretrain_seconds"],
        "the original wall time is kept"
    );

    // 5. A recorded run made by another build: the committed fingerprint of BERT's final
    // checkpoint is not what pre-training gives here, and one of its fine-tunings is missing.
    // With its other fine-tunings recorded, the experiment stops and points to --replace-run;
    // that refuses while the run directory is past BERT's step 4 (not exportable any more);
    // without the directory, BERT's recorded run and all its fine-tunings move to `replaced`
    // and are redone on a run pre-trained afresh (the same run here, so the same scores).
    let mut committed = third.clone();
    for export in committed["exports"].as_array_mut().expect("exports") {
        if export["objective"] == "mlm" && export["step"] == 7 {
            export["fingerprint"]["discriminator_sha256"] = Value::from("0".repeat(64));
        }
    }
    let is_mlm_7_seed_1 = |r: &Value| r["model"] == "mlm" && r["step"] == 7 && r["seed"] == 1;
    let first_unit = committed["finetune"]
        .as_array()
        .and_then(|f| f.iter().position(is_mlm_7_seed_1))
        .expect("an mlm step-7 unit");
    committed["finetune"]
        .as_array_mut()
        .expect("finetune")
        .remove(first_unit);
    fresh_clone(&out, &committed);
    let log = experiment_fails(&bins, &out, &[]);
    assert!(
        log.contains("mlm step 7 pre-trained again")
            && log.contains("is not the recorded checkpoint")
            && log.contains("rerun with --replace-run mlm"),
        "{log}"
    );
    // The re-created checkpoint waits beside the place the record points to, not in it.
    let exports = work.join("exports/mlm");
    assert!(!exports.join("step-00000007").exists(), "{log}");
    assert!(
        exports
            .join("step-00000007.recreated/discriminator")
            .is_dir()
    );
    let log = experiment_fails(&bins, &out, &["--replace-run", "mlm"]);
    assert!(log.contains("is at step 7, past step 4"), "{log}");
    std::fs::remove_dir_all(work.join("runs/mlm")).expect("delete the run directory");
    let log = experiment(&bins, &out, &["--replace-run", "mlm"]);
    assert!(log.contains("mlm: the recorded run is replaced"), "{log}");
    let fourth = json(&out.join("results.json"));
    assert_eq!(
        scores(&first),
        scores(&fourth),
        "all units back, same scores"
    );
    let replaced = &fourth["replaced"][0];
    assert_eq!(replaced["objective"], "mlm");
    // BERT's 2 checkpoints × 2 tasks × 2 seeds, less the one removed above.
    assert_eq!(replaced["finetune"].as_array().map(Vec::len), Some(7));
    assert_eq!(replaced["exports"].as_array().map(Vec::len), Some(2));
    let md = std::fs::read_to_string(out.join("results.md")).expect("results.md");
    assert!(
        md.contains("## Replaced runs") && md.contains("- mlm: replaced on request"),
        "{md}"
    );
    for export in fourth["exports"].as_array().expect("exports") {
        if export["objective"] == "mlm" {
            assert!(
                export["fingerprint"]["discriminator_sha256"].is_string(),
                "{export}"
            );
            assert_ne!(
                export["fingerprint"]["discriminator_sha256"],
                Value::from("0".repeat(64))
            );
        }
    }
    // A rerun with the same flag finds the run replaced already and redoes nothing.
    let log = experiment(&bins, &out, &["--replace-run", "mlm"]);
    assert!(log.contains("replaced already"), "{log}");
    assert!(!log.contains("$ electra pretrain"), "{log}");
    std::fs::remove_dir_all(&tmp).expect("clean up");
}

/// What a fresh clone of a commit holding `committed` as results.json has: that file, no work/.
fn fresh_clone(out: &Path, committed: &Value) {
    std::fs::write(
        out.join("results.json"),
        serde_json::to_string_pretty(committed).expect("json"),
    )
    .expect("write results.json");
    std::fs::remove_dir_all(out.join("work")).expect("delete work/");
}

/// A fresh directory under the system temp dir.
fn tempfile_dir() -> PathBuf {
    tempfile_dir_named("experiment")
}

fn tempfile_dir_named(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("xtask-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

/// `cargo xtask experiment sharing --budget smoke`: ELECTRA tied, untied and GDES at equal
/// FLOPs, each final checkpoint and random init fine-tuned, the paired comparisons between the
/// modes written; interrupted, it resumes, and a finished experiment reruns as a no-op.
#[test]
fn sharing_smoke_budget_compares_the_three_modes_and_resumes() {
    let bins = debug_binaries();
    let tmp = tempfile_dir_named("sharing");
    let out = tmp.join("exp");
    let run = |extra: &[&str]| {
        let (ok, log) = run_named("sharing", &bins, &out, extra);
        assert!(ok, "experiment failed:\n{log}");
        log
    };
    let log = run(&["--stop-after", "2"]);
    assert!(log.contains("stopped at step 2"), "{log}");

    let plan = json(&out.join("plan.json"));
    assert_eq!(plan["budget"]["experiment"], "sharing");
    let runs = plan["runs"].as_array().expect("runs");
    let labels: Vec<&str> = runs
        .iter()
        .filter_map(|r| r["objective"].as_str())
        .collect();
    assert_eq!(labels, ["electra", "electra-untied", "electra-gdes"]);
    for (run, mode) in runs.iter().zip(["tied", "untied", "gdes"]) {
        let overrides: Vec<&str> = run["overrides"]
            .as_array()
            .expect("overrides")
            .iter()
            .filter_map(Value::as_str)
            .collect();
        assert!(overrides.contains(&"objective.objective=electra"), "{run}");
        if mode != "tied" {
            let set = format!("objective.embedding_sharing={mode}");
            assert!(overrides.contains(&set.as_str()), "{run}");
        }
    }
    // Equal FLOPs: every run spends tied ELECTRA's total within one step; GDES costs the same.
    let (tied, gdes) = (&runs[0], &runs[2]);
    let total = |r: &Value| r["train_flops_total"].as_f64().expect("flops");
    for r in runs {
        let per_step = r["train_flops_per_step"].as_f64().expect("per step");
        assert!(
            (total(r) - total(tied)).abs() <= per_step / 2.0 + 1.0,
            "{plan}"
        );
    }
    assert_eq!(tied["steps"], gdes["steps"]);

    let log = run(&[]);
    assert!(log.contains("pretrain --resume"), "{log}");
    let results = json(&out.join("results.json"));
    assert_eq!(results["experiment"], "sharing");
    let comparisons: Vec<&str> = results["paired"]
        .as_array()
        .expect("paired")
        .iter()
        .filter_map(|p| p["comparison"].as_str())
        .collect();
    for want in [
        "electra-gdes - electra",
        "electra-untied - electra",
        "electra-gdes - electra-untied",
    ] {
        assert!(comparisons.contains(&want), "{want} in {comparisons:?}");
    }
    // 4 models (three modes and random init) × 2 tasks × 2 seeds.
    assert_eq!(results["finetune"].as_array().map(Vec::len), Some(16));
    let md = std::fs::read_to_string(out.join("results.md")).expect("results.md");
    assert!(
        md.contains("# Embedding-sharing experiment, budget `smoke`"),
        "{md}"
    );
    assert!(
        md.contains("cargo xtask experiment sharing --budget smoke"),
        "{md}"
    );
    assert!(md.contains("electra-gdes - electra"), "{md}");

    // A finished experiment reruns as a no-op with the same numbers.
    let log = run(&[]);
    assert!(log.contains("0 run"), "{log}");
    assert_eq!(scores(&results), scores(&json(&out.join("results.json"))));
    std::fs::remove_dir_all(&tmp).expect("clean");
}
