//! # electra-run: a pre-training run on disk
//!
//! A run directory is where pre-training leaves its work and where everything after it starts
//! from: `config.toml` (the resolved [`config::RunConfig`]: model, objective, loop,
//! optimizer, schedule and data, built from a preset, a TOML file and `--set` overrides) and
//! `checkpoints/step-N/` (model and optimizer tensors and the loop's state, written
//! atomically). [`checkpoint`] writes and reads them; [`pretrained`] loads the newest intact
//! checkpoint and takes out the discriminator-sized encoder that export and fine-tuning use;
//! [`init`] starts a run from a released Hugging Face generator and discriminator.
//!
//! `electra-train` writes runs with this crate; `electra-eval` reads them with it, so that
//! fine-tuning does not depend on the pre-training loop (its collective, async runtime and
//! plotting).

pub mod checkpoint;
pub mod config;
pub mod error;
pub mod init;
pub mod memory;
pub mod pretrained;

#[cfg(test)]
mod fuzzed_readers;

pub use error::RunError;
