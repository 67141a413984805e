//! # electra-benches: criterion benchmarks
//!
//! Speed targets live here, never in timed tests. `cargo xtask bench` runs every criterion
//! suite (each file under `benches/` is one) and then the end-to-end `throughput` binary
//! (`src/bin/throughput.rs`), which times the real pre-training step and inference per preset;
//! `cargo xtask compare-pytorch` runs the same binary against the PyTorch reference script
//! `reference/electra_step.py`. This library holds what they share: deterministic inputs
//! ([`synthetic_batch`], [`measure::synthetic_host_batch`]), the analytic FLOP count
//! ([`flops`]), the timed loops ([`measure`]), the CPU each report names ([`cpu`]) and the
//! roofline of a step's matrix products ([`roofline`]).

use burn::prelude::*;

pub mod cpu;
pub mod flops;
pub mod measure;
pub mod roofline;

/// A deterministic batch `[batch, seq]` of token ids in `4..vocab`, all real tokens, one
/// segment: `(input_ids, token_type_ids, attention_mask)`.
pub fn synthetic_batch<B: Backend>(
    batch: usize,
    seq: usize,
    vocab: usize,
    device: &B::Device,
) -> (Tensor<B, 2, Int>, Tensor<B, 2, Int>, Tensor<B, 2, Int>) {
    let span = vocab.saturating_sub(4).max(1) as i64;
    let ids: Vec<i64> = (0..batch * seq)
        .map(|i| 4 + (i as i64).wrapping_mul(7919) % span)
        .collect();
    let ids = Tensor::<B, 1, Int>::from_data(TensorData::new(ids, [batch * seq]), device)
        .reshape([batch, seq]);
    let zeros = Tensor::<B, 2, Int>::zeros([batch, seq], device);
    let ones = Tensor::<B, 2, Int>::ones([batch, seq], device);
    (ids, zeros, ones)
}
