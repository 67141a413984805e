//! # electra-eval: GLUE
//!
//! This crate evaluates a pre-trained discriminator the way the paper does (spec sections 5
//! and 6). It reads the nine GLUE tasks and the AX diagnostic in the standard `glue_data`
//! layout ([`task`], [`data`]), turns examples into `[CLS] A [SEP] B [SEP]` token ids with the
//! model's WordPiece tokenizer ([`features`]), fine-tunes a dropout + linear head on the final
//! `[CLS]` state with the reference optimizer, schedule and layer-wise learning-rate decay
//! ([`model`], [`finetune`]), computes each task's official metrics and the GLUE averages
//! ([`metrics`]), and writes result tables over several seeds and GLUE test-server prediction
//! files ([`report`]). [`glue`] runs all of it over tasks and seeds and returns the report;
//! every per-task fact (folders, files, columns, labels, metrics, recipe, submission files,
//! extra evaluation splits) is one [`task::TaskSpec`] entry.
//!
//! The optimizer (`ElectraAdam`), the learning-rate schedule and the layer-wise multipliers
//! come from `electra-train`; the encoder and the Hugging Face loaders from `electra-model`;
//! the tokenizer from `electra-data`. Nothing here picks a device: the CLI does.

pub mod data;
pub mod error;
pub mod features;
pub mod finetune;
pub mod glue;
pub mod metrics;
pub mod model;
pub mod pretrained;
pub mod report;
pub mod task;

#[cfg(test)]
mod fuzzed_readers;

pub use error::EvalError;
pub use task::{Metric, Split, Task, TaskSpec};
