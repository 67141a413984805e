//! The rule every command that writes an output directory follows: existing work is never
//! replaced silently. A directory that already holds what the command writes is refused,
//! naming the directory, what is there and the `--overwrite` flag; with `--overwrite` the
//! whole earlier set is replaced, so nothing stale remains beside the new output.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

/// The entries of `dir` among `names` (the files and folders the command writes), in the
/// order of `names`. Without `overwrite`, any of them is an error that names `dir`, what was
/// found and `--overwrite`; with it, they are returned for the caller to replace.
pub fn check(
    dir: &Path,
    names: &[&str],
    what: &str,
    overwrite: bool,
) -> anyhow::Result<Vec<PathBuf>> {
    let found: Vec<PathBuf> = names
        .iter()
        .map(|n| dir.join(n))
        .filter(|p| p.exists())
        .collect();
    if !found.is_empty() && !overwrite {
        let listed: Vec<String> = found
            .iter()
            .filter_map(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
            .collect();
        bail!(
            "{} already holds {what} ({}); pass --overwrite to replace it, or choose another --out",
            dir.display(),
            listed.join(", ")
        );
    }
    Ok(found)
}

/// Removes a file or a directory tree, naming it in the error.
pub fn remove(path: &Path) -> anyhow::Result<()> {
    let removed = if path.is_dir() {
        std::fs::remove_dir_all(path)
    } else {
        std::fs::remove_file(path)
    };
    removed.with_context(|| format!("cannot remove {}", path.display()))
}

/// A hidden staging directory inside `dir` for output that is moved into place once
/// complete (same filesystem, so the moves are renames); it removes itself when dropped.
pub fn staging(dir: &Path, command: &str) -> anyhow::Result<electra_fs::StagingDir> {
    let path = dir.join(format!(".{command}-{}.tmp", std::process::id()));
    electra_fs::StagingDir::create(&path)
        .with_context(|| format!("cannot create {}", path.display()))
}
