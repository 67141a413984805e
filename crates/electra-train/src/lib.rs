//! # electra-train: the pre-training loop
//!
//! This crate turns the CPU batches of `electra-data` into tensors on the chosen device, runs
//! the objective of `electra-objective`, and owns everything around the step: the reference
//! optimizer (Adam without bias correction, decoupled weight decay, global-norm clipping), the
//! learning-rate schedules, gradient accumulation, checkpoints written atomically and resumed
//! exactly, metrics a user can plot, and data-parallel training on several devices.
//!
//! The pieces: [`config`] (the run's TOML config and presets), [`source`] (batches from shards
//! or the demo corpus), [`optim`] and [`schedule`] (the reference optimizer and learning
//! rates, with layer-wise decay for fine-tuning), [`trainer`] (the loop, its phases as
//! functions), [`observer`] (how the loop reports: progress, log lines, typed metrics), [`parallel`]
//! (data-parallel peers over burn's collective all-reduce), [`distributed`] (several
//! nodes: addresses, the coordinator, bounded waits), [`checkpoint`], [`metrics`] and
//! [`export`] (Hugging Face checkpoints of a run), [`pretrained`] (a run's newest discriminator,
//! for fine-tuning).

pub mod checkpoint;
pub mod config;
pub mod distributed;
pub mod error;
pub mod export;
pub mod metrics;
pub mod observer;
pub mod optim;
pub mod parallel;
pub mod pretrained;
pub mod schedule;
pub mod source;
pub mod trainer;

#[cfg(test)]
mod fuzzed_readers;

pub use error::TrainError;
pub use optim::{AdamConfig, ElectraAdam, StepStats};
pub use schedule::{LrSchedule, ScheduleKind, layerwise_lr_multiplier};
