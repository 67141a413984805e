//! # electra-eval: GLUE
//!
//! This crate evaluates a pre-trained discriminator the way the paper does: it reads the nine
//! GLUE tasks (and the AX diagnostic) in the standard `glue_data` layout, fine-tunes a
//! dropout + linear head on the final `[CLS]` state with layer-wise learning-rate decay
//! (spec sections 5 and 6), computes each task's official metrics, and writes result tables
//! over several seeds and GLUE test-server prediction files.
//!
//! Status: not built yet. The GLUE issue fills this crate; until then the workspace compiles it
//! as an empty library so that the crate graph is in place.
