//! # electra-train: the pre-training loop
//!
//! This crate turns the CPU batches of `electra-data` into tensors on the chosen device, runs
//! the objective of `electra-objective`, and owns everything around the step: the reference
//! optimizer (Adam without bias correction, decoupled weight decay, global-norm clipping), the
//! learning-rate schedules, gradient accumulation, checkpoints written atomically and resumed
//! exactly, metrics a user can plot, and data-parallel training on several devices.
//!
//! The pieces: [`source`] (batches from shards or the demo corpus), [`trainer`] (the loop,
//! its phases as functions), `step` (one optimizer step on one device, one function that
//! reads top to bottom), [`parallel`] (data parallelism, a layer around the step: rows split
//! across peers, whose gradients burn's collective all-reduces; the peers and the all-reduce
//! in `peers` and `reduce`), [`distributed`] and `exchange` (several nodes, a layer around
//! that: addresses, the coordinator, bounded waits, and what the nodes exchange), `run_dir`
//! (config.toml, resuming, checkpoints), `logging` and [`observer`] (metrics typed from the
//! step to the observer; [`metrics`] is `metrics.jsonl` and its plot) and [`export`] (Hugging
//! Face checkpoints of a run). One device on one node enters none of the parallel layers.
//! [`launch`] is the whole job as the `electra pretrain` command asks for it: the request
//! resolved into a config and a run directory, the run, and the run directory completed
//! (tokenizer, curves) with a printable report; [`progress`] draws its terminal progress bar.
//!
//! What fine-tuning needs as well lives in the crates below this one and is re-exported here
//! under its old paths: [`config`] (the run's TOML config and presets), [`checkpoint`] and
//! [`pretrained`] (a run's newest discriminator) from `electra-run`; [`optim`] and
//! [`schedule`] (the reference optimizer and learning rates, with layer-wise decay for
//! fine-tuning) from `electra-optim`.

pub mod distributed;
pub mod error;
mod exchange;
pub mod export;
pub mod launch;
mod logging;
pub mod metrics;
pub mod observer;
pub mod parallel;
mod peers;
pub mod progress;
mod reduce;
mod report;
mod run_dir;
pub mod source;
mod step;
pub mod trainer;

pub use electra_optim::{adam as optim, schedule};
pub use electra_run::{checkpoint, config, init, pretrained};

#[cfg(test)]
mod fuzzed_readers;

pub use error::TrainError;
pub use optim::{AdamConfig, ElectraAdam, StepStats};
pub use schedule::{LrSchedule, ScheduleKind, layerwise_lr_multiplier};
