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
    /// An error on `path`. A full disk is rewritten to name the path and the free space
    /// ([`explain_out_of_space`](crate::explain_out_of_space)).
    pub fn new(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        let path = path.into();
        let source = crate::space::explain_out_of_space(&path, source, None);
        Self { path, source }
    }

    /// This error, if it is a full disk, with the bytes the write needed added to its message.
    pub fn needing(self, bytes: u64) -> Self {
        let source = crate::space::explain_out_of_space(&self.path, self.source, Some(bytes));
        Self {
            path: self.path,
            source,
        }
    }
}

/// `map_err` adapter naming `path`.
pub(crate) fn at(path: &std::path::Path) -> impl FnOnce(std::io::Error) -> FsError + '_ {
    move |source| FsError::new(path, source)
}
