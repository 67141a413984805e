//! Model FLOPs of one ELECTRA step, counted analytically (matrix multiplications only).
//!
//! Model-FLOPs utilisation (MFU) divides the FLOPs the *algorithm* needs by the time taken and
//! the hardware's peak; work an implementation does beyond that (recomputation, a vocabulary
//! head at unmasked positions) does not count. Per sequence of `S` tokens, for a tower with
//! hidden size `H`, FFN size `F`, embedding size `E` and `L` layers, a multiply-add counting as
//! 2 FLOPs:
//!
//! | part | forward FLOPs |
//! |---|---|
//! | `embeddings_project` (only when `E ≠ H`) | `2·S·E·H` |
//! | per layer: Q, K, V and attention-output projections | `8·S·H²` |
//! | per layer: attention scores `q·kᵀ` and `probs·v` | `4·S²·H` |
//! | per layer: FFN in and out | `4·S·H·F` |
//! | discriminator head (dense `H→H`, dense `H→1`) | `2·S·H² + 2·S·H` |
//! | generator head at the `N` prediction slots (dense `H_g→E`, tied output `E→V`) | `2·N·H_g·E + 2·N·E·V` |
//!
//! Embedding lookups, LayerNorm, GELU, softmax, losses and the optimizer are not matrix
//! products and are left out (they are a few percent of the total). Backward costs twice the
//! forward (a gradient for the input and one for the weight of every product), so a training
//! step is `3 × (generator forward + discriminator forward)`. Inference is the discriminator
//! forward alone. `N = floor((mask_prob + 0.005)·S)` slots per sequence (spec 1.2): the
//! generator head runs on every slot, active or not, as in the reference code.

use electra_model::ElectraConfig;

/// Forward FLOPs per sequence of the parts of one ELECTRA step (module docs for the formulas).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct StepFlops {
    /// The discriminator: projection, layers and RTD head, `[S]` tokens.
    pub discriminator_forward: f64,
    /// The generator: projection and layers, `[S]` tokens.
    pub generator_encoder_forward: f64,
    /// The generator's MLM head at the `N` slots.
    pub generator_head_forward: f64,
}

impl StepFlops {
    /// Counts the FLOPs for a discriminator `disc`, a generator `generator`, sequences of
    /// `seq` tokens and `slots` prediction slots per sequence.
    pub fn new(disc: &ElectraConfig, generator: &ElectraConfig, seq: usize, slots: usize) -> Self {
        let (s, n) = (seq as f64, slots as f64);
        let (h, e) = (disc.hidden_size as f64, disc.embedding_size as f64);
        let (hg, v) = (generator.hidden_size as f64, generator.vocab_size as f64);
        let eg = generator.embedding_size as f64;
        Self {
            discriminator_forward: encoder_forward(disc, seq) + 2.0 * s * h * h + 2.0 * s * h,
            generator_encoder_forward: encoder_forward(generator, seq),
            generator_head_forward: 2.0 * n * hg * eg + 2.0 * n * e * v,
        }
    }

    /// Forward FLOPs of the whole step (generator, its head, discriminator).
    pub fn step_forward(&self) -> f64 {
        self.discriminator_forward + self.generator_encoder_forward + self.generator_head_forward
    }

    /// FLOPs of one training step: forward plus backward (twice the forward).
    pub fn step(&self) -> f64 {
        3.0 * self.step_forward()
    }

    /// FLOPs of inference: the discriminator forward.
    pub fn inference(&self) -> f64 {
        self.discriminator_forward
    }
}

/// Forward FLOPs of one tower (optional `embeddings_project` and the layers) on `seq` tokens.
pub fn encoder_forward(config: &ElectraConfig, seq: usize) -> f64 {
    let s = seq as f64;
    let (h, f, e) = (
        config.hidden_size as f64,
        config.intermediate_size as f64,
        config.embedding_size as f64,
    );
    let project = if config.embedding_size == config.hidden_size {
        0.0
    } else {
        2.0 * s * e * h
    };
    let layer = 8.0 * s * h * h + 4.0 * s * s * h + 4.0 * s * h * f;
    project + config.num_hidden_layers as f64 * layer
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_one_layer_tower_counts_every_product() {
        let config = ElectraConfig {
            vocab_size: 10,
            embedding_size: 2,
            hidden_size: 4,
            num_hidden_layers: 1,
            intermediate_size: 8,
            ..ElectraConfig::tiny()
        };
        // project 2·3·2·4 = 48; QKVO 8·3·16 = 384; attention 4·9·4 = 144; FFN 4·3·4·8 = 384.
        assert_eq!(encoder_forward(&config, 3), 48.0 + 384.0 + 144.0 + 384.0);
        let no_project = ElectraConfig {
            embedding_size: 4,
            ..config.clone()
        };
        assert_eq!(encoder_forward(&no_project, 3), 384.0 + 144.0 + 384.0);
        let flops = StepFlops::new(&config, &config, 3, 1);
        // Head: dense 2·3·16 = 96, prediction 2·3·4 = 24; generator head 2·1·4·2 + 2·1·2·10 = 56.
        assert_eq!(flops.discriminator_forward, 960.0 + 96.0 + 24.0);
        assert_eq!(flops.generator_head_forward, 56.0);
        assert_eq!(flops.step(), 3.0 * (1080.0 + 960.0 + 56.0));
        assert_eq!(flops.inference(), 1080.0);
    }

    #[test]
    fn electra_small_is_about_nine_gigaflops_per_sequence() {
        let disc = ElectraConfig::small();
        let generator = disc.generator_config(0.25, 1.0).expect("generator");
        let flops = StepFlops::new(&disc, &generator, 128, 19);
        // 12 layers of 2.18e8 plus projection and head: 2.64e9 forward.
        assert!((flops.inference() - 2.642e9).abs() < 1e7, "{flops:?}");
        assert!((flops.step() - 8.98e9).abs() < 5e7, "{flops:?}");
    }
}
