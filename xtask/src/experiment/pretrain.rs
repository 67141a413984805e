//! Pre-training phase: the shards, then one run per objective, stopped at each planned
//! checkpoint (`electra pretrain --stop-after`), exported there (`electra export`) and resumed
//! (`electra pretrain --resume`). Every finished export and run leaves a record; a rerun skips
//! what is recorded and resumes a run from its newest checkpoint. An export records its
//! checkpoint's fingerprint, so that a recorded checkpoint whose files are gone (a fresh clone)
//! can be pre-trained again and shown to be the same one before anything is fine-tuned on it.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::budget::{Budget, Corpus};
use super::files;
use super::plan::{Layout, RunPlan};
use super::replace;
use super::tools::{Tools, arg};

/// Whether a phase finished or stopped early on `--stop-after`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Progress {
    /// Everything planned is done.
    Done,
    /// Stopped at the requested step; rerun to continue.
    Stopped,
}

/// The shard directory: `--data` itself when it holds a `manifest.json`, else shards built into
/// `work/shards` (once) from the demo corpus or from `--data` with `--vocab`.
pub fn shards(
    layout: &Layout,
    budget: &Budget,
    tools: &Tools,
    data: &Path,
    vocab: &Path,
) -> anyhow::Result<PathBuf> {
    if data.join("manifest.json").is_file() {
        return Ok(data.to_path_buf());
    }
    let out = layout.shards();
    if out.join("manifest.json").is_file() {
        eprintln!("shards: {} already built", out.display());
        return Ok(out);
    }
    let mut args = vec![
        "data".to_string(),
        "build".into(),
        "--out".into(),
        arg(&out),
        "--shards".into(),
        budget.shards.to_string(),
        "--max-seq-len".into(),
        budget.max_seq_len.to_string(),
    ];
    match &budget.corpus {
        Corpus::Demo { documents } => {
            args.extend(["--demo-documents".into(), documents.to_string()]);
        }
        Corpus::Files => {
            for (flag, path) in [("--input", data), ("--tokenizer", vocab)] {
                if !path.exists() {
                    bail!(
                        "{flag} {}: not found (pass --data / --vocab)",
                        path.display()
                    );
                }
                args.extend([flag.to_string(), arg(path)]);
            }
        }
    }
    if out.exists() {
        // An interrupted build leaves no manifest; the build replaces the whole set.
        args.push("--overwrite".into());
    }
    tools.electra(&args)?;
    Ok(out)
}

/// The newest checkpoint step of a run directory (`checkpoints/step-N`), if any.
pub fn newest_checkpoint(run_dir: &Path) -> Option<u64> {
    std::fs::read_dir(run_dir.join("checkpoints"))
        .ok()?
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str()?.strip_prefix("step-")?.parse().ok())
        .max()
}

/// What pre-training needs besides the run's plan.
pub struct Pretraining<'a> {
    /// The experiment's directories.
    pub layout: &'a Layout,
    /// The budget (preset of a fresh run).
    pub budget: &'a Budget,
    /// The binaries.
    pub tools: &'a Tools,
    /// The shard directory.
    pub shards: &'a Path,
}

/// Pre-trains `plan` up to each planned checkpoint and exports it; `stop_after` stops every run
/// at that step (tests and sittings). Writes the run's record when its last checkpoint is out.
pub fn run(
    ctx: &Pretraining<'_>,
    plan: &RunPlan,
    stop_after: Option<u64>,
) -> anyhow::Result<Progress> {
    for &step in &plan.checkpoints {
        if checkpoint(ctx, plan, step, stop_after, false)? == Progress::Stopped {
            return Ok(Progress::Stopped);
        }
    }
    finish(ctx, plan)?;
    Ok(Progress::Done)
}

/// Makes `plan`'s checkpoint at `step` exported and recorded: pre-trains up to it (stopping at
/// `stop_after` first, if that is earlier) and exports it. A recorded checkpoint is skipped,
/// unless it is `needed` (a fine-tuning still has to read it) and its export is missing, as in a
/// fresh clone whose records came back from results.json (`restore.rs`): then [`recreate`]
/// pre-trains it again.
pub fn checkpoint(
    ctx: &Pretraining<'_>,
    plan: &RunPlan,
    step: u64,
    stop_after: Option<u64>,
    needed: bool,
) -> anyhow::Result<Progress> {
    let objective = plan.objective.as_str();
    let record_path = ctx.layout.export_record(objective, step);
    if let Some(record) = files::read_json(&record_path)? {
        let exported = ctx.layout.export_dir(objective, step).join("discriminator");
        if needed && !exported.is_dir() {
            recreate(ctx, plan, step, record)?;
        }
        return Ok(Progress::Done);
    }
    let target = stop_after.map_or(step, |s| s.min(step));
    let run_dir = ctx.layout.run_dir(objective);
    let seconds = advance(ctx, plan, &run_dir, target)?;
    if target < step {
        return Ok(Progress::Stopped);
    }
    let export_dir = export(ctx, plan, step)?;
    let print = fingerprint(&export_dir, &run_dir, step)?;
    record_export(ctx, plan, step, seconds, print)?;
    Ok(Progress::Done)
}

/// Records `plan`'s checkpoint at `step`, exported and fingerprinted, pre-trained in `seconds`.
fn record_export(
    ctx: &Pretraining<'_>,
    plan: &RunPlan,
    step: u64,
    seconds: f64,
    fingerprint: Value,
) -> anyhow::Result<()> {
    let objective = plan.objective.as_str();
    files::write_json(
        &ctx.layout.export_record(objective, step),
        &json!({
            "objective": objective,
            "step": step,
            "pretrain_flops": step as f64 * plan.train_flops_per_step,
            "export": arg(&ctx.layout.export_dir(objective, step)),
            "pretrain_seconds": seconds,
            "fingerprint": fingerprint,
            "build": ctx.tools.build,
        }),
    )
}

/// Exports the run's newest checkpoint (which is at `step`) to its export directory.
fn export(ctx: &Pretraining<'_>, plan: &RunPlan, step: u64) -> anyhow::Result<PathBuf> {
    let export_dir = ctx.layout.export_dir(&plan.objective, step);
    export_to(ctx, plan, &export_dir)?;
    Ok(export_dir)
}

/// Exports the run's newest checkpoint to `export_dir`.
fn export_to(ctx: &Pretraining<'_>, plan: &RunPlan, export_dir: &Path) -> anyhow::Result<()> {
    let run_dir = ctx.layout.run_dir(&plan.objective);
    let mut args = vec![
        "export".to_string(),
        arg(&run_dir),
        "--out".into(),
        arg(export_dir),
    ];
    if export_dir.exists() {
        args.push("--overwrite".into());
    }
    ctx.tools.electra(&args)?;
    Ok(())
}

/// Re-creates a recorded checkpoint whose export is gone: pre-trains the run again from its
/// recorded configuration and seed (resuming from its newest checkpoint at or before `step`, so
/// a run's checkpoints are cheapest re-created in ascending order), exports it, and checks it
/// against the record's fingerprint ([`check`]; for a record older than fingerprints, the one
/// of its earlier re-creation, if any). The record keeps its original wall time and gains
/// `recreated` (seconds, the check, the fingerprint, and how many of its fine-tunings were
/// recorded before). A different checkpoint is never fine-tuned in place of the recorded one:
/// the re-created run replaces the recorded run when nothing was fine-tuned on the latter, and
/// is an error otherwise (`replace.rs`).
fn recreate(
    ctx: &Pretraining<'_>,
    plan: &RunPlan,
    step: u64,
    mut record: Value,
) -> anyhow::Result<()> {
    let objective = plan.objective.as_str();
    eprintln!(
        "{objective} step {step}: recorded, but its export is not in {} (a fresh clone?); \
         pre-training it again from the recorded configuration and seed",
        ctx.layout.export_dir(objective, step).display()
    );
    let run_dir = ctx.layout.run_dir(objective);
    let seconds = advance(ctx, plan, &run_dir, step)?;
    // Exported beside its place and moved there only once it is accepted: a checkpoint that is
    // not the recorded one must never sit where the record points.
    let export_dir = ctx.layout.export_dir(objective, step);
    let staging = export_dir.with_extension("recreated");
    export_to(ctx, plan, &staging)?;
    let now = fingerprint(&staging, &run_dir, step)?;
    let pretrain_record = files::read_json(&ctx.layout.pretrain_record(objective))?;
    let final_metrics = pretrain_record
        .filter(|_| step == plan.steps)
        .map(|r| r["final_metrics"].clone());
    let recorded = match &record["fingerprint"] {
        Value::Null => &record["recreated"]["fingerprint"],
        print => print,
    };
    let checked = match check(recorded, final_metrics.as_ref(), &now) {
        Ok(checked) => checked,
        Err(e) => {
            let reason = format!(
                "{objective} step {step} pre-trained again in {} (exported to {}) is not the \
                 recorded checkpoint: {e} (recorded by build {}, re-created by build {})",
                run_dir.display(),
                staging.display(),
                record.get("build").unwrap_or(&Value::Null),
                ctx.tools.build
            );
            replace::run(
                ctx.layout,
                objective,
                replace::Why::Differs {
                    step,
                    reason: &reason,
                },
            )?;
            files::replace_dir(&staging, &export_dir)?;
            eprintln!(
                "{reason}; nothing was fine-tuned on the recorded run, so the re-created run \
                 replaces it (the old records are kept in {})",
                ctx.layout.replaced_record(objective).display()
            );
            return record_export(ctx, plan, step, seconds, now);
        }
    };
    files::replace_dir(&staging, &export_dir)?;
    eprintln!("{objective} step {step}: re-created in {seconds:.0} s; {checked}");
    record["recreated"] = json!({
        "seconds": seconds,
        "check": checked,
        "fingerprint": now,
        "build": ctx.tools.build,
        "finetunings_before": replace::finetunings_of(ctx.layout, objective, step)?,
    });
    files::write_json(&ctx.layout.export_record(objective, step), &record)
}

/// A checkpoint's identity: the SHA-256 of its exported discriminator (each file's name and
/// content in name order; a `.safetensors` file by its tensors, see [`hash_safetensors`]) and
/// the last training line the run logged at or before `step`.
pub fn fingerprint(export_dir: &Path, run_dir: &Path, step: u64) -> anyhow::Result<Value> {
    let dir = export_dir.join("discriminator");
    let mut names: Vec<PathBuf> = std::fs::read_dir(&dir)
        .with_context(|| format!("cannot list {}", dir.display()))?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.is_file())
        .collect();
    names.sort();
    let mut hash = Sha256::new();
    for path in &names {
        let bytes =
            std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
        hash.update(path.file_name().unwrap_or_default().as_encoded_bytes());
        if path.extension().is_some_and(|e| e == "safetensors") {
            hash_safetensors(&bytes, &mut hash)
                .with_context(|| format!("{}: not a safetensors file", path.display()))?;
        } else {
            hash_bytes(&bytes, &mut hash);
        }
    }
    let digest = electra_fs::hex(&hash.finalize());
    Ok(json!({
        "discriminator_sha256": digest,
        "train_metrics": train_metrics_at(&run_dir.join("metrics.jsonl"), step),
    }))
}

/// Length-prefixed bytes.
fn hash_bytes(bytes: &[u8], hash: &mut Sha256) {
    hash.update((bytes.len() as u64).to_le_bytes());
    hash.update(bytes);
}

/// A safetensors file by its tensors: name, dtype, shape and data of each, in name order. Its
/// header is not hashed as written: burn-store writes the `__metadata__` keys in a different
/// order each time, so two exports of the same weights differ in bytes.
fn hash_safetensors(bytes: &[u8], hash: &mut Sha256) -> anyhow::Result<()> {
    let (header, data) = crate::safetensors::split(bytes)?;
    let mut names: Vec<&String> = header.keys().filter(|k| *k != "__metadata__").collect();
    names.sort();
    for name in names {
        let tensor = &header[name];
        let offsets = |i: usize| tensor["data_offsets"][i].as_u64().map(|o| o as usize);
        let (Some(begin), Some(end)) = (offsets(0), offsets(1)) else {
            bail!("tensor {name} has no data_offsets");
        };
        let slice = data
            .get(begin..end)
            .with_context(|| format!("tensor {name}: data_offsets past the end"))?;
        hash_bytes(name.as_bytes(), hash);
        hash_bytes(tensor["dtype"].to_string().as_bytes(), hash);
        hash_bytes(tensor["shape"].to_string().as_bytes(), hash);
        hash_bytes(slice, hash);
    }
    Ok(())
}

/// Keys of a training line that depend on the machine's speed, not on the model.
const TIMING_KEYS: [&str; 2] = ["step_seconds", "tokens_per_sec"];

/// Checks a re-created checkpoint's fingerprint `now` against the `recorded` one: the SHA-256
/// when recorded; else the training line logged at that step, from the record or (records
/// older than fingerprints, at a run's last step) the run's `final_metrics`, timings aside.
/// Returns what was checked, or what differs.
pub fn check(
    recorded: &Value,
    final_metrics: Option<&Value>,
    now: &Value,
) -> Result<String, String> {
    let key = "discriminator_sha256";
    if let Some(sha) = recorded[key].as_str() {
        return match now[key].as_str() {
            Some(again) if again == sha => Ok(format!("same {key} as recorded")),
            again => Err(format!(
                "{key} {} instead of {sha}",
                again.unwrap_or("missing")
            )),
        };
    }
    let expected = match &recorded["train_metrics"] {
        Value::Null => final_metrics.filter(|m| !m.is_null()),
        metrics => Some(metrics),
    };
    let Some(expected) = expected.and_then(Value::as_object) else {
        eprintln!("warning: the record has no fingerprint to check the checkpoint against");
        return Ok("unchecked (recorded before fingerprints)".into());
    };
    let again = &now["train_metrics"];
    for (name, value) in expected {
        if !TIMING_KEYS.contains(&name.as_str()) && again[name] != *value {
            return Err(format!("logged {name} {} instead of {value}", again[name]));
        }
    }
    Ok(format!(
        "same training line at step {} as recorded",
        expected.get("step").unwrap_or(&Value::Null)
    ))
}

/// Runs (or resumes) pre-training until the newest checkpoint is `target`; returns its wall
/// seconds, or, when the checkpoint is there already (a sitting stopped between pre-training and
/// exporting it), the step time the run logged from the plan's previous checkpoint to `target`.
fn advance(
    ctx: &Pretraining<'_>,
    plan: &RunPlan,
    run_dir: &Path,
    target: u64,
) -> anyhow::Result<f64> {
    let newest = newest_checkpoint(run_dir);
    if newest.is_some_and(|n| n > target) {
        bail!(
            "{} is at step {} already, past step {target} whose checkpoint is not exported; \
             delete that run directory to pre-train it again",
            run_dir.display(),
            newest.unwrap_or_default()
        );
    }
    if newest == Some(target) {
        let from = plan
            .checkpoints
            .iter()
            .copied()
            .filter(|&c| c < target)
            .max();
        return Ok(logged_seconds(
            &run_dir.join("metrics.jsonl"),
            from.unwrap_or(0),
            target,
        ));
    }
    let mut args = vec!["pretrain".to_string()];
    if run_dir.join("config.toml").is_file() {
        args.extend(["--resume".into(), arg(run_dir)]);
    } else {
        args.extend(["--preset".into(), ctx.budget.preset.to_string()]);
        args.extend([
            "--data".into(),
            arg(ctx.shards),
            "--out".into(),
            arg(run_dir),
        ]);
        for o in &plan.overrides {
            args.extend(["--set".into(), o.clone()]);
        }
    }
    args.extend(["--stop-after".into(), target.to_string()]);
    let seconds = ctx.tools.electra(&args)?;
    let reached = newest_checkpoint(run_dir);
    if reached != Some(target) {
        bail!(
            "pre-training in {} stopped at step {} before step {target} (interrupted?); run the \
             experiment again to resume it",
            run_dir.display(),
            reached.map_or("0".into(), |s| s.to_string())
        );
    }
    Ok(seconds)
}

/// The run's record (config, FLOPs, wall time, last logged metrics) and its curves, unless
/// recorded already.
pub fn finish(ctx: &Pretraining<'_>, plan: &RunPlan) -> anyhow::Result<()> {
    let Pretraining { layout, tools, .. } = *ctx;
    let objective = plan.objective.as_str();
    let record_path = layout.pretrain_record(objective);
    if record_path.is_file() {
        eprintln!("pre-training {objective}: done (recorded)");
        return Ok(());
    }
    let run_dir = layout.run_dir(objective);
    let plot = layout.plots().join(format!("pretrain-{objective}.svg"));
    std::fs::create_dir_all(layout.plots())?;
    tools.electra(&["plot".into(), arg(&run_dir), "--out".into(), arg(&plot)])?;
    let seconds: f64 = files::read_records(&layout.export_records())?
        .iter()
        .filter(|r| r["objective"] == objective)
        .filter_map(|r| r["pretrain_seconds"].as_f64())
        .sum();
    let config = std::fs::read_to_string(run_dir.join("config.toml")).unwrap_or_default();
    files::write_json(
        &record_path,
        &json!({
            "objective": objective,
            "steps": plan.steps,
            "train_flops_per_step": plan.train_flops_per_step,
            "train_flops_total": plan.train_flops_total,
            "wall_seconds": seconds,
            "run_dir": arg(&run_dir),
            "config_toml": config,
            "final_metrics": train_metrics_at(&run_dir.join("metrics.jsonl"), u64::MAX),
            "curves": format!("plots/pretrain-{objective}.svg"),
        }),
    )
}

/// Seconds of the steps `from+1..=to` as the run logged them: each training line's mean
/// `step_seconds` times the steps of its window (from the previous training line).
fn logged_seconds(path: &Path, from: u64, to: u64) -> f64 {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let (mut previous, mut total) = (0.0f64, 0.0);
    for line in text
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
    {
        let (Some(step), Some(seconds)) = (line["step"].as_f64(), line["step_seconds"].as_f64())
        else {
            continue;
        };
        if step > from as f64 && step <= to as f64 {
            total += seconds * (step - previous.max(from as f64));
        }
        previous = step;
    }
    total
}

/// The last training line of `metrics.jsonl` (not an `eval_*` line) logged at or before `step`,
/// or null.
fn train_metrics_at(path: &Path, step: u64) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.lines()
        .rev()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["step"].as_f64().is_some_and(|s| s <= step as f64))
        .find(|v| v.get("loss").is_some())
        .unwrap_or(Value::Null)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_newest_checkpoint_ignores_temporary_directories() {
        let run = std::env::temp_dir().join(format!("xtask-ckpt-{}", std::process::id()));
        assert_eq!(newest_checkpoint(&run), None);
        for name in ["step-00000002", "step-00000010", ".step-00000012.tmp"] {
            std::fs::create_dir_all(run.join("checkpoints").join(name)).expect("mkdir");
        }
        assert_eq!(newest_checkpoint(&run), Some(10));
        std::fs::remove_dir_all(&run).expect("clean");
    }

    #[test]
    fn logged_seconds_weigh_each_window_by_its_steps() {
        let dir = std::env::temp_dir().join(format!("xtask-logged-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("mkdir");
        let path = dir.join("metrics.jsonl");
        // Windows of 25 steps, a stop at 130 (a partial window), an eval line without timing.
        let lines = [
            (100.0, 0.1),
            (125.0, 0.2),
            (130.0, 1.0),
            (150.0, 0.5),
            (175.0, 0.4),
        ];
        let mut text: String = lines
            .iter()
            .map(|(s, t)| format!("{{\"step\":{s},\"loss\":1.0,\"step_seconds\":{t}}}\n"))
            .collect();
        text.push_str("{\"step\":175,\"eval_loss\":1.0}\n");
        std::fs::write(&path, text).expect("write");
        let close = |a: f64, b: f64| (a - b).abs() < 1e-9;
        assert!(close(
            logged_seconds(&path, 0, 175),
            100.0 * 0.1 + 25.0 * 0.2 + 5.0 + 10.0 + 10.0
        ));
        assert!(close(
            logged_seconds(&path, 125, 150),
            5.0 * 1.0 + 20.0 * 0.5
        ));
        assert!(close(logged_seconds(&path, 175, 200), 0.0));
        std::fs::remove_dir_all(&dir).expect("clean");
    }

    #[test]
    fn a_recreated_checkpoint_must_match_the_recorded_fingerprint() {
        let line = |loss: f64, seconds: f64| {
            json!({"step": 8.0, "loss": loss, "rtd_loss": 0.1, "step_seconds": seconds,
                   "tokens_per_sec": 1000.0 / seconds})
        };
        let now = json!({"discriminator_sha256": "abc", "train_metrics": line(2.5, 0.3)});
        // The hash decides when the record has one, whatever the metrics say.
        let recorded = json!({"discriminator_sha256": "abc", "train_metrics": line(9.0, 0.1)});
        assert_eq!(
            check(&recorded, None, &now),
            Ok("same discriminator_sha256 as recorded".into())
        );
        let err = check(&json!({"discriminator_sha256": "abd"}), None, &now).expect_err("hash");
        assert!(err.contains("abc instead of abd"), "{err}");
        // Without a hash: the logged line, timings aside.
        let recorded = json!({"train_metrics": line(2.5, 0.9)});
        assert!(check(&recorded, None, &now).is_ok());
        let err = check(&json!({"train_metrics": line(2.4, 0.3)}), None, &now).expect_err("loss");
        assert!(err.contains("logged loss 2.5 instead of 2.4"), "{err}");
        // Records older than fingerprints: the run's final metrics, at its last step only.
        let old = Value::Null;
        assert!(check(&old, Some(&line(2.5, 0.2)), &now).is_ok());
        assert!(check(&old, Some(&line(2.0, 0.3)), &now).is_err());
        assert_eq!(
            check(&old, None, &now),
            Ok("unchecked (recorded before fingerprints)".into())
        );
    }

    #[test]
    fn the_fingerprint_hashes_the_discriminator_and_reads_the_line_at_the_step() {
        let dir = std::env::temp_dir().join(format!("xtask-fingerprint-{}", std::process::id()));
        let (export, run) = (dir.join("export"), dir.join("run"));
        std::fs::create_dir_all(export.join("discriminator")).expect("mkdir");
        std::fs::create_dir_all(&run).expect("mkdir");
        std::fs::write(export.join("discriminator/vocab.txt"), b"weights").expect("w");
        std::fs::write(
            run.join("metrics.jsonl"),
            "{\"step\":2,\"loss\":3.0}\n{\"step\":3,\"eval_loss\":1.0}\n{\"step\":4,\"loss\":2.0}\n",
        )
        .expect("metrics");
        let a = fingerprint(&export, &run, 3).expect("fingerprint");
        assert_eq!(a["train_metrics"], json!({"step": 2, "loss": 3.0}));
        let sha = a["discriminator_sha256"].as_str().expect("sha").to_string();
        assert_eq!(sha.len(), 64);
        // A safetensors file is hashed by its tensors: metadata written in another order gives
        // the same hash, one changed weight another.
        let file = |meta: &str, weight: u8| {
            let header = format!(
                "{{\"__metadata__\":{meta},\"w\":{{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}}}"
            );
            let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
            bytes.extend(header.as_bytes());
            bytes.extend([weight, 0, 0, 0]);
            bytes
        };
        let st = export.join("discriminator/model.safetensors");
        let sha_of = |bytes: Vec<u8>| {
            std::fs::write(&st, bytes).expect("write");
            fingerprint(&export, &run, 3).expect("fingerprint")["discriminator_sha256"].clone()
        };
        let one = sha_of(file(r#"{"a":"1","b":"2"}"#, 7));
        assert_eq!(one, sha_of(file(r#"{"b":"2","a":"1"}"#, 7)));
        assert_ne!(one, sha_of(file(r#"{"a":"1","b":"2"}"#, 8)));
        std::fs::write(&st, b"weights").expect("w");
        assert!(
            fingerprint(&export, &run, 3).is_err(),
            "a damaged file is an error"
        );
        std::fs::remove_file(&st).expect("rm");
        std::fs::write(export.join("discriminator/vocab.txt"), b"weights").expect("w");
        // One changed byte changes the hash.
        std::fs::write(export.join("discriminator/vocab.txt"), b"weightz").expect("w");
        let b = fingerprint(&export, &run, 4).expect("fingerprint");
        assert_ne!(b["discriminator_sha256"].as_str(), Some(sha.as_str()));
        assert_eq!(b["train_metrics"]["loss"], json!(2.0));
        std::fs::remove_dir_all(&dir).expect("clean");
    }
}
