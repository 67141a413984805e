//! The memory a pre-training run needs, checked against the machine before the model is
//! built (see [`electra_model::memory`] for what the machine has and how the check decides).
//!
//! The estimate of a run ([`pretraining_estimate`]), all f32:
//! - **weights**: the discriminator (embeddings and layers), the generator's layers (and its
//!   own embeddings unless tied), the heads; once per device (each holds a replica);
//! - **gradients**: one value per weight, per device;
//! - **Adam moments**: two values per weight (held once);
//! - **activations** of one micro-batch (`batch_size / grad_accum_steps` sequences of
//!   `data.max_seq_len`, split across the devices, so counted once): both towers'
//!   ([`ElectraConfig::activation_values_per_sequence`]) and the generator's vocabulary
//!   logits with their softmax at the masked slots (`2·⌈mask_prob·seq⌉·vocab` per sequence).

use burn::tensor::backend::Backend;
use electra_model::ElectraConfig;
use electra_model::memory::{HostMemory, MemoryEstimate, backend_uses_host_memory, check};
use electra_objective::EmbeddingSharing;

use crate::config::RunConfig;
use crate::error::RunError;

const F32: u128 = 4;

/// The generator's sizes, when the objective has one.
fn generator(config: &RunConfig) -> Result<Option<ElectraConfig>, RunError> {
    if !config.objective.objective.uses_generator() {
        return Ok(None);
    }
    Ok(Some(config.objective.generator_config(&config.model)?))
}

/// The memory pre-training `config` on `devices` devices of one backend needs.
pub fn pretraining_estimate(
    config: &RunConfig,
    devices: usize,
) -> Result<MemoryEstimate, RunError> {
    let model = &config.model;
    let generator = generator(config)?;
    let (v, h) = (model.vocab_size as u128, model.hidden_size as u128);
    // The RTD head (dense H·H, bias, output H + 1) or an MLM head of the same order.
    let mut params = model.num_parameters() + h * h + 2 * h + 1;
    if let Some(g) = &generator {
        let (e, hg) = (g.embedding_size as u128, g.hidden_size as u128);
        params += g.encoder_layer_parameters();
        if config.objective.embedding_sharing != EmbeddingSharing::Tied {
            params += g.embedding_parameters();
        }
        // The MLM head: dense H_g → E, its LayerNorm, the output bias (the weight is tied).
        params += hg * e + e + 2 * e + v;
    }
    let devices = devices.max(1) as u128;
    let seq = config.data.max_seq_len;
    let rows = (config.train.batch_size / config.train.grad_accum_steps.max(1)) as u128;
    let mut per_sequence = model.activation_values_per_sequence(seq);
    if let Some(g) = &generator {
        let slots = (config.objective.mask_prob * seq as f64).ceil() as u128;
        per_sequence += g.activation_values_per_sequence(seq) + 2 * slots * v;
    }
    let mut estimate = MemoryEstimate::default();
    estimate.add("weights", devices * params * F32);
    estimate.add("gradients", devices * params * F32);
    estimate.add("Adam moments", 2 * params * F32);
    estimate.add(
        format!("activations of {rows} sequences of {seq} tokens"),
        rows * per_sequence * F32,
    );
    Ok(estimate)
}

/// Refuses a run that cannot fit in this machine's memory before anything is allocated
/// (with the estimate and what is available), and warns (`tracing`) when it is near the
/// limit. Only on the CPU backends; on a GPU nothing is checked.
pub fn check_pretraining<B: Backend>(
    config: &RunConfig,
    devices: &[B::Device],
) -> Result<(), RunError> {
    let Some(first) = devices.first() else {
        return Ok(());
    };
    if !backend_uses_host_memory(&B::name(first)) {
        return Ok(());
    }
    let estimate = pretraining_estimate(config, devices.len())?;
    let memory = HostMemory::read()?;
    if let Some(warning) = check("pre-training this config", &estimate, memory.as_ref())? {
        tracing::warn!("{warning}");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_estimate_grows_with_the_model_and_the_batch() {
        let small = RunConfig::resolve(Some("small"), None, &[]).expect("small");
        let base = RunConfig::resolve(Some("base"), None, &[]).expect("base");
        let a = pretraining_estimate(&small, 1).expect("small").total();
        let b = pretraining_estimate(&base, 1).expect("base").total();
        assert!(b > 2 * a, "{a} {b}");
        let mut bigger = small.clone();
        bigger.train.batch_size *= 2;
        let c = pretraining_estimate(&bigger, 1).expect("bigger").total();
        assert!(c > a, "{a} {c}");
        // Weights, gradients and Adam moments: 16 bytes per parameter at least.
        let params = small.model.num_parameters();
        assert!(a > 16 * params, "{a} vs {params} parameters");
    }

    #[test]
    fn a_config_of_a_billion_wide_layers_is_refused_before_allocating() {
        let config = RunConfig::resolve(
            Some("tiny"),
            None,
            &[
                "model.hidden_size=1000000000".into(),
                "model.num_attention_heads=1".into(),
            ],
        )
        .expect("resolves");
        let estimate = pretraining_estimate(&config, 1).expect("estimate");
        let memory = HostMemory {
            available: 24 << 30,
            source: "test".into(),
        };
        let err = check("pre-training this config", &estimate, Some(&memory)).expect_err("refused");
        assert!(err.to_string().contains("Adam moments"), "{err}");
    }
}
