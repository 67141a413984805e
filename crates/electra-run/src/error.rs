//! The error type of `electra-run`.

use std::path::PathBuf;

/// What can go wrong reading or writing a run's config and checkpoints. `electra-train`'s
/// `TrainError` takes each variant over unchanged (same message), so a pre-training run
/// reports these errors as it did before they had a crate of their own.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
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

    /// A data error (the demo preset's tokenizer).
    #[error(transparent)]
    Data(#[from] electra_data::DataError),

    /// An objective error (config).
    #[error(transparent)]
    Objective(#[from] electra_objective::ObjectiveError),

    /// A model error (config, checkpoint tensors).
    #[error(transparent)]
    Model(#[from] electra_model::ModelError),
}

impl From<electra_optim::OptimError> for RunError {
    fn from(e: electra_optim::OptimError) -> Self {
        match e {
            electra_optim::OptimError::InvalidConfig(message) => Self::InvalidConfig(message),
        }
    }
}

impl From<electra_fs::FsError> for RunError {
    fn from(e: electra_fs::FsError) -> Self {
        Self::Io {
            path: e.path,
            source: e.source,
        }
    }
}
