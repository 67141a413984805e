//! # electra-train: the pre-training loop
//!
//! This crate turns the CPU batches of `electra-data` into tensors on the chosen device, runs
//! the objective of `electra-objective`, and owns everything around the step: the reference
//! optimizer (Adam without bias correction, decoupled weight decay, global-norm clipping), the
//! learning-rate schedules, gradient accumulation, checkpoints written atomically and resumed
//! exactly, metrics a user can plot, and data-parallel training on several devices.
//!
//! Status: not built yet. The training issue fills this crate; until then the workspace
//! compiles it as an empty library so that the crate graph is in place.
