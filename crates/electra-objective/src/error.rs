//! The error type of `electra-objective`.

use electra_model::ModelError;

/// Everything that can go wrong while configuring the objective or feeding it a batch.
#[derive(Debug, thiserror::Error)]
pub enum ObjectiveError {
    /// An [`crate::ObjectiveConfig`] field is out of range; `field` names it.
    #[error("invalid objective config: `{field}` {message}")]
    InvalidConfig {
        /// The offending field.
        field: &'static str,
        /// What is wrong with it.
        message: String,
    },

    /// A host batch is malformed (ragged, wrong lengths, ids out of range).
    #[error("invalid batch: {0}")]
    InvalidBatch(String),

    /// The underlying encoder configuration is unusable (e.g. a generator multiplier that
    /// leaves no hidden units).
    #[error(transparent)]
    Model(#[from] ModelError),
}
