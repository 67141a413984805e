//! The reference optimizer: BERT's "AdamWeightDecay" as ELECTRA uses it for pre-training and
//! fine-tuning (spec 3, `model/optimization.py`).
//!
//! Per parameter `θ` with gradient `g` (after global-norm clipping):
//! `m ← β1·m + (1−β1)·g`, `v ← β2·v + (1−β2)·g²`,
//! `θ ← θ − lr·mult·(m / (√v + ε) + wd·θ)`.
//! - no bias correction of `m` and `v`;
//! - `ε` is added outside the square root (1e-6);
//! - the decoupled weight decay skips every parameter whose path names a bias or a LayerNorm;
//! - before the update all gradients are scaled together so that their global L2 norm is at
//!   most `clip_norm` (TF `clip_by_global_norm`): burn's own clipping is per tensor;
//! - `mult` is a per-parameter learning-rate multiplier (1, or layer-wise decay for
//!   fine-tuning, see [`crate::schedule::layerwise_lr_multiplier`]).
//!
//! burn's `AdamW` differs (bias correction, no name-based exclusion, per-tensor clipping), and
//! its `SimpleOptimizer` sees neither names nor per-parameter settings, so this optimizer walks
//! the module itself with a `ModuleMapper` that knows each parameter's path. Its state is keyed
//! by path, so checkpoints do not depend on burn's run-local parameter ids.

use std::collections::{BTreeMap, HashMap};

use burn::module::{AutodiffModule, ModuleMapper, ModuleVisitor, Param, ParamId};
use burn::optim::GradientsParams;
use burn::prelude::*;
use burn::tensor::backend::AutodiffBackend;
use electra_model::kernels::{self, cpu::AdamScalars};
use serde::{Deserialize, Serialize};

use crate::error::OptimError;

/// Hyper-parameters of [`ElectraAdam`]; the defaults are the paper's (spec 3, Table 6).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AdamConfig {
    /// First-moment decay β1 (0.9).
    pub beta1: f64,
    /// Second-moment decay β2 (0.999).
    pub beta2: f64,
    /// Added to `√v`, outside the square root (1e-6).
    pub epsilon: f64,
    /// Decoupled weight decay for weight matrices and embeddings (0.01 in pre-training; the
    /// paper uses 0 for GLUE fine-tuning).
    pub weight_decay: f64,
    /// Global-norm gradient clipping threshold (1.0); `None` disables clipping.
    pub clip_norm: Option<f64>,
}

impl Default for AdamConfig {
    fn default() -> Self {
        Self {
            beta1: 0.9,
            beta2: 0.999,
            epsilon: 1e-6,
            weight_decay: 0.01,
            clip_norm: Some(1.0),
        }
    }
}

impl AdamConfig {
    /// Checks the ranges; the error names the field.
    pub fn validate(&self) -> Result<(), OptimError> {
        let check = |name: &str, ok: bool, value: f64| {
            if ok {
                Ok(())
            } else {
                Err(OptimError::InvalidConfig(format!(
                    "optimizer.{name} = {value} is out of range"
                )))
            }
        };
        check("beta1", (0.0..1.0).contains(&self.beta1), self.beta1)?;
        check("beta2", (0.0..1.0).contains(&self.beta2), self.beta2)?;
        let eps = self.epsilon;
        check("epsilon", eps > 0.0 && eps.is_finite(), eps)?;
        let decay = self.weight_decay;
        check("weight_decay", decay >= 0.0 && decay.is_finite(), decay)?;
        if let Some(c) = self.clip_norm {
            check("clip_norm", c > 0.0 && c.is_finite(), c)?;
        }
        Ok(())
    }
}

/// Whether the reference decays a parameter: not if its name contains `LayerNorm`,
/// `layer_norm` or `bias` (all biases, LayerNorm gains and biases, the generator's
/// `output_bias`). Embedding matrices are decayed.
pub fn is_decayed(path: &str) -> bool {
    !(path.contains("layer_norm") || path.contains("LayerNorm") || path.contains("bias"))
}

/// First and second moments of one parameter, flattened.
#[derive(Clone, Debug)]
pub struct Moments<B: Backend> {
    /// First moment `m`.
    pub m: Tensor<B, 1>,
    /// Second moment `v`.
    pub v: Tensor<B, 1>,
}

/// What one step did, for logging.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct StepStats {
    /// Global L2 norm of the gradients before clipping.
    pub grad_norm: f64,
    /// Factor the gradients were multiplied by (1 when not clipped).
    pub clip_scale: f64,
}

/// The reference Adam with decoupled weight decay and global-norm clipping (module docs).
#[derive(Debug)]
pub struct ElectraAdam<B: AutodiffBackend> {
    config: AdamConfig,
    state: HashMap<String, Moments<B::InnerBackend>>,
}

/// Each parameter's dotted module path (e.g. `electra.encoder.layers.0.attention.query.weight`).
pub fn parameter_paths<B: Backend, M: Module<B>>(module: &M) -> Vec<(String, ParamId)> {
    struct Paths {
        stack: Vec<String>,
        out: Vec<(String, ParamId)>,
    }
    impl<B: Backend> ModuleVisitor<B> for Paths {
        fn enter_module(&mut self, name: &str, _: &str) {
            self.stack.push(name.to_string());
        }
        fn exit_module(&mut self, _: &str, _: &str) {
            self.stack.pop();
        }
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
            self.out.push((self.stack.join("."), param.id));
        }
    }
    let mut visitor = Paths {
        stack: Vec::new(),
        out: Vec::new(),
    };
    module.visit(&mut visitor);
    visitor.out
}

/// The global L2 norm of all gradients of `module` present in `grads`.
pub fn global_grad_norm<B: AutodiffBackend, M: AutodiffModule<B>>(
    module: &M,
    grads: &GradientsParams,
) -> f64 {
    struct Norm<'a, B: AutodiffBackend> {
        grads: &'a GradientsParams,
        sum: Option<Tensor<B::InnerBackend, 1>>,
    }
    impl<B: AutodiffBackend> ModuleVisitor<B> for Norm<'_, B> {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
            if let Some(g) = self.grads.get::<B::InnerBackend, D>(param.id) {
                let s = g.square().sum();
                self.sum = Some(match self.sum.take() {
                    Some(acc) => acc + s,
                    None => s,
                });
            }
        }
    }
    let mut visitor = Norm::<B> { grads, sum: None };
    module.visit(&mut visitor);
    visitor
        .sum
        .map(|s| s.sqrt().into_scalar().elem::<f64>())
        .unwrap_or(0.0)
}

impl<B: AutodiffBackend> ElectraAdam<B> {
    /// A fresh optimizer (zero moments).
    pub fn new(config: AdamConfig) -> Result<Self, OptimError> {
        config.validate()?;
        Ok(Self {
            config,
            state: HashMap::new(),
        })
    }

    /// The hyper-parameters.
    pub fn config(&self) -> &AdamConfig {
        &self.config
    }

    /// One update of every parameter of `module` that has a gradient in `grads`, with base
    /// learning rate `lr` times `lr_multiplier(path)`.
    pub fn step<M: AutodiffModule<B>>(
        &mut self,
        lr: f64,
        module: M,
        grads: GradientsParams,
        lr_multiplier: &dyn Fn(&str) -> f64,
    ) -> (M, StepStats) {
        let grad_norm = global_grad_norm(&module, &grads);
        let clip_scale = match self.config.clip_norm {
            // TF clip_by_global_norm: g · clip / max(norm, clip).
            Some(clip) if grad_norm > clip => clip / grad_norm,
            _ => 1.0,
        };
        let mut mapper = StepMapper {
            optimizer: self,
            grads,
            lr,
            clip_scale,
            lr_multiplier,
            stack: Vec::new(),
        };
        let module = module.map(&mut mapper);
        (
            module,
            StepStats {
                grad_norm,
                clip_scale,
            },
        )
    }

    /// The moments, keyed by parameter path, for checkpoints.
    pub fn state(&self) -> BTreeMap<String, (TensorData, TensorData)> {
        self.state
            .iter()
            .map(|(k, s)| (k.clone(), (s.m.to_data(), s.v.to_data())))
            .collect()
    }

    /// Restores moments saved by [`Self::state`] onto `device`.
    pub fn load_state(
        &mut self,
        state: BTreeMap<String, (TensorData, TensorData)>,
        device: &burn::tensor::Device<B::InnerBackend>,
    ) {
        self.state = state
            .into_iter()
            .map(|(k, (m, v))| {
                let moments = Moments {
                    m: Tensor::from_data(m, device),
                    v: Tensor::from_data(v, device),
                };
                (k, moments)
            })
            .collect();
    }
}

struct StepMapper<'a, B: AutodiffBackend> {
    optimizer: &'a mut ElectraAdam<B>,
    grads: GradientsParams,
    lr: f64,
    clip_scale: f64,
    lr_multiplier: &'a dyn Fn(&str) -> f64,
    stack: Vec<String>,
}

impl<B: AutodiffBackend> ModuleMapper<B> for StepMapper<'_, B> {
    fn enter_module(&mut self, name: &str, _: &str) {
        self.stack.push(name.to_string());
    }

    fn exit_module(&mut self, _: &str, _: &str) {
        self.stack.pop();
    }

    fn map_float<const D: usize>(&mut self, param: Param<Tensor<B, D>>) -> Param<Tensor<B, D>> {
        let (id, tensor, mapper) = param.consume();
        let Some(grad) = self.grads.remove::<B::InnerBackend, D>(id) else {
            return Param::from_mapped_value(id, tensor, mapper);
        };
        let path = self.stack.join(".");
        let config = &self.optimizer.config;
        let require_grad = tensor.is_require_grad();
        let theta = tensor.inner();
        let shape = theta.shape();
        let n = shape.num_elements();
        let g = grad.reshape([n]);
        let (m, v) = match self.optimizer.state.remove(&path) {
            Some(s) => (s.m, s.v),
            None => (g.zeros_like(), g.zeros_like()),
        };
        let decayed = config.weight_decay > 0.0 && is_decayed(&path);
        // One pass over θ, g, m, v on the CPU backend; the same tensor ops elsewhere.
        let scalars = AdamScalars {
            clip_scale: self.clip_scale,
            beta1: config.beta1,
            beta2: config.beta2,
            epsilon: config.epsilon,
            weight_decay: if decayed { config.weight_decay } else { 0.0 },
            lr: self.lr * (self.lr_multiplier)(&path),
        };
        let (flat, m, v) = kernels::adam(theta.reshape([n]), m, v, g, scalars);
        let updated = flat.reshape(shape);
        self.optimizer.state.insert(path, Moments { m, v });
        let mut tensor = Tensor::from_inner(updated);
        if require_grad {
            tensor = tensor.require_grad();
        }
        Param::from_mapped_value(id, tensor, mapper)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::backend::{Autodiff, Flex};
    use burn::nn::{LayerNorm, LayerNormConfig, Linear, LinearConfig};

    type AB = Autodiff<Flex>;

    #[derive(Module, Debug)]
    struct Tiny<B: Backend> {
        dense: Linear<B>,
        layer_norm: LayerNorm<B>,
    }

    #[test]
    fn decay_exclusion_follows_the_reference_names() {
        assert!(is_decayed(
            "electra.encoder.layers.0.attention.query.weight"
        ));
        assert!(is_decayed("electra.embeddings.word_embeddings.weight"));
        assert!(!is_decayed("electra.encoder.layers.0.attention.query.bias"));
        assert!(!is_decayed("electra.embeddings.layer_norm.gamma"));
        assert!(!is_decayed("generator_predictions.output_bias"));
    }

    /// Every parameter of `module`: its path, its rank and its values.
    fn parameter_values<B: Backend, M: Module<B>>(module: &M) -> Vec<(String, usize, Vec<f32>)> {
        struct Values {
            stack: Vec<String>,
            out: Vec<(String, usize, Vec<f32>)>,
        }
        impl<B: Backend> ModuleVisitor<B> for Values {
            fn enter_module(&mut self, name: &str, _: &str) {
                self.stack.push(name.to_string());
            }
            fn exit_module(&mut self, _: &str, _: &str) {
                self.stack.pop();
            }
            fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
                let values = param.val().into_data().to_vec::<f32>().expect("f32");
                self.out.push((self.stack.join("."), D, values));
            }
        }
        let mut visitor = Values {
            stack: Vec::new(),
            out: Vec::new(),
        };
        module.visit(&mut visitor);
        visitor.out
    }

    /// Adds 0.5 to every parameter, so that zero-initialised biases would visibly decay.
    struct Shift;
    impl ModuleMapper<AB> for Shift {
        fn map_float<const D: usize>(
            &mut self,
            param: Param<Tensor<AB, D>>,
        ) -> Param<Tensor<AB, D>> {
            let (id, tensor, mapper) = param.consume();
            let shifted = Tensor::from_inner(tensor.inner().add_scalar(0.5)).require_grad();
            Param::from_mapped_value(id, shifted, mapper)
        }
    }

    /// Decay exclusion on the real networks' own parameter paths (not hand-written names): in
    /// ELECTRA the reference's name rule (`bias`, `LayerNorm`, `layer_norm`) spares exactly the
    /// rank-1 tensors (every bias, LayerNorm gain and bias, the generators' `output_bias`) and
    /// decays every rank-2 tensor (kernels and embedding tables). Then one optimizer step with
    /// zero gradients on the pre-training model moves exactly the decayed tensors, by
    /// `θ·(1 − lr·wd)`, and leaves the others bit-identical.
    #[test]
    fn decay_exclusion_on_the_real_model_spares_exactly_biases_and_layer_norms() {
        use electra_model::{ElectraConfig, ElectraForMaskedLM, ElectraForPreTraining};
        use electra_objective::{
            ElectraPretrainingModel, EmbeddingSharing, HostBatch, ObjectiveConfig, ObjectiveKind,
        };

        let device = Default::default();
        let model_config = ElectraConfig {
            vocab_size: 40,
            embedding_size: 8,
            hidden_size: 16,
            num_hidden_layers: 1,
            num_attention_heads: 2,
            intermediate_size: 32,
            max_position_embeddings: 16,
            ..ElectraConfig::small()
        };
        let objective = |kind, embedding_sharing| ObjectiveConfig {
            objective: kind,
            embedding_sharing,
            generator_hidden_multiplier: 0.5,
            cls_token_id: 1,
            sep_token_id: 2,
            mask_token_id: 3,
            ..ObjectiveConfig::default()
        };
        let (mut checked, mut deltas) = (0, 0);
        let mut check = |values: Vec<(String, usize, Vec<f32>)>| {
            for (path, rank, _) in values {
                assert_eq!(is_decayed(&path), rank >= 2, "{path} (rank {rank})");
                checked += 1;
                // GDES's E_Δ tables are embedding tables (decayed, as DeBERTa's are); its
                // LayerNorm is spared.
                deltas += usize::from(path.starts_with("embedding_deltas."));
            }
        };
        let (tied, untied, gdes) = (
            EmbeddingSharing::Tied,
            EmbeddingSharing::Untied,
            EmbeddingSharing::Gdes,
        );
        for (kind, tie) in [
            (ObjectiveKind::Electra, tied),
            (ObjectiveKind::Electra, untied),
            (ObjectiveKind::Electra, gdes),
            (ObjectiveKind::AllTokensMlm, tied),
            (ObjectiveKind::AllTokensMlm, gdes),
            (ObjectiveKind::Mlm, tied),
        ] {
            let m =
                ElectraPretrainingModel::<Flex>::new(&model_config, &objective(kind, tie), &device)
                    .expect("model");
            check(parameter_values(&m));
        }
        check(parameter_values(&ElectraForPreTraining::<Flex>::new(
            &model_config,
            &device,
        )));
        check(parameter_values(&ElectraForMaskedLM::<Flex>::new(
            &model_config,
            &device,
        )));
        assert!(checked > 100, "{checked}");
        assert_eq!(deltas, 10, "two GDES models × 3 tables and LayerNorm γ, β");

        // One step, zero gradients: only the weight-decay term moves parameters (GDES, so that
        // E_Δ is covered; its zero tables stay zero, its LayerNorm is spared).
        let model = ElectraPretrainingModel::<AB>::new(
            &model_config,
            &objective(ObjectiveKind::Electra, gdes),
            &device,
        )
        .expect("model")
        .map(&mut Shift);
        let ids: Vec<i64> = vec![1, 10, 11, 12, 2, 20, 21, 2, 1, 13, 14, 2, 0, 0, 0, 0];
        let mask: Vec<i64> = ids.iter().map(|&i| i64::from(i != 0)).collect();
        let batch = HostBatch::new(ids, vec![0; 16], mask, 2, 8).expect("batch");
        let loss = model.step(&batch, 0).expect("step").loss.mul_scalar(0.0);
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        let before = parameter_values(&model);
        assert_eq!(
            grads.len(),
            before.len(),
            "every parameter has a (zero) gradient"
        );
        let (lr, wd) = (10.0, 0.01);
        let mut opt = ElectraAdam::<AB>::new(AdamConfig {
            weight_decay: wd,
            ..AdamConfig::default()
        })
        .expect("valid");
        let (model, _) = opt.step(lr, model, grads, &|_| 1.0);
        let after = parameter_values(&model);
        let (mut decayed, mut spared) = (0, 0);
        for ((path, rank, old), (_, _, new)) in before.iter().zip(&after) {
            let factor = if *rank >= 2 {
                decayed += 1;
                (1.0 - lr * wd) as f32
            } else {
                spared += 1;
                1.0
            };
            for (o, n) in old.iter().zip(new) {
                assert!(
                    (o * factor - n).abs() <= 1e-6 * o.abs().max(1.0),
                    "{path}: {o} -> {n}"
                );
            }
        }
        assert!(
            decayed > 10 && spared > 10,
            "{decayed} decayed, {spared} spared"
        );
        assert!(
            before
                .iter()
                .any(|(p, r, _)| p == "generator_predictions.output_bias" && *r == 1)
        );
    }

    #[test]
    fn paths_name_every_parameter() {
        let device = Default::default();
        let tiny = Tiny::<Flex> {
            dense: LinearConfig::new(2, 3).init(&device),
            layer_norm: LayerNormConfig::new(3).init(&device),
        };
        let names: Vec<String> = parameter_paths(&tiny).into_iter().map(|(p, _)| p).collect();
        assert_eq!(
            names,
            [
                "dense.weight",
                "dense.bias",
                "layer_norm.gamma",
                "layer_norm.beta"
            ]
        );
    }

    /// One step by hand: with zero moments, m = (1−β1)g, v = (1−β2)g², so
    /// update = (1−β1)g / (√(1−β2)|g| + ε) + wd·θ.
    #[test]
    fn one_step_matches_the_hand_computed_rule() {
        let device = Default::default();
        let mut dense = LinearConfig::new(1, 2).init::<AB>(&device);
        dense.weight =
            Param::from_tensor(Tensor::from_floats([[0.5, -1.0]], &device).require_grad());
        dense.bias = Some(Param::from_tensor(
            Tensor::from_floats([0.25, 0.0], &device).require_grad(),
        ));
        let tiny = Tiny {
            dense,
            layer_norm: LayerNormConfig::new(2).init(&device),
        };
        // loss = sum(dense(x)) with x = 3: dL/dW = [3, 3], dL/db = [1, 1]; LN unused.
        let x = Tensor::<AB, 2>::from_floats([[3.0]], &device);
        let loss = tiny.dense.forward(x).sum();
        let grads = GradientsParams::from_grads(loss.backward(), &tiny);
        let config = AdamConfig {
            clip_norm: None,
            ..AdamConfig::default()
        };
        let mut opt = ElectraAdam::<AB>::new(config.clone()).expect("valid");
        let lr = 0.1;
        let (tiny, stats) = opt.step(lr, tiny, grads, &|_| 1.0);
        assert!((stats.grad_norm - (9.0f64 * 2.0 + 2.0).sqrt()).abs() < 1e-5);
        let rule = |theta: f64, g: f64, decay: bool| {
            let m = (1.0 - config.beta1) * g;
            let v = (1.0 - config.beta2) * g * g;
            let wd = if decay {
                config.weight_decay * theta
            } else {
                0.0
            };
            theta - lr * (m / (v.sqrt() + config.epsilon) + wd)
        };
        let w = tiny
            .dense
            .weight
            .val()
            .into_data()
            .to_vec::<f32>()
            .expect("f32");
        let b = tiny
            .dense
            .bias
            .expect("bias")
            .val()
            .into_data()
            .to_vec::<f32>()
            .expect("f32");
        let want_w = [rule(0.5, 3.0, true), rule(-1.0, 3.0, true)];
        let want_b = [rule(0.25, 1.0, false), rule(0.0, 1.0, false)];
        for (got, want) in w.iter().zip(want_w).chain(b.iter().zip(want_b)) {
            assert!((*got as f64 - want).abs() < 1e-6, "{got} vs {want}");
        }
        // No gradient, no update: the LayerNorm is untouched and has no state.
        assert_eq!(
            tiny.layer_norm
                .gamma
                .val()
                .into_data()
                .to_vec::<f32>()
                .expect("f32"),
            vec![1.0, 1.0]
        );
        assert_eq!(opt.state().len(), 2);
    }

    #[test]
    fn clipping_uses_the_global_norm() {
        let device = Default::default();
        let tiny = Tiny::<AB> {
            dense: LinearConfig::new(1, 2).init(&device),
            layer_norm: LayerNormConfig::new(2).init(&device),
        };
        let x = Tensor::<AB, 2>::from_floats([[30.0]], &device);
        let loss = tiny.dense.forward(x).sum();
        let grads = GradientsParams::from_grads(loss.backward(), &tiny);
        let norm = global_grad_norm(&tiny, &grads);
        // dW = [30, 30], db = [1, 1].
        assert!((norm - (1800.0f64 + 2.0).sqrt()).abs() < 1e-3, "{norm}");
        let mut opt = ElectraAdam::<AB>::new(AdamConfig::default()).expect("valid");
        let (_, stats) = opt.step(1e-3, tiny, grads, &|_| 1.0);
        assert!((stats.clip_scale * stats.grad_norm - 1.0).abs() < 1e-9);
    }

    #[test]
    fn invalid_hyper_parameters_name_the_field() {
        let err = ElectraAdam::<AB>::new(AdamConfig {
            beta2: 1.5,
            ..AdamConfig::default()
        })
        .expect_err("beta2");
        assert!(err.to_string().contains("optimizer.beta2"), "{err}");
    }
}
