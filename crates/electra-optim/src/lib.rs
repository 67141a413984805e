//! # electra-optim: how ELECTRA's weights move
//!
//! Pre-training and fine-tuning take the same optimizer steps: the reference Adam (BERT's
//! "AdamWeightDecay": no bias correction, ε outside the square root, decoupled weight decay
//! that spares biases and LayerNorm parameters by name, clipping at a *global* gradient norm)
//! under a learning-rate schedule (the reference's warmup-times-linear-decay and common
//! alternatives), with per-parameter multipliers for fine-tuning's layer-wise decay. This
//! crate is those three things and nothing else, so that `electra-train` (pre-training) and
//! `electra-eval` (fine-tuning) both build on it without depending on each other.
//!
//! [`adam`]: [`ElectraAdam`] and [`AdamConfig`], walking a burn module by parameter path;
//! [`schedule`]: [`LrSchedule`] and [`layerwise_lr_multiplier`].

pub mod adam;
pub mod error;
pub mod schedule;

pub use adam::{AdamConfig, ElectraAdam, StepStats, parameter_paths};
pub use error::OptimError;
pub use schedule::{LrSchedule, ScheduleKind, layerwise_lr_multiplier};
