//! # electra-eval: fine-tuning (GLUE, SQuAD)
//!
//! This crate evaluates a pre-trained discriminator the way the paper does (spec sections 5
//! and 6): it fine-tunes the encoder with a task head and scores it with each benchmark's
//! official metrics, over several seeds.
//!
//! [`tuning`] is the task-agnostic core every task family uses: loading the pre-trained
//! encoder and tokenizer (an HF directory or an `electra pretrain` run), the recipe of paper
//! Table 7 (learning rate by size, layer-wise decay), one optimizer update, the seeded epoch
//! loop under the reference schedule, length-sorted inference batches, summaries over seeds
//! and per-seed results kept on disk. Beside it, one folder per task family:
//!
//! - [`glue`]: the nine GLUE tasks and AX: TSV readers, `[CLS] A [SEP] B [SEP]` features, a
//!   dropout + linear head on `[CLS]`, the official metrics and GLUE averages, result tables
//!   and test-server prediction files;
//! - [`squad`]: SQuAD 1.1 and 2.0: the official JSON, windows over long contexts, the
//!   reference's question-answering head (and Hugging Face's), post-processing to answer
//!   texts, the official EM/F1 and no-answer thresholds, `predictions.json` and
//!   `null_odds.json`.
//!
//! The optimizer and schedules come from `electra-optim`, run directories from `electra-run`,
//! the encoder and the Hugging Face loaders from `electra-model`, the tokenizer from
//! `electra-data`; nothing here depends on the pre-training loop (`electra-train`). Nothing
//! here picks a device: the CLI does. GLUE's modules are also reachable at their old paths
//! (`electra_eval::task`, `electra_eval::finetune`, ...).

pub mod error;
pub mod glue;
pub mod squad;
pub mod tuning;

pub use error::EvalError;
pub use glue::task::{Metric, Split, Task, TaskSpec};
pub use glue::{data, features, finetune, metrics, model, report, task};
pub use tuning::pretrained;
