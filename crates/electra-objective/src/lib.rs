//! # electra-objective: the ELECTRA pre-training objective
//!
//! ELECTRA (Clark et al. 2020) pre-trains a text encoder with *replaced token detection*. Each
//! step takes a batch of token ids, hides about 15 % of the tokens, lets a small **generator**
//! (a masked language model) guess them, writes the generator's sampled guesses back into the
//! original text, and trains the **discriminator** (the encoder kept for fine-tuning) to tell,
//! for every token, whether it is original or replaced. Both networks are trained together on
//! one loss, `gen_weight·mlm_loss + disc_weight·rtd_loss` (1 and 50 in the paper); the
//! discriminator's loss never reaches the generator, because the samples are discrete.
//!
//! This crate is that step, between the data pipeline (`electra-data`, which produces batches of
//! ids) and the training loop (`electra-train`, which owns the optimizer, the schedule and the
//! checkpoints). In order:
//!
//! - [`masking`] chooses the positions to hide on the host, exactly as the reference code does
//!   (budget, candidates, 85 % `[MASK]` / 15 % unchanged), from a seeded RNG per step;
//! - [`model`] holds the generator and the discriminator around **one** embedding block (word,
//!   position and token-type tables and their LayerNorm, spec 2.3); `objectives.rs` runs the
//!   forward pass of each objective, one function each over a shared generator pass;
//! - [`sampling`] draws the replacements from the generator's softmax (inverse CDF);
//! - [`losses`] averages the MLM loss over masked slots and the RTD loss over non-pad tokens;
//! - [`metrics`] reads back the monitoring numbers (MLM accuracy, RTD precision/recall/F1, how
//!   often the generator reproduced the original).
//!
//! Besides ELECTRA itself, [`ObjectiveKind`] selects the baselines of the paper's efficiency
//! analysis (§3.5, Table 5): BERT-style `mlm`, `electra-15`, `replace-mlm` and
//! `all-tokens-mlm`.
//!
//! The network blocks come from `electra-model`; everything here is generic over the burn
//! backend, and the training loop wraps it in `Autodiff<B>`.

pub mod batch;
pub mod config;
pub mod error;
pub mod losses;
pub mod masking;
pub mod metrics;
pub mod model;
mod objectives;
pub mod sampling;
mod sharing;

pub use batch::HostBatch;
pub use config::{EmbeddingSharing, MlmMasking, ObjectiveConfig, ObjectiveKind};
pub use error::ObjectiveError;
pub use masking::{MaskedBatch, mask_batch, step_rng};
pub use metrics::{Confusion, StepMetrics};
pub use model::{ElectraPretrainingModel, ObjectiveOutput, Replacements};
pub use sampling::sample_from_softmax;
pub use sharing::PairReport;
