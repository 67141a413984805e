//! # electra-train: the pre-training loop
//!
//! This crate turns the CPU batches of `electra-data` into tensors on the chosen device, runs
//! the objective of `electra-objective`, and owns everything around the step: the reference
//! optimizer (Adam without bias correction, decoupled weight decay, global-norm clipping), the
//! learning-rate schedules, gradient accumulation, checkpoints written atomically and resumed
//! exactly, metrics a user can plot, and data-parallel training on several devices.
//!
//! Built so far: the optimizer ([`optim::ElectraAdam`]) and the learning-rate schedules with
//! layer-wise decay ([`schedule`]). The loop and checkpoints follow.

pub mod checkpoint;
pub mod config;
pub mod error;
pub mod export;
pub mod metrics;
pub mod optim;
pub mod pretrained;
pub mod schedule;
pub mod source;
pub mod trainer;

pub use error::TrainError;
pub use optim::{AdamConfig, ElectraAdam, StepStats};
pub use schedule::{LrSchedule, ScheduleKind, layerwise_lr_multiplier};
