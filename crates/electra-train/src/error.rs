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

    /// The loss became NaN or infinite; the run stopped without checkpointing that state.
    #[error(
        "the loss is not finite ({loss}) at step {step}; stopped. The last good checkpoint is {}",
        checkpoint.as_ref().map_or("none (no checkpoint was written yet)".to_string(), |p| p.display().to_string())
    )]
    NonFinite {
        /// The step whose loss was not finite.
        step: u64,
        /// The loss value.
        loss: f64,
        /// The newest checkpoint, kept as it was.
        checkpoint: Option<PathBuf>,
    },

    /// Data-parallel training failed: a peer stopped, or the collective refused an operation.
    #[error("data-parallel training: {0}")]
    Collective(String),

    /// A multi-node setup is invalid or cannot start (bad rank or address, unreachable
    /// coordinator, nodes that disagree); the message names what and what was expected.
    #[error("multi-node training: {0}")]
    Distributed(String),

    /// A pre-training request cannot start: a run directory that is not one, or that already
    /// holds a run, an environment variable that cannot be read; the message says what to do.
    #[error("{0}")]
    Request(String),

    /// An output directory already holds what would be written (and no overwrite was asked).
    #[error(transparent)]
    OutputExists(#[from] electra_fs::OutputExists),

    /// Another process is writing the run directory (see [`electra_fs::DirLock`]).
    #[error(transparent)]
    Locked(#[from] electra_fs::LockError),

    /// A data error (corpus, tokenizer, shards).
    #[error(transparent)]
    Data(#[from] electra_data::DataError),

    /// An objective error (config, batch).
    #[error(transparent)]
    Objective(#[from] electra_objective::ObjectiveError),

    /// A model error (config, checkpoint tensors).
    #[error(transparent)]
    Model(#[from] electra_model::ModelError),
}

impl From<electra_fs::FsError> for TrainError {
    fn from(e: electra_fs::FsError) -> Self {
        Self::Io {
            path: e.path,
            source: e.source,
        }
    }
}

/// A run directory's errors keep their variant and message.
impl From<electra_run::RunError> for TrainError {
    fn from(e: electra_run::RunError) -> Self {
        use electra_run::RunError as R;
        match e {
            R::InvalidConfig(message) => Self::InvalidConfig(message),
            R::Io { path, source } => Self::Io { path, source },
            R::Checkpoint { path, message } => Self::Checkpoint { path, message },
            R::Data(e) => Self::Data(e),
            R::Objective(e) => Self::Objective(e),
            R::Model(e) => Self::Model(e),
        }
    }
}

impl From<electra_optim::OptimError> for TrainError {
    fn from(e: electra_optim::OptimError) -> Self {
        match e {
            electra_optim::OptimError::InvalidConfig(message) => Self::InvalidConfig(message),
        }
    }
}
