//! The one error of this crate: an I/O failure and the path it concerns.

use std::path::PathBuf;

/// An I/O error on `path` (the file or directory being written, not its temporary name,
/// unless the temporary itself failed).
#[derive(Debug, thiserror::Error)]
#[error("{}: {source}", path.display())]
pub struct FsError {
    /// The file or directory.
    pub path: PathBuf,
    /// The underlying error.
    #[source]
    pub source: std::io::Error,
}

impl FsError {
    /// An error on `path`.
    pub fn new(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self {
            path: path.into(),
            source,
        }
    }
}

/// `map_err` adapter naming `path`.
pub(crate) fn at(path: &std::path::Path) -> impl FnOnce(std::io::Error) -> FsError + '_ {
    move |source| FsError::new(path, source)
}
