//! The rule every command that writes into an output directory follows: existing work is
//! never replaced silently. [`Outputs::find`] lists what the directory already holds of what
//! the command writes; [`Outputs::refuse_unless`] turns a non-empty list into an
//! [`OutputExists`] error naming the directory, what is there and `--overwrite`; with
//! `--overwrite` the caller writes the new set into a [`staging_in`] directory and, once it is
//! complete, [`Outputs::remove`]s the whole earlier set before moving the new one into place,
//! so nothing stale stays beside it.

use std::path::{Path, PathBuf};

use crate::error::{FsError, at};
use crate::staging::StagingDir;

/// An output directory that already holds work of the kind a command writes.
#[derive(Debug, thiserror::Error)]
#[error(
    "{} already holds {what} ({found}); pass --overwrite to replace it, or choose another --out",
    dir.display()
)]
pub struct OutputExists {
    /// The output directory.
    pub dir: PathBuf,
    /// What the command writes (`GLUE results`, `an export`, ...).
    pub what: String,
    /// A few of the names found ([`Outputs::summary`]).
    pub found: String,
}

/// The entries of an output directory that a command would replace.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Outputs {
    dir: PathBuf,
    found: Vec<PathBuf>,
}

impl Outputs {
    /// The entries of `dir` among `names`, in the order of `names` (none if `dir` does not
    /// exist).
    pub fn find(dir: &Path, names: &[&str]) -> Self {
        let found = names
            .iter()
            .map(|n| dir.join(n))
            .filter(|p| std::fs::symlink_metadata(p).is_ok())
            .collect();
        Self::from_paths(dir, found)
    }

    /// Entries found by the caller's own rule (a shard set, say).
    pub fn from_paths(dir: &Path, found: Vec<PathBuf>) -> Self {
        Self {
            dir: dir.to_path_buf(),
            found,
        }
    }

    /// Whether the directory holds none of them.
    pub fn is_empty(&self) -> bool {
        self.found.is_empty()
    }

    /// The entries found.
    pub fn paths(&self) -> &[PathBuf] {
        &self.found
    }

    /// Up to three of the names found, and how many more.
    pub fn summary(&self) -> String {
        let names: Vec<String> = self
            .found
            .iter()
            .take(3)
            .filter_map(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
            .collect();
        match self.found.len().saturating_sub(names.len()) {
            0 => names.join(", "),
            more => format!("{} and {more} more", names.join(", ")),
        }
    }

    /// Without `overwrite`, any entry found is an [`OutputExists`] naming `what` the command
    /// writes; with it, the entries are returned for the caller to [`remove`](Self::remove).
    pub fn refuse_unless(self, overwrite: bool, what: &str) -> Result<Self, OutputExists> {
        if self.is_empty() || overwrite {
            return Ok(self);
        }
        Err(OutputExists {
            dir: self.dir.clone(),
            what: what.to_string(),
            found: self.summary(),
        })
    }

    /// Removes every entry found (the earlier set being replaced).
    pub fn remove(&self) -> Result<(), FsError> {
        self.found.iter().try_for_each(|p| remove_entry(p))
    }
}

/// Removes a file, a link or a directory tree, naming it in the error.
pub fn remove_entry(path: &Path) -> Result<(), FsError> {
    let meta = std::fs::symlink_metadata(path).map_err(at(path))?;
    if meta.is_dir() {
        std::fs::remove_dir_all(path)
    } else {
        std::fs::remove_file(path)
    }
    .map_err(at(path))
}

/// A hidden staging directory `.COMMAND-PID.tmp` inside `dir` (created with its parents), for
/// output moved into place once complete: the same filesystem, so the moves are renames.
pub fn staging_in(dir: &Path, command: &str) -> Result<StagingDir, FsError> {
    StagingDir::create(dir.join(format!(".{command}-{}.tmp", std::process::id())))
}

/// Lower-case hex of bytes (digests in manifests and records).
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn existing_work_is_refused_naming_it_and_replaced_only_on_request() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path();
        assert!(Outputs::find(&dir.join("absent"), &["a"]).is_empty());
        std::fs::write(dir.join("results.md"), "old").expect("write");
        std::fs::create_dir(dir.join("predictions")).expect("mkdir");
        std::fs::write(dir.join("predictions/RTE.tsv"), "old").expect("write");
        let names = ["results.md", "results.json", "predictions"];
        let err = Outputs::find(dir, &names)
            .refuse_unless(false, "GLUE results")
            .expect_err("refused");
        let text = err.to_string();
        assert!(
            text.contains("already holds GLUE results (results.md, predictions)")
                && text.contains("--overwrite"),
            "{text}"
        );
        let found = Outputs::find(dir, &names)
            .refuse_unless(true, "GLUE results")
            .expect("overwrite");
        assert_eq!(found.paths().len(), 2);
        found.remove().expect("remove");
        assert!(Outputs::find(dir, &names).is_empty());
    }

    #[test]
    fn a_summary_names_three_and_counts_the_rest() {
        let paths = (0..5).map(|i| PathBuf::from(format!("d/s-{i}"))).collect();
        let outputs = Outputs::from_paths(Path::new("d"), paths);
        assert_eq!(outputs.summary(), "s-0, s-1, s-2 and 2 more");
    }

    #[test]
    fn hex_is_lower_case_two_digits_per_byte() {
        assert_eq!(hex(&[0x00, 0x0f, 0xab, 0xff]), "000fabff");
    }
}
