//! When a re-created checkpoint is not the recorded one, the re-created run replaces the
//! recorded run, by itself if nothing was fine-tuned on the recorded run's checkpoints, or when
//! the user asks (`--replace-run`).
//!
//! `pretrain::recreate` pre-trains a recorded checkpoint again (a fresh clone has no
//! checkpoints) and checks it against the record. Pre-training is deterministic given the
//! binary (resume is bit-exact, the thread count does not change a value), so a mismatch means
//! the recorded run was made by another build of `electra`, and it cannot be made again. Its
//! fine-tunings stay valid for its checkpoints, but nothing more can be fine-tuned on them, and
//! one curve must not mix two runs. A checkpoint belongs to the present (re-created) run when
//! it was re-created before any of its units ran (its export record's
//! `recreated.finetunings_before` is 0) and is not the one found different; every other
//! recorded checkpoint belongs to the recorded run.
//!
//! - No fine-tuning came from the recorded run: the present run replaces it by itself.
//! - Some did: the experiment stops and names them; `--replace-run OBJECTIVE` replaces the run
//!   anyway, those fine-tunings moved aside and redone on the present run.
//!
//! Replacing moves the recorded run's pre-training and export records and the fine-tunings of
//! its checkpoints, unchanged, into `records/replaced/<objective>.json` with the reason
//! (results.json keeps them under `replaced`, so nothing is lost); each checkpoint of the
//! present run gets an ordinary export record (its own wall time and fingerprint); the
//! recorded run's other checkpoints are exported afresh from the present run; and the run's
//! pre-training record (curves, final metrics, wall time) is written again from the present
//! run when it reaches its last step (`pretrain::finish`).

use anyhow::bail;
use serde_json::{Value, json};

use super::files;
use super::plan::Layout;
use super::pretrain::newest_checkpoint;

/// Why a recorded run is being replaced.
#[derive(Clone, Copy, Debug)]
pub enum Why<'a> {
    /// Its checkpoint at `step`, pre-trained again, differs (`reason` says how).
    Differs { step: u64, reason: &'a str },
    /// `--replace-run`: the user asked, accepting that fine-tunings of the recorded run's
    /// checkpoints are moved to the replaced record and redone on the present run (the run
    /// directory, or a run pre-trained afresh when there is none). `planned`: the run's
    /// checkpoint steps.
    Asked { planned: &'a [u64] },
}

/// Replaces `objective`'s recorded run by the run in its run directory (see the module doc).
/// When its checkpoint differs, refuses (naming the checkpoints) if a fine-tuning came from
/// the recorded run; the caller then records the re-created checkpoint as a new export.
pub fn run(layout: &Layout, objective: &str, why: Why<'_>) -> anyhow::Result<()> {
    let (differing, reason) = match why {
        Why::Differs { step, reason } => (Some(step), reason.to_string()),
        Why::Asked { .. } => (
            None,
            format!(
                "replaced on request (--replace-run {objective}) by the run in {}",
                layout.run_dir(objective).display()
            ),
        ),
    };
    let replaced_path = layout.replaced_record(objective);
    if replaced_path.exists() {
        bail!(
            "{reason}, and {} shows {objective}'s run was replaced once already: pre-training \
             is not reproducible here; look for a changed build or environment",
            replaced_path.display()
        );
    }
    let exports: Vec<Value> = files::read_records(&layout.export_records())?
        .into_iter()
        .filter(|r| r["objective"] == objective)
        .collect();
    // A checkpoint belongs to the present run when it was re-created before any of its units
    // ran (and is not the one found different); every other one to the recorded run.
    let of_present_run = |record: &Value| {
        record["recreated"]["finetunings_before"].as_u64() == Some(0)
            && record["step"].as_u64() != differing
    };
    if let Why::Asked { planned } = why {
        not_past_a_checkpoint_to_export(layout, objective, planned, &exports, of_present_run)?;
    }
    let old_steps: Vec<Option<u64>> = exports
        .iter()
        .filter(|r| !of_present_run(r))
        .map(|r| r["step"].as_u64())
        .collect();
    let old_units = finetunings_at(layout, objective, &old_steps)?;
    if !old_units.is_empty() && differing.is_some() {
        let mut steps: Vec<String> = old_units.iter().map(|u| u["step"].to_string()).collect();
        steps.dedup();
        bail!(
            "{reason}. {} fine-tunings came from the recorded run's checkpoints (steps {}), so \
             the re-created run does not replace it by itself; rerun with --replace-run \
             {objective} to replace it, those fine-tunings kept in {} and redone on the \
             re-created run",
            old_units.len(),
            steps.join(", "),
            replaced_path.display(),
        );
    }
    let pretrain_path = layout.pretrain_record(objective);
    files::write_json(
        &replaced_path,
        &json!({
            "objective": objective,
            "step": differing,
            "reason": reason,
            "pretrain": files::read_json(&pretrain_path)?,
            "exports": exports,
            "finetune": old_units,
        }),
    )?;
    for unit in &old_units {
        let field = |k: &str| unit[k].as_u64().unwrap_or_default();
        let task = unit["task"].as_str().unwrap_or_default();
        remove(&layout.finetune_record(objective, field("step"), task, field("seed")))?;
    }
    for record in &exports {
        let at = record["step"].as_u64().unwrap_or_default();
        let path = layout.export_record(objective, at);
        if of_present_run(record) {
            files::write_json(&path, &as_new_export(record))?;
        } else {
            remove(&path)?;
        }
    }
    remove(&pretrain_path)
}

/// The present run must still reach every planned checkpoint that is not its own yet, since
/// `electra export` writes a run's newest checkpoint.
fn not_past_a_checkpoint_to_export(
    layout: &Layout,
    objective: &str,
    planned: &[u64],
    exports: &[Value],
    of_present_run: impl Fn(&Value) -> bool,
) -> anyhow::Result<()> {
    let run_dir = layout.run_dir(objective);
    let Some(newest) = newest_checkpoint(&run_dir) else {
        return Ok(());
    };
    let ours = |step: u64| {
        exports
            .iter()
            .any(|r| r["step"].as_u64() == Some(step) && of_present_run(r))
    };
    if let Some(&step) = planned.iter().find(|&&s| s < newest && !ours(s)) {
        bail!(
            "--replace-run {objective}: {} is at step {newest}, past step {step}, whose \
             checkpoint would have to be exported from it again; delete {} so that the run is \
             pre-trained afresh from its configuration (every checkpoint exported on the way), \
             and rerun with --replace-run {objective}",
            run_dir.display(),
            run_dir.display()
        );
    }
    Ok(())
}

/// The recorded fine-tuning units that read one of `objective`'s checkpoints at `steps`.
fn finetunings_at(
    layout: &Layout,
    objective: &str,
    steps: &[Option<u64>],
) -> anyhow::Result<Vec<Value>> {
    Ok(files::read_records(&layout.finetune_records())?
        .into_iter()
        .filter(|r| r["model"] == objective && steps.contains(&r["step"].as_u64()))
        .collect())
}

/// How many recorded fine-tuning units read `objective`'s checkpoint at `step`.
pub fn finetunings_of(layout: &Layout, objective: &str, step: u64) -> anyhow::Result<usize> {
    Ok(finetunings_at(layout, objective, &[Some(step)])?.len())
}

/// The export record of a re-created checkpoint as a record of the run that replaces the
/// recorded one: the same record with the re-creation's wall time, fingerprint and build (a
/// re-creation older than build records has none: the recorded run's build is dropped too).
fn as_new_export(record: &Value) -> Value {
    let mut new = record.clone();
    let Some(fields) = new.as_object_mut() else {
        return new;
    };
    let recreated = fields.remove("recreated").unwrap_or_default();
    fields.insert("pretrain_seconds".into(), recreated["seconds"].clone());
    fields.insert("fingerprint".into(), recreated["fingerprint"].clone());
    match recreated.get("build") {
        Some(build) => fields.insert("build".into(), build.clone()),
        None => fields.remove("build"),
    };
    fields.insert(
        "replaces".into(),
        json!("the recorded run (results.json `replaced`)"),
    );
    new
}

fn remove(path: &std::path::Path) -> anyhow::Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(anyhow::anyhow!("cannot remove {}: {e}", path.display()))
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn export(step: u64, recreated: Option<Value>) -> Value {
        let mut r = json!({"objective": "electra-15", "step": step, "pretrain_flops": step as f64,
                           "export": format!("e/{step}"), "pretrain_seconds": 100.0,
                           "build": {"source": "recorded run's"}});
        if let Some(x) = recreated {
            r["recreated"] = x;
        }
        r
    }

    fn unit(step: u64, seed: u64) -> Value {
        json!({"model": "electra-15", "step": step, "task": "RTE", "seed": seed, "score": 0.5})
    }

    fn setup(name: &str) -> (PathBuf, Layout) {
        let out = std::env::temp_dir().join(format!("xtask-replace-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&out);
        let layout = Layout::new(&out);
        let recreated = |seconds: f64, before: Option<u64>| {
            let mut r = json!({"seconds": seconds, "check": "unchecked", "fingerprint": {"discriminator_sha256": format!("sha{seconds}")},
                           "build": {"source": "present run's"}});
            if let Some(n) = before {
                r["finetunings_before"] = json!(n);
            }
            r
        };
        for record in [
            export(2, Some(recreated(20.0, Some(0)))),
            export(4, Some(recreated(40.0, None))),
            export(6, None),
            export(8, None),
        ] {
            let at = record["step"].as_u64().expect("step");
            files::write_json(&layout.export_record("electra-15", at), &record).expect("w");
        }
        let pretrain = json!({"objective": "electra-15", "final_metrics": {"loss": 1.0}});
        files::write_json(&layout.pretrain_record("electra-15"), &pretrain).expect("w");
        files::write_json(
            &layout.finetune_record("electra-15", 2, "RTE", 1),
            &unit(2, 1),
        )
        .expect("w");
        (out, layout)
    }

    fn differs(step: u64) -> Why<'static> {
        Why::Differs {
            step,
            reason: "logged loss 2 instead of 1",
        }
    }

    #[test]
    fn a_fine_tuning_from_the_recorded_run_forbids_the_replacement_unless_asked() {
        let (out, layout) = setup("refused");
        // Step 4 was re-created, but whether units ran on the recorded one first is unknown.
        files::write_json(
            &layout.finetune_record("electra-15", 4, "RTE", 1),
            &unit(4, 1),
        )
        .expect("w");
        let err = run(&layout, "electra-15", differs(8)).expect_err("refused");
        let text = err.to_string();
        assert!(
            text.contains("1 fine-tunings") && text.contains("(steps 4)"),
            "{text}"
        );
        assert!(text.contains("--replace-run electra-15"), "{text}");
        assert!(
            layout.pretrain_record("electra-15").is_file(),
            "nothing moved"
        );
        assert!(!layout.replaced_record("electra-15").exists());
        // Units on the very checkpoint that differs came from the recorded one.
        std::fs::remove_file(layout.finetune_record("electra-15", 4, "RTE", 1)).expect("rm");
        let err = run(&layout, "electra-15", differs(2)).expect_err("refused");
        assert!(err.to_string().contains("(steps 2)"), "{err}");
        // Asked: the units move into the replaced record, to be redone on the present run.
        files::write_json(
            &layout.finetune_record("electra-15", 4, "RTE", 1),
            &unit(4, 1),
        )
        .expect("w");
        let planned = [2, 4, 6, 8];
        // The run directory past a checkpoint that would have to be exported again: refused.
        std::fs::create_dir_all(
            layout
                .run_dir("electra-15")
                .join("checkpoints/step-00000006"),
        )
        .expect("mkdir");
        let err = run(&layout, "electra-15", Why::Asked { planned: &planned }).expect_err("past");
        assert!(err.to_string().contains("at step 6, past step 4"), "{err}");
        assert!(!layout.replaced_record("electra-15").exists());
        std::fs::remove_dir_all(layout.run_dir("electra-15")).expect("rm run");
        run(&layout, "electra-15", Why::Asked { planned: &planned }).expect("asked");
        let replaced = files::read_json(&layout.replaced_record("electra-15"))
            .expect("read")
            .expect("kept");
        assert_eq!(replaced["finetune"], json!([unit(4, 1)]));
        assert!(
            replaced["reason"]
                .as_str()
                .expect("reason")
                .contains("--replace-run")
        );
        assert!(!layout.finetune_record("electra-15", 4, "RTE", 1).exists());
        assert!(
            layout.finetune_record("electra-15", 2, "RTE", 1).is_file(),
            "present run's"
        );
        assert!(layout.export_record("electra-15", 2).is_file());
        assert!(!layout.export_record("electra-15", 4).exists());
        std::fs::remove_dir_all(&out).expect("clean");
    }

    #[test]
    fn the_recreated_run_replaces_a_recorded_one_nothing_was_fine_tuned_on() {
        let (out, layout) = setup("replaced");
        run(&layout, "electra-15", differs(8)).expect("replaced");
        let read = |p: PathBuf| files::read_json(&p).expect("read");
        let replaced = read(layout.replaced_record("electra-15")).expect("kept");
        assert_eq!(replaced["reason"], "logged loss 2 instead of 1");
        assert_eq!(replaced["pretrain"]["final_metrics"]["loss"], 1.0);
        assert_eq!(replaced["exports"].as_array().map(Vec::len), Some(4));
        assert_eq!(replaced["finetune"], json!([]));
        // Checkpoints re-created before any unit become records of the present run; the
        // others (step 4: unknown whether units ran first) are dropped, to be exported afresh.
        let two = read(layout.export_record("electra-15", 2)).expect("kept");
        assert_eq!(two["pretrain_seconds"], 20.0);
        assert_eq!(two["fingerprint"]["discriminator_sha256"], "sha20");
        assert_eq!(two["build"]["source"], "present run's");
        assert_eq!(two["pretrain_flops"], 2.0, "the rest of the record kept");
        assert_eq!(two.get("recreated"), None);
        for gone in [4, 6, 8] {
            assert!(!layout.export_record("electra-15", gone).exists(), "{gone}");
        }
        assert!(!layout.pretrain_record("electra-15").exists());
        assert!(layout.finetune_record("electra-15", 2, "RTE", 1).is_file());
        // A second replacement means pre-training is not reproducible: an error.
        let err = run(&layout, "electra-15", Why::Asked { planned: &[] }).expect_err("twice");
        assert!(err.to_string().contains("replaced once already"), "{err}");
        std::fs::remove_dir_all(&out).expect("clean");
    }
}
