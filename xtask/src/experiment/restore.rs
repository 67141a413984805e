//! The committed `results.json` is the experiment's durable record; `work/` is a cache.
//!
//! `work/` (shards, runs, exports, fine-tuning outputs, records) is never committed, so a fresh
//! clone, another machine, or a sitting whose disk was wiped has none of it, while the
//! `results.json` committed from an earlier sitting holds every record it had. When
//! `work/records` does not exist, every pre-training, export, fine-tuning and replaced-run record
//! in `results.json` is written back there (into a temporary directory renamed into place, so an
//! interrupted restore is redone whole). Without this a rerun would pre-train and fine-tune
//! everything again, and its first report would replace the committed results with fewer.
//! An existing `work/records` is left alone: deleting one record there is how a user redoes
//! that piece of work. Checkpoints are not in `results.json`; `pretrain::checkpoint`
//! re-creates one that a pending fine-tuning needs.

use std::path::{Path, PathBuf};

use anyhow::Context;
use serde_json::Value;

use super::files;
use super::plan::Layout;

/// How many records of each kind were written back.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Restored {
    /// Pre-training runs.
    pub pretrain: usize,
    /// Exports (checkpoints ready to fine-tune).
    pub exports: usize,
    /// Fine-tuning units.
    pub finetune: usize,
    /// Recorded runs that a re-created run replaced (`replace.rs`).
    pub replaced: usize,
}

/// Writes back the records of `OUT/results.json` when `work/records` does not exist.
pub fn records(layout: &Layout) -> anyhow::Result<Restored> {
    let records = layout.work.join("records");
    let path = layout.out.join("results.json");
    if records.exists() {
        return Ok(Restored::default());
    }
    let Some(results) = files::read_json(&path)? else {
        return Ok(Restored::default());
    };
    // Records are laid out by a layout whose work/ is the temporary directory.
    let staging = Layout {
        out: layout.out.clone(),
        work: layout.work.join("records.restoring"),
    };
    if staging.work.exists() {
        std::fs::remove_dir_all(&staging.work)
            .with_context(|| format!("cannot remove {}", staging.work.display()))?;
    }
    let mut restored = Restored::default();
    for (key, count) in [
        ("pretrain", &mut restored.pretrain),
        ("exports", &mut restored.exports),
        ("finetune", &mut restored.finetune),
        ("replaced", &mut restored.replaced),
    ] {
        let list = results[key].as_array().map(Vec::as_slice).unwrap_or(&[]);
        for (i, record) in list.iter().enumerate() {
            let target = record_path(&staging, key, record)
                .with_context(|| format!("{}: `{key}`[{i}]", path.display()))?;
            files::write_json(&target, record)?;
            *count += 1;
        }
    }
    if restored != Restored::default() {
        rename(&staging.work.join("records"), &records)?;
    }
    let _ = std::fs::remove_dir_all(&staging.work);
    Ok(restored)
}

fn rename(from: &Path, to: &Path) -> anyhow::Result<()> {
    std::fs::rename(from, to)
        .with_context(|| format!("cannot rename {} to {}", from.display(), to.display()))
}

/// Where `record`, one of `results.json`'s `key` list, lives under `layout`'s records.
fn record_path(layout: &Layout, key: &str, record: &Value) -> anyhow::Result<PathBuf> {
    let text = |field: &str| {
        record[field]
            .as_str()
            .with_context(|| format!("no string `{field}`"))
    };
    let number = |field: &str| {
        record[field]
            .as_u64()
            .with_context(|| format!("no whole number `{field}`"))
    };
    Ok(match key {
        "pretrain" => layout.pretrain_record(text("objective")?),
        "exports" => layout.export_record(text("objective")?, number("step")?),
        "replaced" => layout.replaced_record(text("objective")?),
        _ => layout.finetune_record(
            text("model")?,
            number("step")?,
            text("task")?,
            number("seed")?,
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_missing_records_directory_comes_back_from_results_json_and_an_existing_one_stays() {
        let out = std::env::temp_dir().join(format!("xtask-restore-{}", std::process::id()));
        let layout = Layout::new(&out);
        assert_eq!(records(&layout).expect("no results"), Restored::default());
        let unit = |seed: u64, score: f64| json!({"model": "electra", "step": 8, "task": "RTE", "seed": seed, "score": score});
        let results = json!({
            "pretrain": [{"objective": "electra", "steps": 8}],
            "exports": [{"objective": "electra", "step": 4}, {"objective": "electra", "step": 8}],
            "finetune": [unit(1, 0.5), unit(2, 0.6)],
            "replaced": [{"objective": "electra-15", "reason": "differs"}],
        });
        files::write_json(&out.join("results.json"), &results).expect("results");
        let restored = records(&layout).expect("restore");
        assert_eq!(
            restored,
            Restored {
                pretrain: 1,
                exports: 2,
                finetune: 2,
                replaced: 1,
            }
        );
        let read = |p: PathBuf| files::read_json(&p).expect("read").expect("exists");
        assert_eq!(
            read(layout.export_record("electra", 4)),
            results["exports"][0]
        );
        assert_eq!(
            read(layout.pretrain_record("electra")),
            results["pretrain"][0]
        );
        assert_eq!(
            read(layout.finetune_record("electra", 8, "RTE", 2)),
            unit(2, 0.6)
        );
        assert_eq!(
            read(layout.replaced_record("electra-15")),
            results["replaced"][0]
        );
        assert!(!layout.work.join("records.restoring").exists());
        // A record deleted from work/records (to redo it) is not brought back.
        std::fs::remove_file(layout.finetune_record("electra", 8, "RTE", 1)).expect("rm");
        assert_eq!(records(&layout).expect("again"), Restored::default());
        assert!(!layout.finetune_record("electra", 8, "RTE", 1).exists());

        // A record that cannot be placed names the file and the entry, and restores nothing.
        std::fs::remove_dir_all(layout.work.join("records")).expect("rm records");
        let bad = json!({"pretrain": [{"objective": "electra"}], "exports": [{"step": 4}]});
        files::write_json(&out.join("results.json"), &bad).expect("bad results");
        let err = format!("{:#}", records(&layout).expect_err("no objective"));
        assert!(
            err.contains("results.json: `exports`[0]") && err.contains("`objective`"),
            "{err}"
        );
        assert!(
            !layout.work.join("records").exists(),
            "nothing half-restored"
        );
        std::fs::remove_dir_all(&out).expect("clean");
    }
}
