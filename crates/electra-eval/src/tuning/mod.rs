//! The task-agnostic fine-tuning core: what every task family (GLUE, SQuAD, and the next one)
//! shares.
//!
//! - [`pretrained`]: where fine-tuning starts: the encoder and tokenizer of an HF directory or
//!   an `electra pretrain` run directory (any objective), or a random-init baseline;
//! - [`recipe`]: paper Table 7's learning rate and layer-wise decay by model size, the
//!   resolved [`recipe::Recipe`], and the per-parameter multipliers;
//! - [`optimizer`]: one update (backward, reference Adam with the multipliers);
//! - [`epochs`]: the seeded epoch loop under the reference schedule, with progress callbacks;
//! - [`batching`]: inference batches sorted by length, and how much padding a batching costs;
//! - [`stats`]: medians and spreads over seeds;
//! - [`seeds`]: per-seed results kept on disk, so a multi-seed run can be resumed;
//! - [`job`]: what every fine-tuning command does around the training: where it starts
//!   ([`job::Start`]: checkpoint and seeds), its output directory, its results files;
//! - [`bars`]: the commands' terminal progress and per-step `metrics.jsonl` lines.
//!
//! A task family brings its data reader, features, head, loss, metrics and report, and calls
//! these.

pub mod bars;
pub mod batching;
pub mod epochs;
pub mod job;
pub mod optimizer;
pub mod pretrained;
pub mod recipe;
pub mod seeds;
pub mod stats;
