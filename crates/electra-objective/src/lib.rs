//! # electra-objective: replaced token detection
//!
//! This crate owns ELECTRA's pre-training objective (paper section 2, spec section 1): the
//! pre-training model that holds one shared embedding block and two towers (a small generator
//! and the discriminator, both built from `electra-model`), the dynamic masking of each batch,
//! Gumbel-max sampling from the generator, the discriminator's labels, the MLM and RTD losses
//! and their weighted sum, the paper's alternative objectives for comparison, and the
//! per-step pre-training metrics.
//!
//! Status: not built yet. The objective issue fills this crate; until then the workspace
//! compiles it as an empty library so that the crate graph is in place.
