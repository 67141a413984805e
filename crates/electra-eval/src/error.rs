//! The error type of `electra-eval`.

use std::path::PathBuf;

/// Everything that can go wrong between a GLUE folder and a results table.
#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    /// A file or directory could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },

    /// A row of a TSV file does not have the expected layout.
    #[error("{}:{line}: {message}", path.display())]
    Format {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What was found and what was expected.
        message: String,
    },

    /// A SQuAD file does not have the official layout or holds an inconsistent question.
    #[error("{}: {at}: {message}", path.display())]
    Squad {
        /// The file.
        path: PathBuf,
        /// Where: the question id (when there is one) and the JSON path.
        at: String,
        /// What was found and what was expected.
        message: String,
    },

    /// A task name that is not one of the GLUE tasks.
    #[error("unknown GLUE task `{0}`: expected one of {names}", names = crate::task::Task::names())]
    UnknownTask(String),

    /// The GLUE directory has no folder (or file) for a task.
    #[error(
        "{task}: no {what} in {} (expected the glue_data layout: {}/{folder}/{what})",
        dir.display(), dir.display()
    )]
    Missing {
        /// The task's name.
        task: String,
        /// The GLUE directory.
        dir: PathBuf,
        /// The folder expected for the task.
        folder: String,
        /// The file or folder that is missing.
        what: String,
    },

    /// A configuration value or argument is out of range; the message names it.
    #[error("invalid fine-tuning config: {0}")]
    InvalidConfig(String),

    /// Predictions and gold labels do not fit together.
    #[error("{0}")]
    Mismatch(String),

    /// A tokenizer error.
    #[error(transparent)]
    Data(#[from] electra_data::DataError),

    /// A model or HF checkpoint error.
    #[error(transparent)]
    Model(#[from] electra_model::ModelError),

    /// A run directory's error (its config or checkpoints).
    #[error(transparent)]
    Run(#[from] electra_run::RunError),
}

impl EvalError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        // A full disk names the free space (electra-fs).
        electra_fs::FsError::new(path, source).into()
    }

    pub(crate) fn format(
        path: impl Into<PathBuf>,
        line: usize,
        message: impl Into<String>,
    ) -> Self {
        Self::Format {
            path: path.into(),
            line,
            message: message.into(),
        }
    }
}

/// The text of `path`; invalid UTF-8 is an error naming the file, the line and the byte.
pub(crate) fn read_utf8(path: &std::path::Path) -> Result<String, EvalError> {
    let bytes = std::fs::read(path).map_err(|e| EvalError::io(path, e))?;
    String::from_utf8(bytes).map_err(|e| {
        let offset = e.utf8_error().valid_up_to();
        let line = e.as_bytes()[..offset]
            .iter()
            .filter(|&&b| b == b'\n')
            .count()
            + 1;
        EvalError::format(path, line, format!("invalid UTF-8 at byte {offset}"))
    })
}

impl From<electra_fs::OutputExists> for EvalError {
    fn from(e: electra_fs::OutputExists) -> Self {
        Self::Mismatch(e.to_string())
    }
}

impl From<electra_fs::FsError> for EvalError {
    fn from(e: electra_fs::FsError) -> Self {
        Self::Io {
            path: e.path,
            source: e.source,
        }
    }
}

impl From<electra_optim::OptimError> for EvalError {
    fn from(e: electra_optim::OptimError) -> Self {
        match e {
            electra_optim::OptimError::InvalidConfig(message) => Self::InvalidConfig(message),
        }
    }
}
