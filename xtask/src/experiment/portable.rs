//! The committed records read the same on any machine: every path in `results.json` and
//! `results.md` that lies inside the repository, or beside it in its parent directory (where
//! `../shared/data` lives), is written relative to the repository root
//! (`experiments/sharing-mini/work/runs/electra`, `../shared/data/glue/CoLA/dev.tsv`), whatever
//! checkout ran the experiment. `work/records` (the cache that is never committed) keeps the
//! absolute paths the tools were given; any other path stays as it was given.

use std::path::{Component, Path, PathBuf};

use serde_json::Value;

/// `value` with every string's absolute paths under `root` made relative to `root`.
pub fn json(value: &Value, root: &Path) -> Value {
    match value {
        Value::String(s) => Value::String(text(s, root)),
        Value::Array(items) => Value::Array(items.iter().map(|v| json(v, root)).collect()),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), json(v, root)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// `text` with `ROOT/` removed wherever it starts a path, and `ROOT/../x` read as `../x`.
pub fn text(text: &str, root: &Path) -> String {
    let root = lexical(root);
    let Some(root) = root.to_str().filter(|r| r.starts_with('/') && r.len() > 1) else {
        return text.to_string();
    };
    let mut out = text.to_string();
    // The parent first: `ROOT/../shared` is `PARENT/shared`, relative `../shared`.
    let parent = Path::new(root).parent().and_then(Path::to_str);
    out = out.replace(&format!("{root}/../"), "../");
    out = out.replace(&format!("{root}/"), "");
    if let Some(parent) = parent.filter(|p| p.len() > 1) {
        out = out.replace(&format!("{parent}/"), "../");
    }
    out
}

/// `path` with `.` and `..` components resolved without touching the file system.
fn lexical(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn paths_inside_the_repository_become_relative_to_its_root() {
        let root = Path::new("/home/a/electra-rs");
        let record = json!({
            "run_dir": "/home/a/electra-rs/experiments/x/work/runs/electra",
            "validation": "/home/a/electra-rs/../shared/data/glue/CoLA/dev.tsv",
            "steps": 2000,
            "notes": ["replaced by the run in /home/a/electra-rs/experiments/x/work/runs/mlm"],
            "config_toml": "shards = \"/home/a/electra-rs/experiments/x/work/shards\"\n",
            "elsewhere": "/data/glue/RTE/dev.tsv",
            "sibling": "/home/a/electra-rs-old/x",
        });
        let portable = json(&record, root);
        assert_eq!(portable["run_dir"], "experiments/x/work/runs/electra");
        assert_eq!(portable["validation"], "../shared/data/glue/CoLA/dev.tsv");
        assert_eq!(portable["steps"], 2000);
        assert_eq!(
            portable["notes"][0],
            "replaced by the run in experiments/x/work/runs/mlm"
        );
        assert_eq!(
            portable["config_toml"],
            "shards = \"experiments/x/work/shards\"\n"
        );
        assert_eq!(portable["elsewhere"], "/data/glue/RTE/dev.tsv");
        // Beside the root, not inside it: only the parent's prefix applies.
        assert_eq!(portable["sibling"], "../electra-rs-old/x");
        assert!(!portable.to_string().contains("/home/a"), "{portable}");
    }

    #[test]
    fn a_root_given_with_dots_is_resolved_first() {
        let root = Path::new("/home/a/electra-rs/xtask/..");
        assert_eq!(
            text("/home/a/electra-rs/experiments/x", root),
            "experiments/x"
        );
    }
}
