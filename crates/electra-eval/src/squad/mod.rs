//! SQuAD 1.1 and 2.0: span-extraction fine-tuning as the reference does it
//! (google-research/electra `finetune/qa/`), and the official metrics.
//!
//! - [`data`]: the official JSON, read without loss, with errors naming the file and question;
//! - [`features`]: tokens with offsets, windows (doc stride), max context, labels;
//! - [`model`]: the reference's joint head and HF's `ElectraForQuestionAnswering` head;
//! - [`finetune`]: the recipe, one model's training ([`finetune::SquadTuner`]), inference in
//!   length-sorted batches, evaluation;
//! - [`generated`]: a span-extraction task generated from text (the learnability test);
//! - [`hf`]: question-answering checkpoints (HF's `ElectraForQuestionAnswering` and ours);
//! - [`postprocess`]: n-best answers, max answer length, 2.0's no-answer score;
//! - [`predict`]: `electra squad predict` (a user's questions, JSON in, JSON out);
//! - [`run`]: `electra squad`: several seeds, resumable, medians, the best seed's files;
//! - [`metrics`]: exact match and F1 exactly as the official v1.1 and v2.0 scripts define
//!   them, no-answer thresholds, `electra squad score`.

pub mod data;
pub mod features;
pub mod finetune;
pub mod generated;
pub mod hf;
pub mod job;
pub mod metrics;
pub mod model;
pub mod postprocess;
pub mod predict;
pub mod run;

#[cfg(test)]
mod fuzzed_readers;

pub use data::{SquadFile, Version};
