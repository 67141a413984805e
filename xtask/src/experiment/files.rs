//! Records on disk: JSON written atomically (through `electra_fs`, a temporary file renamed
//! into place), so an interrupted experiment never leaves a half-written record that a rerun
//! would trust.

use std::path::{Path, PathBuf};

use anyhow::Context;
use serde_json::Value;

/// Writes `value` as pretty JSON to `path` atomically (parents created; see [`write_text`]).
pub fn write_json(path: &Path, value: &Value) -> anyhow::Result<()> {
    let text = serde_json::to_string_pretty(value)? + "\n";
    write_text(path, &text)
}

/// Writes `text` to `path` atomically (`electra_fs::write_atomic`: a hidden temporary file,
/// flushed and renamed), its parents created.
pub fn write_text(path: &Path, text: &str) -> anyhow::Result<()> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("cannot create {}", parent.display()))?;
    }
    electra_fs::write_atomic(path, text.as_bytes())
        .with_context(|| format!("cannot write {}", path.display()))
}

/// Moves the directory `from` to `to`, replacing whatever `to` held.
pub fn replace_dir(from: &Path, to: &Path) -> anyhow::Result<()> {
    if to.exists() {
        std::fs::remove_dir_all(to).with_context(|| format!("cannot remove {}", to.display()))?;
    }
    std::fs::rename(from, to)
        .with_context(|| format!("cannot rename {} to {}", from.display(), to.display()))
}

/// The JSON in `path`, `None` if there is no such file; a damaged file is an error naming it.
pub fn read_json(path: &Path) -> anyhow::Result<Option<Value>> {
    match std::fs::read_to_string(path) {
        Ok(text) => serde_json::from_str(&text).map(Some).with_context(|| {
            format!(
                "{} is not valid JSON (delete it to redo that step)",
                path.display()
            )
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
}

/// Every `*.json` record directly in `dir`, sorted by file name (none if `dir` is missing).
pub fn read_records(dir: &Path) -> anyhow::Result<Vec<Value>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e).with_context(|| format!("cannot list {}", dir.display())),
    };
    let mut paths: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    paths.sort();
    let mut records = Vec::new();
    for path in paths {
        if let Some(value) = read_json(&path)? {
            records.push(value);
        }
    }
    Ok(records)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_and_leave_no_temporary_file() {
        let dir = std::env::temp_dir().join(format!("xtask-files-{}", std::process::id()));
        let path = dir.join("a/b.json");
        write_json(&path, &serde_json::json!({"x": 1})).expect("write");
        assert_eq!(
            read_json(&path).expect("read"),
            Some(serde_json::json!({"x": 1}))
        );
        let names: Vec<_> = std::fs::read_dir(dir.join("a"))
            .expect("list")
            .map(|e| e.expect("entry").file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("b.json")]);
        assert_eq!(read_json(&dir.join("missing.json")).expect("missing"), None);
        std::fs::write(dir.join("a/bad.json"), "{").expect("write bad");
        let err = read_records(&dir.join("a"))
            .expect_err("damaged")
            .to_string();
        assert!(err.contains("bad.json"), "{err}");
        std::fs::remove_dir_all(&dir).expect("clean");
    }
}
