//! Writing files so that a crash never leaves a half-written one behind.

use std::path::{Path, PathBuf};

use crate::error::ModelError;

/// The temporary sibling `path` is first written to: `.NAME.tmp` in the same directory, so the
/// final rename stays on one filesystem and is atomic.
pub fn temp_path(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.tmp"))
}

/// Writes `bytes` to `path` atomically: to [`temp_path`] first, then renamed over `path`.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), ModelError> {
    let tmp = temp_path(path);
    std::fs::write(&tmp, bytes).map_err(|source| ModelError::Io {
        path: tmp.clone(),
        source,
    })?;
    rename(&tmp, path)
}

/// Renames `from` to `to`, with an error naming the destination.
pub fn rename(from: &Path, to: &Path) -> Result<(), ModelError> {
    std::fs::rename(from, to).map_err(|source| ModelError::Io {
        path: to.to_path_buf(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_atomic_replaces_the_file_and_leaves_no_temp() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("out.json");
        write_atomic(&path, b"one").expect("first");
        write_atomic(&path, b"two").expect("second");
        assert_eq!(std::fs::read(&path).expect("read"), b"two");
        assert!(!temp_path(&path).exists());
        let err = write_atomic(&dir.path().join("missing/dir/x"), b"").expect_err("no dir");
        assert!(err.to_string().contains("missing/dir"), "{err}");
    }
}
