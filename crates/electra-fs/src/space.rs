//! A full disk: the error a write gets when its filesystem is full (`ENOSPC`, or a quota's
//! `EDQUOT`) rewritten to say where, how much space is free there and, when the writer knows,
//! how much the write needed.
//!
//! Every [`FsError`](crate::FsError) goes through [`explain_out_of_space`]
//! ([`FsError::new`](crate::FsError::new), [`FsError::needing`](crate::FsError::needing)); the
//! crates that meet I/O errors outside electra-fs's writers (the data and eval libraries'
//! `io` constructors, a checkpoint's tensors, the metrics log, HF exports) build an `FsError`
//! for them and convert it, so there is one path. The rewritten error keeps its [`std::io::ErrorKind`], so callers
//! that match on `StorageFull` still can, and [`is_out_of_space`] still recognises it.

use std::fmt;
use std::io::{Error, ErrorKind};
use std::path::{Path, PathBuf};

/// Whether `e` is a full filesystem or an exhausted disk quota.
pub fn is_out_of_space(e: &Error) -> bool {
    matches!(e.kind(), ErrorKind::StorageFull | ErrorKind::QuotaExceeded)
        // ENOSPC, EDQUOT on Linux (for errors built from raw codes by other libraries).
        || matches!(e.raw_os_error(), Some(28 | 122))
}

/// The bytes an unprivileged process may still write on the filesystem holding `path` (the
/// nearest existing ancestor if `path` does not exist yet); `None` where this cannot be
/// asked (not Unix, or `statvfs` failed).
pub fn free_bytes(path: &Path) -> Option<u64> {
    #[cfg(unix)]
    {
        let existing = path
            .ancestors()
            .find(|p| !p.as_os_str().is_empty() && std::fs::symlink_metadata(p).is_ok());
        let stat = rustix::fs::statvfs(existing.unwrap_or(Path::new("."))).ok()?;
        Some(stat.f_bavail.saturating_mul(stat.f_frsize))
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        None
    }
}

/// A size for people: `1.5 MiB (1572864 bytes)`.
pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    if bytes < 1024 {
        return format!("{bytes} bytes");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {} ({bytes} bytes)", UNITS[unit])
}

/// The payload of a rewritten full-disk error: see [`explain_out_of_space`].
#[derive(Debug)]
pub struct OutOfSpace {
    /// The file or directory being written.
    pub path: PathBuf,
    /// Free bytes on its filesystem after the failure, when known.
    pub free: Option<u64>,
    /// Bytes the write needed, when the writer knows.
    pub needed: Option<u64>,
    /// The operating system's error.
    pub cause: Error,
}

impl fmt::Display for OutOfSpace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The path is named by the error that carries this one (`PATH: ...`).
        write!(f, "{}", self.cause)?;
        match self.free {
            Some(free) => write!(f, ": {} free on its filesystem", human_bytes(free))?,
            None => write!(f, ": the free space of its filesystem is unknown")?,
        }
        if let Some(needed) = self.needed {
            write!(f, ", about {} needed", human_bytes(needed))?;
        }
        write!(f, "; free some space and run the command again")
    }
}

impl std::error::Error for OutOfSpace {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.cause)
    }
}

/// `e` unchanged unless it is a full disk ([`is_out_of_space`]); then an error of the same
/// kind whose message names `path`, the free space of its filesystem and, if given, the
/// bytes `needed`. An error rewritten before keeps its path and gains `needed` (if it had
/// none).
pub fn explain_out_of_space(path: &Path, e: Error, needed: Option<u64>) -> Error {
    if !is_out_of_space(&e) {
        return e;
    }
    let kind = e.kind();
    if !e.get_ref().is_some_and(|inner| inner.is::<OutOfSpace>()) {
        return Error::new(
            kind,
            OutOfSpace {
                path: path.to_path_buf(),
                free: free_bytes(path),
                needed,
                cause: e,
            },
        );
    }
    match e.into_inner().map(|inner| inner.downcast::<OutOfSpace>()) {
        Some(Ok(mut known)) => {
            known.needed = known.needed.or(needed);
            Error::new(kind, *known)
        }
        // Not reached: the payload was checked above.
        Some(Err(other)) => Error::new(kind, other),
        None => Error::from(kind),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_disk_error_names_the_path_the_free_space_and_the_need() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("model.safetensors");
        let e = explain_out_of_space(&path, Error::from_raw_os_error(28), None);
        assert_eq!(e.kind(), ErrorKind::StorageFull);
        assert!(is_out_of_space(&e));
        let text = e.to_string();
        assert!(text.contains("No space left on device"), "{text}");
        assert!(text.contains("free on its filesystem"), "{text}");
        let inner = e.get_ref().and_then(|i| i.downcast_ref::<OutOfSpace>());
        assert_eq!(inner.map(|o| o.path.as_path()), Some(path.as_path()));
        assert!(!text.contains("needed"), "{text}");
        // Rewritten again with the need: the path stays, the need is added.
        let e = explain_out_of_space(Path::new("elsewhere"), e, Some(3 << 20));
        let text = e.to_string();
        let inner = e.get_ref().and_then(|i| i.downcast_ref::<OutOfSpace>());
        assert_eq!(inner.map(|o| o.path.as_path()), Some(path.as_path()));
        assert!(
            text.contains("about 3.0 MiB (3145728 bytes) needed"),
            "{text}"
        );
    }

    #[test]
    fn other_errors_pass_unchanged() {
        let e = explain_out_of_space(
            Path::new("x"),
            Error::from(ErrorKind::PermissionDenied),
            Some(1),
        );
        assert_eq!(e.kind(), ErrorKind::PermissionDenied);
        assert!(e.get_ref().is_none());
    }

    #[test]
    fn sizes_read_for_people() {
        assert_eq!(human_bytes(512), "512 bytes");
        assert_eq!(human_bytes(1536), "1.5 KiB (1536 bytes)");
        assert_eq!(human_bytes(5 << 30), "5.0 GiB (5368709120 bytes)");
    }

    #[cfg(unix)]
    #[test]
    fn free_space_is_asked_of_the_nearest_existing_ancestor() {
        let dir = tempfile::tempdir().expect("tempdir");
        let free = free_bytes(&dir.path().join("not/yet/there"));
        assert!(free.is_some_and(|b| b > 0), "{free:?}");
    }
}
