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
//! | generator head at the `N` prediction slots (dense `H_g→E_g`, tied output `E_g→V`) | `2·N·H_g·E_g + 2·N·E_g·V` |
//!
//! Embedding lookups, LayerNorm, GELU, softmax, losses and the optimizer are not matrix
//! products and are left out (they are a few percent of the total). Backward costs twice the
//! forward (a gradient for the input and one for the weight of every product), so a training
//! step is `3 × (generator forward + discriminator forward)`. Inference is the discriminator
//! forward alone. `N = floor((mask_prob + 0.005)·S)` slots per sequence (spec 1.2): the
//! generator head runs on every slot, active or not, as in the reference code. `E_g` is the
//! generator's embedding width: the shared `E` when the embeddings are tied (and under GDES,
//! whose `sg(E_G) + E_Δ` is an addition, not a product), its own `H_g` when untied
//! (`ObjectiveConfig::generator_config`), which makes an untied step cheaper.
//!
//! The §3.5 baselines ([`objective_forward`]) reuse the same parts: `mlm` is the
//! discriminator-sized tower with an MLM head (dense `H→E`, tied `E→V`) at the `N` slots and no
//! generator; `replace-mlm` adds the generator and puts that MLM head on the slots;
//! `all-tokens-mlm` runs the MLM head on all `S` tokens plus the copy gate (the RTD head's
//! shape); `electra-15` costs what ELECTRA costs. The equal-compute experiment (`cargo xtask
//! experiment`) gives each objective as many steps as ELECTRA's FLOPs buy with this count.

use electra_model::ElectraConfig;
use electra_objective::ObjectiveKind;

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
        let h = disc.hidden_size as f64;
        let (hg, v) = (generator.hidden_size as f64, generator.vocab_size as f64);
        let eg = generator.embedding_size as f64;
        Self {
            discriminator_forward: encoder_forward(disc, seq) + 2.0 * s * h * h + 2.0 * s * h,
            generator_encoder_forward: encoder_forward(generator, seq),
            generator_head_forward: 2.0 * n * hg * eg + 2.0 * n * eg * v,
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

/// Forward FLOPs per sequence of one pre-training step of `objective` (module docs): `disc` is
/// the discriminator-sized network, `generator` the generator (unused by `mlm`), `seq` tokens,
/// `slots` prediction slots. A training step costs three times this.
pub fn objective_forward(
    objective: ObjectiveKind,
    disc: &ElectraConfig,
    generator: &ElectraConfig,
    seq: usize,
    slots: usize,
) -> f64 {
    let electra = StepFlops::new(disc, generator, seq, slots);
    let generator_part = electra.generator_encoder_forward + electra.generator_head_forward;
    let (h, e, v) = (
        disc.hidden_size as f64,
        disc.embedding_size as f64,
        disc.vocab_size as f64,
    );
    // The discriminator-sized MLM head (dense H→E, tied E→V) on `positions` rows.
    let mlm_head = |positions: f64| 2.0 * positions * h * e + 2.0 * positions * e * v;
    let copy_gate = 2.0 * seq as f64 * h * h + 2.0 * seq as f64 * h;
    let tower = encoder_forward(disc, seq);
    match objective {
        ObjectiveKind::Electra | ObjectiveKind::Electra15 => electra.step_forward(),
        ObjectiveKind::Mlm => tower + mlm_head(slots as f64),
        ObjectiveKind::ReplaceMlm => generator_part + tower + mlm_head(slots as f64),
        ObjectiveKind::AllTokensMlm => generator_part + tower + mlm_head(seq as f64) + copy_gate,
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
    fn each_objective_counts_its_own_parts() {
        let disc = ElectraConfig {
            vocab_size: 10,
            embedding_size: 2,
            hidden_size: 4,
            num_hidden_layers: 1,
            intermediate_size: 8,
            ..ElectraConfig::tiny()
        };
        let generator = ElectraConfig {
            hidden_size: 2,
            intermediate_size: 4,
            num_attention_heads: 1,
            ..disc.clone()
        };
        let (s, n) = (3, 1);
        let electra = StepFlops::new(&disc, &generator, s, n);
        // Tower 960 (see above); MLM head at n = 1 row: 2·1·4·2 + 2·1·2·10 = 56; at s = 3: 168.
        // Copy gate 2·3·16 + 2·3·4 = 120. Generator (E = H_g = 2: no projection): layer
        // 8·3·4 + 4·9·2 + 4·3·2·4 = 96 + 72 + 96, head 2·1·2·2 + 2·1·2·10 = 48.
        let generator_part = 264.0 + 48.0;
        assert_eq!(
            electra.generator_encoder_forward + electra.generator_head_forward,
            generator_part
        );
        let f = |kind| objective_forward(kind, &disc, &generator, s, n);
        assert_eq!(f(ObjectiveKind::Electra), electra.step_forward());
        assert_eq!(f(ObjectiveKind::Electra15), electra.step_forward());
        assert_eq!(f(ObjectiveKind::Mlm), 960.0 + 56.0);
        assert_eq!(f(ObjectiveKind::ReplaceMlm), generator_part + 960.0 + 56.0);
        assert_eq!(
            f(ObjectiveKind::AllTokensMlm),
            generator_part + 960.0 + 168.0 + 120.0
        );
    }

    #[test]
    fn an_untied_generator_projects_nothing_and_outputs_at_its_own_width() {
        use electra_objective::{EmbeddingSharing, ObjectiveConfig};
        let disc = ElectraConfig::small();
        let generator = |embedding_sharing| {
            ObjectiveConfig {
                embedding_sharing,
                ..ObjectiveConfig::default()
            }
            .generator_config(&disc)
            .expect("generator")
        };
        let (s, n) = (128, 19);
        let tied = StepFlops::new(&disc, &generator(EmbeddingSharing::Tied), s, n);
        let gdes = StepFlops::new(&disc, &generator(EmbeddingSharing::Gdes), s, n);
        let untied = StepFlops::new(&disc, &generator(EmbeddingSharing::Untied), s, n);
        assert_eq!(tied, gdes, "GDES adds no matrix product");
        // Small: E = 128, H_g = 64, V = 30522. Tied: projection 2·S·128·64 and head
        // 2·N·64·128 + 2·N·128·V; untied: no projection, head 2·N·64·64 + 2·N·64·V.
        let (e, hg, v, s, n) = (128.0, 64.0, 30522.0, s as f64, n as f64);
        assert_eq!(
            tied.generator_encoder_forward - untied.generator_encoder_forward,
            2.0 * s * e * hg
        );
        assert_eq!(
            tied.generator_head_forward,
            2.0 * n * hg * e + 2.0 * n * e * v
        );
        assert_eq!(
            untied.generator_head_forward,
            2.0 * n * hg * hg + 2.0 * n * hg * v
        );
        assert_eq!(tied.discriminator_forward, untied.discriminator_forward);
    }

    #[test]
    fn bert_small_steps_cost_less_than_electra_small_steps() {
        let disc = ElectraConfig::small();
        let generator = disc.generator_config(0.25, 1.0).expect("generator");
        let electra = objective_forward(ObjectiveKind::Electra, &disc, &generator, 128, 19);
        let mlm = objective_forward(ObjectiveKind::Mlm, &disc, &generator, 128, 19);
        // ELECTRA adds the generator (a quarter-width tower and its head) to BERT's cost.
        assert!(mlm < electra && mlm > 0.7 * electra, "{mlm} vs {electra}");
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
