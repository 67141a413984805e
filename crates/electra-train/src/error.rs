//! The error type of `electra-train`.

use std::path::PathBuf;

/// Everything that can go wrong while configuring or running training.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    /// A configuration value is out of range; the message names the key.
    #[error("invalid training config: {0}")]
    InvalidConfig(String),

    /// A file could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },

    /// A checkpoint file is unreadable or does not fit.
    #[error("{}: {message}", path.display())]
    Checkpoint {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },

    /// A model error (config, checkpoint tensors).
    #[error(transparent)]
    Model(#[from] electra_model::ModelError),
}
