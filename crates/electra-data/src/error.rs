//! The one error type of the crate.
//!
//! Every variant names the file (or the setting) it is about and says what was expected, so
//! that the CLI can print it as is.

use std::path::PathBuf;

/// Everything that can go wrong between a corpus file and a batch.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// An operating-system error while reading or writing `path`.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A text file is not valid UTF-8 (use `--lossy` to replace bad bytes with U+FFFD).
    #[error(
        "{path}: invalid UTF-8 at byte offset {offset} (line {line}; offsets count decompressed \
         bytes for .gz files); pass --lossy to replace invalid bytes"
    )]
    InvalidUtf8 {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: u64,
        /// 0-based byte offset of the first invalid byte.
        offset: u64,
    },
    /// A file does not have the format or content expected.
    #[error("{path}: {message}")]
    Format {
        /// The file.
        path: PathBuf,
        /// What was found and what was expected.
        message: String,
    },
    /// A tokenizer file cannot be loaded or lacks what ELECTRA needs.
    #[error("tokenizer {path}: {message}")]
    Tokenizer {
        /// The tokenizer file (or `<demo>` / `<memory>`).
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// A Parquet shard is truncated, corrupt, foreign or does not match its manifest.
    #[error("shard {path}: {message}")]
    Shard {
        /// The shard file.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// The manifest is missing, unreadable, or does not fit this run.
    #[error("manifest {path}: {message}")]
    Manifest {
        /// The manifest file.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// The inputs resolved to nothing, or to files with no text.
    #[error("empty corpus: {0}")]
    EmptyCorpus(String),
    /// A setting is out of range (names the setting and the accepted range).
    #[error("invalid setting {name}: {message}")]
    Config {
        /// The setting (as the CLI flag or config key).
        name: &'static str,
        /// What was given and what is accepted.
        message: String,
    },
    /// The output directory already holds work that would be replaced or left stale.
    #[error(
        "{dir} already holds a shard set ({found}); pass --overwrite to replace the whole set, \
         or choose another --out"
    )]
    OutputExists {
        /// The output directory.
        dir: PathBuf,
        /// What was found there (a few file names).
        found: String,
    },
    /// Another process is building into the same output directory (or the same slice of it).
    #[error(transparent)]
    Locked(#[from] electra_fs::LockError),
    /// The background prefetch thread stopped unexpectedly.
    #[error("data loader thread stopped: {0}")]
    Loader(String),
}

impl From<electra_fs::FsError> for DataError {
    fn from(e: electra_fs::FsError) -> Self {
        Self::Io {
            path: e.path,
            source: e.source,
        }
    }
}

/// The crate's result type.
pub type Result<T, E = DataError> = std::result::Result<T, E>;

impl DataError {
    /// Wraps an I/O error with the path it concerns.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        // A full disk names the free space (electra-fs).
        electra_fs::FsError::new(path, source).into()
    }

    /// A format error about `path`.
    pub fn format(path: impl Into<PathBuf>, message: impl Into<String>) -> Self {
        Self::Format {
            path: path.into(),
            message: message.into(),
        }
    }

    /// A shard error about `path`.
    pub fn shard(path: impl Into<PathBuf>, message: impl Into<String>) -> Self {
        Self::Shard {
            path: path.into(),
            message: message.into(),
        }
    }

    /// A manifest error about `path`.
    pub fn manifest(path: impl Into<PathBuf>, message: impl Into<String>) -> Self {
        Self::Manifest {
            path: path.into(),
            message: message.into(),
        }
    }

    /// A tokenizer error about `path`.
    pub fn tokenizer(path: impl Into<PathBuf>, message: impl Into<String>) -> Self {
        Self::Tokenizer {
            path: path.into(),
            message: message.into(),
        }
    }
}
