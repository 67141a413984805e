//! The error type of `electra-optim`.

/// A hyper-parameter out of range.
#[derive(Debug, thiserror::Error)]
pub enum OptimError {
    /// A configuration value is out of range; the message names the key.
    #[error("invalid training config: {0}")]
    InvalidConfig(String),
}
