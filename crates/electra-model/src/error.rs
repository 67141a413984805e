//! The error type of `electra-model`.

use std::path::PathBuf;

/// Everything that can go wrong while configuring, loading or saving a model.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// A configuration value is out of range; the message names the field.
    #[error("invalid model config: {0}")]
    InvalidConfig(String),

    /// A model (or a training run) needs more memory than this machine has; refused before
    /// anything is allocated (see [`crate::memory`]). Boxed: it is rare and large.
    #[error("{0}")]
    OutOfMemory(Box<crate::memory::MemoryShortage>),

    /// A preset name that does not exist.
    #[error("unknown model preset `{name}` (known presets: {known})")]
    UnknownPreset {
        /// The name that was asked for.
        name: String,
        /// The names that exist.
        known: String,
    },

    /// A configuration file could not be parsed or holds unusable values.
    #[error("{}: {message}", path.display())]
    Config {
        /// The file.
        path: PathBuf,
        /// What is wrong, naming the key.
        message: String,
    },

    /// A file could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },

    /// A checkpoint directory holds no weights file we can read.
    #[error("{}: no weights file found (looked for {looked_for})", dir.display())]
    NoWeights {
        /// The checkpoint directory.
        dir: PathBuf,
        /// The file names that were tried.
        looked_for: String,
    },

    /// A weights file could not be decoded.
    #[error("{}: cannot read weights: {message}", path.display())]
    Weights {
        /// The file.
        path: PathBuf,
        /// The reader's message.
        message: String,
    },

    /// Tensors of a checkpoint did not fit the model: every problem is listed.
    #[error("{}: checkpoint does not match the {architecture} model:\n{}", path.display(), problems.join("\n"))]
    Mismatch {
        /// The weights file.
        path: PathBuf,
        /// The model class being loaded (e.g. `ElectraForPreTraining`).
        architecture: String,
        /// One line per missing, unexpected or mis-shaped tensor.
        problems: Vec<String>,
    },

    /// A batch does not fit the model (ragged rows, ids out of range, too long).
    #[error("invalid input: {0}")]
    InvalidInput(String),
}

impl From<electra_fs::FsError> for ModelError {
    fn from(e: electra_fs::FsError) -> Self {
        Self::Io {
            path: e.path,
            source: e.source,
        }
    }
}
