//! The pre-training model: shared embeddings, gradient isolation, sampling, per-objective
//! shapes and training (spec 1.3-1.5, 2.3; checklist items 2-5).

// Test helpers outside #[test] fns are not covered by clippy.toml's allow-unwrap-in-tests.
#![allow(clippy::unwrap_used)]

use burn::backend::{Autodiff, Flex};
use burn::module::{AutodiffModule, ModuleVisitor, Param, ParamId};
use burn::optim::{AdamConfig, GradientsParams, Optimizer, SgdConfig};
use burn::prelude::*;
use burn::tensor::backend::AutodiffBackend;
use electra_model::ElectraConfig;
use electra_objective::masking::{mask_batch, step_rng};
use electra_objective::{
    ElectraPretrainingModel, EmbeddingSharing, HostBatch, ObjectiveConfig, ObjectiveKind,
    Replacements, StepMetrics, sample_from_softmax,
};

type B = Flex;
type AB = Autodiff<Flex>;

/// The backend RNG is one process-wide stream: tests that seed it and then draw from it (model
/// init, dropout, sampling) run one at a time so that seeding means something.
static RNG_LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    RNG_LOCK
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

const VOCAB: usize = 60;

fn model_config() -> ElectraConfig {
    ElectraConfig::micro(VOCAB)
}

fn objective_config(objective: ObjectiveKind) -> ObjectiveConfig {
    ObjectiveConfig {
        objective,
        generator_hidden_multiplier: 0.5,
        pad_token_id: 0,
        cls_token_id: 1,
        sep_token_id: 2,
        mask_token_id: 3,
        seed: 5,
        ..ObjectiveConfig::default()
    }
}

fn build<Bk: Backend>(objective: &ObjectiveConfig) -> ElectraPretrainingModel<Bk> {
    let device = Default::default();
    Bk::seed(&device, 1234);
    ElectraPretrainingModel::new(&model_config(), objective, &device).unwrap()
}

/// Four rows of 16 tokens with padding and two segments; repetitive so a few steps can learn.
fn batch() -> HostBatch {
    let rows: [(&[i64], &[i64]); 4] = [
        (&[10, 11, 12, 13, 14, 15], &[16, 17, 18, 19, 20]),
        (&[21, 22, 23, 10, 11], &[12, 13]),
        (&[30, 31, 32, 33, 34, 35, 36, 37, 38], &[39, 40, 41]),
        (&[42, 43, 44], &[]),
    ];
    let seq = 16;
    let (mut ids, mut types, mut mask) = (vec![], vec![], vec![]);
    for (first, second) in rows {
        let mut row_ids = vec![1];
        row_ids.extend_from_slice(first);
        row_ids.push(2);
        let mut row_types = vec![0; row_ids.len()];
        if !second.is_empty() {
            row_ids.extend_from_slice(second);
            row_ids.push(2);
            row_types.resize(row_ids.len(), 1);
        }
        let real = row_ids.len();
        row_ids.resize(seq, 0);
        row_types.resize(seq, 0);
        ids.extend(row_ids);
        types.extend(row_types);
        mask.extend((0..seq).map(|t| i64::from(t < real)));
    }
    HostBatch::new(ids, types, mask, 4, seq).unwrap()
}

/// Collects the ids of every float parameter of a module.
#[derive(Default)]
struct Ids(Vec<ParamId>);

impl<Bk: Backend> ModuleVisitor<Bk> for Ids {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<Bk, D>>) {
        self.0.push(param.id);
    }
}

fn ids<Bk: Backend, M: Module<Bk>>(module: &M) -> Vec<ParamId> {
    let mut visitor = Ids::default();
    module.visit(&mut visitor);
    visitor.0
}

/// Number of parameters of `module` that received a gradient in `grads`.
fn grads_in<M: AutodiffModule<AB>>(
    grads: &mut <AB as AutodiffBackend>::Gradients,
    module: &M,
) -> usize {
    GradientsParams::from_module(grads, module).len()
}

fn max_abs_diff<const D: usize>(a: Tensor<B, D>, b: Tensor<B, D>) -> f32 {
    (a - b).abs().max().into_scalar()
}

/// The generator's MLM logits and the discriminator's hidden states on the fixed batch, without
/// dropout (inner backend).
fn tower_outputs(model: &ElectraPretrainingModel<AB>) -> (Tensor<B, 2>, Tensor<B, 3>) {
    let model = model.valid();
    let device = Default::default();
    let batch = batch();
    let cfg = objective_config(ObjectiveKind::Electra);
    let masked = mask_batch(&batch, &cfg, VOCAB, &mut step_rng(0, 0));
    let t = |v: &[i64], cols: usize| {
        Tensor::<B, 1, Int>::from_data(TensorData::new(v.to_vec(), [v.len()]), &device)
            .reshape([v.len() / cols, cols])
    };
    let mask = electra_model::additive_attention_mask(t(&batch.attention_mask, batch.seq));
    let types = t(&batch.token_type_ids, batch.seq);
    let generator = model
        .generator_logits(
            t(&masked.masked_input_ids, batch.seq),
            types.clone(),
            mask.clone(),
            t(&masked.positions, masked.slots),
        )
        .unwrap();
    let disc = model.discriminator_hidden(t(&batch.input_ids, batch.seq), types, mask);
    (generator, disc)
}

#[test]
fn shared_embeddings_are_stored_once() {
    let _serial = serial();
    let model = build::<B>(&objective_config(ObjectiveKind::Electra));
    let all = ids(&model);
    let mut unique = all.clone();
    unique.sort_by_key(|id| id.val());
    unique.dedup();
    assert_eq!(all.len(), unique.len(), "no parameter is visited twice");
    assert!(model.generator_embeddings.is_none());
    // The towers own no embedding tables: every embedding parameter lives in `embeddings`.
    let embedding_ids = ids(&model.embeddings);
    assert_eq!(
        embedding_ids.len(),
        5,
        "word, position, token type, LN gamma and beta"
    );
    for tower in [
        ids(model.generator.as_ref().unwrap()),
        ids(&model.discriminator),
    ] {
        assert!(tower.iter().all(|id| !embedding_ids.contains(id)));
        assert!(!tower.is_empty());
    }
    // Each tower has its own embeddings_project when its width differs from E = 16: the
    // discriminator (H = 32) does; this generator (H_g = 0.5·32 = 16) needs none.
    assert!(model.discriminator.embeddings_project.is_some());
    assert!(
        model
            .generator
            .as_ref()
            .unwrap()
            .embeddings_project
            .is_none()
    );
    // Untied: the generator gets a second, distinct block.
    let untied = build::<B>(&sharing(EmbeddingSharing::Untied));
    let own = ids(untied.generator_embeddings.as_ref().unwrap());
    assert_eq!(own.len(), 5);
    assert!(own.iter().all(|id| !ids(&untied.embeddings).contains(id)));
    assert_eq!(ids(&untied).len(), all.len() + 5);
    assert!(untied.embedding_deltas.is_none());
    // GDES: one more block, E_Δ (three tables and the discriminator's LayerNorm), with ids of
    // its own, and every parameter still visited once.
    let gdes = build::<B>(&sharing(EmbeddingSharing::Gdes));
    let deltas = ids(gdes.embedding_deltas.as_ref().unwrap());
    assert_eq!(deltas.len(), 5);
    assert!(deltas.iter().all(|id| !ids(&gdes.embeddings).contains(id)));
    let mut every = ids(&gdes);
    assert_eq!(every.len(), all.len() + 5);
    every.sort_by_key(|id| id.val());
    every.dedup();
    assert_eq!(every.len(), all.len() + 5);
    assert!(gdes.generator_embeddings.is_none());
}

/// ELECTRA with `mode` sharing.
fn sharing(mode: EmbeddingSharing) -> ObjectiveConfig {
    ObjectiveConfig {
        embedding_sharing: mode,
        ..objective_config(ObjectiveKind::Electra)
    }
}

/// The reference's untied generator (`run_pretraining.py` with `embedding_size=None`, scope
/// `generator/embeddings`): embeddings of its own hidden width `H_g`, no projection, and an MLM
/// head `H_g → H_g` whose output layer is its own `[V, H_g]` table. Here `E = 16`, `H = 32`,
/// `H_g = 8`: the tied generator projects `16 → 8`; the untied one must not.
#[test]
fn the_untied_generator_has_its_own_embeddings_at_its_own_width() {
    let _serial = serial();
    let config = ObjectiveConfig {
        generator_hidden_multiplier: 0.25,
        ..sharing(EmbeddingSharing::Untied)
    };
    let model = build::<B>(&config);
    let m = model_config();
    let (hg, e) = (8, m.embedding_size);
    let block = model.generator_embeddings.as_ref().unwrap();
    let dims = |p: &Param<Tensor<B, 2>>| p.val().dims();
    assert_eq!(dims(&block.word_embeddings.weight), [VOCAB, hg]);
    assert_eq!(
        dims(&block.position_embeddings.weight),
        [m.max_position_embeddings, hg]
    );
    assert_eq!(
        dims(&block.token_type_embeddings.weight),
        [m.type_vocab_size, hg]
    );
    assert_eq!(block.layer_norm.gamma.val().dims(), [hg]);
    let tower = model.generator.as_ref().unwrap();
    assert!(tower.embeddings_project.is_none(), "no projection");
    assert_eq!(
        tower.layers[0].intermediate.weight.val().dims(),
        [hg, 4 * hg]
    );
    let head = model.generator_predictions.as_ref().unwrap();
    assert_eq!(head.dense.weight.val().dims(), [hg, hg]);
    assert_eq!(head.layer_norm.gamma.val().dims(), [hg]);
    // The discriminator keeps the block of width E with its projection.
    assert_eq!(dims(&model.embeddings.word_embeddings.weight), [VOCAB, e]);
    assert!(model.discriminator.embeddings_project.is_some());
    // Tied, the same generator reads the shared E-wide block through a projection.
    let tied = build::<B>(&ObjectiveConfig {
        embedding_sharing: EmbeddingSharing::Tied,
        ..config.clone()
    });
    assert!(
        tied.generator
            .as_ref()
            .unwrap()
            .embeddings_project
            .is_some()
    );
    assert_eq!(
        tied.generator_predictions
            .as_ref()
            .unwrap()
            .dense
            .weight
            .val()
            .dims(),
        [hg, e]
    );
    // And it trains: the logits cover the vocabulary through the generator's own table.
    let out = model.step(&batch(), 0).unwrap();
    assert_eq!(out.mlm_logits.dims()[1], VOCAB);
    assert!(scalar(&out.loss).is_finite());
}

fn scalar<Bk: Backend>(t: &Tensor<Bk, 1>) -> f64 {
    t.clone().into_data().iter::<f64>().next().unwrap()
}

/// GDES (DeBERTa-v3 §3.3): the RTD loss reaches `E_Δ` and the discriminator's LayerNorm and
/// nothing of `E_G`; the MLM loss reaches `E_G` and nothing of `E_Δ`. (Tied, the RTD loss
/// reaches the shared block: `rtd_loss_sends_no_gradient_into_generator_only_parameters`.)
#[test]
fn gdes_sends_the_rtd_loss_to_the_delta_and_the_mlm_loss_to_e_g() {
    let _serial = serial();
    let model = build::<AB>(&sharing(EmbeddingSharing::Gdes));
    let deltas = model.embedding_deltas.as_ref().unwrap();
    // Parameters of E_G and of E_Δ reached by one loss (a fresh forward pass each).
    let reached = |pick: &dyn Fn(&electra_objective::ObjectiveOutput<AB>) -> Tensor<AB, 1>| {
        let out = model.step(&batch(), 0).unwrap();
        let mut grads = pick(&out).backward();
        (
            grads_in(&mut grads, &model.embeddings),
            grads_in(&mut grads, deltas),
        )
    };
    assert_eq!(
        reached(&|o| o.rtd_loss.clone().unwrap()),
        (0, 5),
        "RTD: E_G is under sg(); E_Δ's three tables and the discriminator's LayerNorm"
    );
    assert_eq!(
        reached(&|o| o.mlm_loss.clone()),
        (5, 0),
        "MLM: E_G's block; never E_Δ"
    );
    assert_eq!(
        reached(&|o| o.loss.clone()),
        (5, 5),
        "the total trains both"
    );
    // Tied, the RTD loss reaches the shared block (the control).
    let tied = build::<AB>(&sharing(EmbeddingSharing::Tied));
    let out = tied.step(&batch(), 0).unwrap();
    let mut grads = out.rtd_loss.clone().unwrap().backward();
    assert_eq!(grads_in(&mut grads, &tied.embeddings), 5);
}

/// With `E_Δ = 0` and the same initial draws, GDES computes at step 0 exactly what tied
/// sharing computes, every loss and logit bit for bit (also under dropout and sampling).
#[test]
fn gdes_step_zero_equals_tied_exactly() {
    let _serial = serial();
    let tied = build::<B>(&sharing(EmbeddingSharing::Tied));
    let gdes = build::<B>(&sharing(EmbeddingSharing::Gdes));
    // Warm-up: flex's first pass can sum in another order.
    let _ = tied.step(&batch(), 0).unwrap();
    let (a, b) = (
        tied.step(&batch(), 0).unwrap(),
        gdes.step(&batch(), 0).unwrap(),
    );
    for (name, x, y) in [
        ("loss", &a.loss, &b.loss),
        ("mlm_loss", &a.mlm_loss, &b.mlm_loss),
        (
            "rtd_loss",
            a.rtd_loss.as_ref().unwrap(),
            b.rtd_loss.as_ref().unwrap(),
        ),
    ] {
        assert_eq!(scalar(x).to_bits(), scalar(y).to_bits(), "{name}");
    }
    assert_eq!(a.sampled_ids, b.sampled_ids);
    let logits = |o: &electra_objective::ObjectiveOutput<B>| -> Vec<f32> {
        o.discriminator_logits
            .clone()
            .unwrap()
            .into_data()
            .to_vec()
            .unwrap()
    };
    assert_eq!(logits(&a), logits(&b));
}

/// Export and fine-tuning see `E_G + E_Δ`: after training steps (so `E_Δ ≠ 0`) the folded
/// block gives the discriminator tower exactly the input it trained on, and dropping `E_Δ`
/// (reading `E_G` alone) gives another.
#[test]
fn gdes_folds_e_g_plus_delta_into_the_discriminator_block() {
    let _serial = serial();
    let mut model = build::<AB>(&sharing(EmbeddingSharing::Gdes));
    for _ in 0..2 {
        model = sgd_step(model, |out| out.loss.clone());
    }
    let model = model.valid();
    let batch = batch();
    let device = Default::default();
    let t = |v: &[i64]| {
        Tensor::<B, 1, Int>::from_data(TensorData::new(v.to_vec(), [v.len()]), &device)
            .reshape([batch.batch, batch.seq])
    };
    let (ids, types) = (t(&batch.input_ids), t(&batch.token_type_ids));
    let trained = model.discriminator_embedding_output(ids.clone(), types.clone());
    let folded = model.discriminator_embeddings();
    let exported = folded.forward(ids.clone(), types.clone());
    assert!(max_abs_diff(trained.clone(), exported) < 1e-6);
    let delta = model.embedding_deltas.as_ref().unwrap();
    assert!(
        delta.word_embeddings.weight.val().abs().max().into_scalar() > 0.0,
        "E_Δ trained"
    );
    let without_delta = model.embeddings.forward(ids, types);
    assert!(max_abs_diff(trained, without_delta) > 1e-4, "E_Δ matters");
    // Tied and untied models export their own block unchanged.
    let tied = build::<B>(&sharing(EmbeddingSharing::Tied));
    let same = tied.discriminator_embeddings();
    assert_eq!(
        same.word_embeddings.weight.val().into_data(),
        tied.embeddings.word_embeddings.weight.val().into_data()
    );
}

/// One SGD step on `loss_of(output)` only.
fn sgd_step(
    model: ElectraPretrainingModel<AB>,
    loss_of: impl Fn(&electra_objective::ObjectiveOutput<AB>) -> Tensor<AB, 1>,
) -> ElectraPretrainingModel<AB> {
    let out = model.step(&batch(), 0).unwrap();
    let grads = GradientsParams::from_grads(loss_of(&out).backward(), &model);
    SgdConfig::new().init().step(0.5, model, grads)
}

#[test]
fn shared_embeddings_step_changes_what_both_towers_see() {
    let _serial = serial();
    // An RTD-only step reaches the generator only through the shared embeddings (the RTD loss
    // sends nothing into generator-only parameters), so the generator's output must change.
    let model = build::<AB>(&objective_config(ObjectiveKind::Electra));
    let (gen_before, disc_before) = tower_outputs(&model);
    let word_before = model.embeddings.word_embeddings.weight.val().inner();
    let model = sgd_step(model, |out| out.rtd_loss.clone().unwrap());
    let (gen_after, disc_after) = tower_outputs(&model);
    assert!(
        max_abs_diff(
            word_before,
            model.embeddings.word_embeddings.weight.val().inner()
        ) > 0.0
    );
    assert!(
        max_abs_diff(disc_before, disc_after) > 1e-6,
        "discriminator changed"
    );
    assert!(
        max_abs_diff(gen_before, gen_after) > 1e-6,
        "generator sees the updated embeddings"
    );

    // And an MLM-only step changes what the discriminator sees.
    let model = build::<AB>(&objective_config(ObjectiveKind::Electra));
    let (_, disc_before) = tower_outputs(&model);
    let model = sgd_step(model, |out| out.mlm_loss.clone());
    let (_, disc_after) = tower_outputs(&model);
    assert!(
        max_abs_diff(disc_before, disc_after) > 1e-6,
        "discriminator sees the update"
    );

    // Control: with untied embeddings the same RTD-only step leaves the generator untouched.
    let model = build::<AB>(&sharing(EmbeddingSharing::Untied));
    let (gen_before, _) = tower_outputs(&model);
    let model = sgd_step(model, |out| out.rtd_loss.clone().unwrap());
    let (gen_after, _) = tower_outputs(&model);
    assert_eq!(max_abs_diff(gen_before, gen_after), 0.0);
}

#[test]
fn rtd_loss_sends_no_gradient_into_generator_only_parameters() {
    let _serial = serial();
    let model = build::<AB>(&objective_config(ObjectiveKind::Electra));
    let out = model.step(&batch(), 0).unwrap();
    let mut grads = out.rtd_loss.clone().unwrap().backward();
    assert_eq!(grads_in(&mut grads, model.generator.as_ref().unwrap()), 0);
    assert_eq!(
        grads_in(&mut grads, model.generator_predictions.as_ref().unwrap()),
        0
    );
    // The check is not vacuous: the discriminator and the shared embeddings do get gradients.
    assert_eq!(
        grads_in(&mut grads, &model.discriminator),
        ids(&model.discriminator).len()
    );
    assert!(
        grads_in(
            &mut grads,
            model.discriminator_predictions.as_ref().unwrap()
        ) > 0
    );
    assert!(grads_in(&mut grads, &model.embeddings) > 0);
}

#[test]
fn target_loss_trains_the_discriminator_sized_network_in_the_mlm_ablations() {
    // Replace MLM and All-Tokens MLM learn only through `target_loss`: it must reach every
    // parameter of the discriminator-sized encoder and its MLM head (not just the output bias),
    // none of the generator's (its samples are discrete), and fall when trained on alone.
    let _serial = serial();
    for kind in [ObjectiveKind::ReplaceMlm, ObjectiveKind::AllTokensMlm] {
        let mut model = build::<AB>(&objective_config(kind));
        let out = model.step(&batch(), 0).unwrap();
        let mut grads = out.target_loss.clone().unwrap().backward();
        let head = model.mlm_predictions.as_ref().unwrap();
        assert_eq!(
            grads_in(&mut grads, &model.discriminator),
            ids(&model.discriminator).len(),
            "{kind:?}"
        );
        assert_eq!(grads_in(&mut grads, head), ids(head).len(), "{kind:?}");
        assert!(grads_in(&mut grads, &model.embeddings) > 0, "{kind:?}");
        assert_eq!(grads_in(&mut grads, model.generator.as_ref().unwrap()), 0);
        let target = |out: &electra_objective::ObjectiveOutput<AB>| -> f32 {
            out.target_loss.clone().unwrap().into_scalar()
        };
        let first = target(&out);
        let mut optim = AdamConfig::new().init();
        let mut last = first;
        for _ in 0..8 {
            let out = model.step(&batch(), 0).unwrap();
            last = target(&out);
            let grads = GradientsParams::from_grads(out.target_loss.unwrap().backward(), &model);
            model = optim.step(3e-3, model, grads);
        }
        assert!(
            last < 0.9 * first,
            "{kind:?}: target loss {first} -> {last}"
        );
    }
}

#[test]
fn mlm_loss_sends_no_gradient_into_discriminator_only_parameters() {
    let _serial = serial();
    let model = build::<AB>(&objective_config(ObjectiveKind::Electra));
    let out = model.step(&batch(), 0).unwrap();
    let mut grads = out.mlm_loss.clone().backward();
    assert_eq!(grads_in(&mut grads, &model.discriminator), 0);
    assert_eq!(
        grads_in(
            &mut grads,
            model.discriminator_predictions.as_ref().unwrap()
        ),
        0
    );
    let generator = model.generator.as_ref().unwrap();
    assert_eq!(grads_in(&mut grads, generator), ids(generator).len());
    assert!(grads_in(&mut grads, model.generator_predictions.as_ref().unwrap()) > 0);
    assert!(grads_in(&mut grads, &model.embeddings) > 0);
}

#[test]
fn total_gradient_is_weighted_sum_of_both_losses() {
    let _serial = serial();
    // Spec 1.1 / 2.3: one loss, gen_weight·MLM + λ·RTD; the shared word embeddings accumulate
    // the generator's and λ times the discriminator's gradient.
    let model = build::<AB>(&objective_config(ObjectiveKind::Electra));
    let word = model.embeddings.word_embeddings.weight.val();
    // Warm-up: flex's first pass can sum in another order (~1e-5 relative), so compare later
    // passes only.
    let _ = model.step(&batch(), 0).unwrap();
    let grad = |pick: &dyn Fn(&electra_objective::ObjectiveOutput<AB>) -> Tensor<AB, 1>| {
        let out = model.step(&batch(), 0).unwrap();
        word.grad(&pick(&out).backward()).unwrap()
    };
    let total = grad(&|o| o.loss.clone());
    let mlm = grad(&|o| o.mlm_loss.clone());
    let rtd = grad(&|o| o.rtd_loss.clone().unwrap());
    let diff = max_abs_diff(total.clone(), mlm + rtd.mul_scalar(50.0));
    let scale: f32 = total.abs().max().into_scalar();
    assert!(
        scale > 0.0 && diff <= 1e-4 * scale,
        "diff {diff}, scale {scale}"
    );
}

#[test]
fn given_replacements_label_equal_samples_original() {
    let _serial = serial();
    let cfg = objective_config(ObjectiveKind::Electra);
    let model = build::<B>(&cfg);
    let batch = batch();
    let masked = mask_batch(&batch, &cfg, VOCAB, &mut step_rng(3, 3));
    let sampled: Vec<i64> = masked
        .targets
        .iter()
        .enumerate()
        .map(|(i, &t)| if i % 2 == 0 { t } else { 4 + (t + 7) % 50 })
        .collect();
    let out = model
        .forward(&batch, &masked, Replacements::Given(&sampled))
        .unwrap();
    let labels = out.labels.clone().unwrap();
    let disc_ids = out.discriminator_input_ids.clone().unwrap();
    let mut replaced = 0;
    for (i, &sample) in sampled.iter().enumerate() {
        if masked.weights[i] == 1.0 {
            let flat = (i / masked.slots) * batch.seq + masked.positions[i] as usize;
            assert_eq!(disc_ids[flat], sample);
            assert_eq!(labels[flat], i64::from(i % 2 == 1), "slot {i}");
            replaced += usize::from(i % 2 == 1);
        }
    }
    assert_eq!(labels.iter().sum::<i64>() as usize, replaced);
    let metrics = StepMetrics::compute(&out);
    let active = masked.active();
    let equal = (0..masked.weights.len())
        .filter(|&i| masked.weights[i] == 1.0 && i % 2 == 0)
        .count();
    assert_eq!(metrics.masked_tokens, active);
    assert!(
        (metrics.sampled_equals_original.unwrap() - equal as f64 / active as f64).abs() < 1e-12
    );
}

#[test]
fn samples_follow_the_tempered_softmax() {
    let _serial = serial();
    let device = Default::default();
    B::seed(&device, 99);
    let n = 20_000;
    let row = [1.0f32, 0.0, -1.0, 2.0];
    let logits = Tensor::<B, 1>::from_data(TensorData::new(row.to_vec(), [4]), &device)
        .reshape([1, 4])
        .repeat_dim(0, n);
    for temperature in [1.0, 2.0] {
        let samples: Vec<i64> = sample_from_softmax(logits.clone(), temperature, None);
        let z: f32 = row.iter().map(|x| (x / temperature as f32).exp()).sum();
        for (k, x) in row.iter().enumerate() {
            let p = (x / temperature as f32).exp() / z;
            let freq = samples.iter().filter(|&&s| s == k as i64).count() as f32 / n as f32;
            // Standard error ≤ 0.0036; allow 5σ.
            assert!(
                (freq - p).abs() < 0.018,
                "T={temperature} id {k}: {freq} vs {p}"
            );
        }
    }
}

#[test]
fn disallow_correct_never_samples_the_original() {
    let _serial = serial();
    let device = Default::default();
    B::seed(&device, 7);
    let n = 2000;
    // The original (id 3) is by far the most likely token.
    let row = [0.0f32, 0.0, 0.0, 8.0, 0.0];
    let logits = Tensor::<B, 1>::from_data(TensorData::new(row.to_vec(), [5]), &device)
        .reshape([1, 5])
        .repeat_dim(0, n);
    let original = vec![3i64; n];
    let count = |t: Vec<i64>| t.into_iter().filter(|&s| s == 3).count();
    assert!(count(sample_from_softmax(logits.clone(), 1.0, None)) > n * 9 / 10);
    assert_eq!(count(sample_from_softmax(logits, 1.0, Some(&original))), 0);
}

#[test]
fn disallow_correct_config_makes_every_masked_token_replaced() {
    let _serial = serial();
    let cfg = ObjectiveConfig {
        disallow_correct: true,
        ..objective_config(ObjectiveKind::Electra)
    };
    let model = build::<B>(&cfg);
    let out = model.step(&batch(), 2).unwrap();
    let m = StepMetrics::compute(&out);
    assert_eq!(m.sampled_equals_original, Some(0.0));
    assert_eq!(
        out.labels.unwrap().iter().sum::<i64>() as usize,
        m.masked_tokens
    );
}

#[test]
fn a_step_is_reproducible_from_seed_and_step() {
    let _serial = serial();
    let cfg = objective_config(ObjectiveKind::Electra);
    let a = build::<AB>(&cfg);
    let b = build::<AB>(&cfg);
    let batch = batch();
    let (x, y) = (a.step(&batch, 9).unwrap(), b.step(&batch, 9).unwrap());
    assert_eq!(x.sampled_ids, y.sampled_ids);
    assert_eq!(x.labels, y.labels);
    assert_eq!(StepMetrics::compute(&x), StepMetrics::compute(&y));
    let z = a.step(&batch, 10).unwrap();
    assert_ne!(x.discriminator_input_ids, z.discriminator_input_ids);
}

/// Checks the output shapes of `kind` and trains a few Adam steps on one batch.
fn shapes_and_training(kind: ObjectiveKind) {
    let cfg = objective_config(kind);
    let mut model = build::<AB>(&cfg);
    let batch = batch();
    let (b, s) = (batch.batch, batch.seq);
    let out = model.step(&batch, 0).unwrap();
    let n = out.mlm_targets.len() / b;
    assert_eq!(n, ((0.15 + 0.005) * s as f64) as usize);
    assert_eq!(out.loss.dims(), [1]);
    assert_eq!(out.mlm_logits.dims(), [b * n, VOCAB]);
    let has_rtd = matches!(kind, ObjectiveKind::Electra | ObjectiveKind::Electra15);
    assert_eq!(out.rtd_loss.is_some(), has_rtd);
    assert_eq!(
        out.target_loss.is_some(),
        matches!(
            kind,
            ObjectiveKind::ReplaceMlm | ObjectiveKind::AllTokensMlm
        )
    );
    assert_eq!(
        out.sampled_ids.as_ref().map(Vec::len),
        kind.uses_generator().then_some(b * n)
    );
    assert_eq!(
        out.labels.as_ref().map(Vec::len),
        kind.uses_generator().then_some(b * s)
    );
    if let Some(logits) = &out.discriminator_logits {
        assert_eq!(logits.dims(), [b, s]);
    }
    let metrics = StepMetrics::compute(&out);
    assert_eq!(metrics.rtd_loss.is_some(), has_rtd);
    assert_eq!(metrics.disc_f1.is_some(), has_rtd);
    assert!(metrics.loss.is_finite() && metrics.loss > 0.0);
    // Loss formula per objective.
    let expected = match kind {
        ObjectiveKind::Mlm => metrics.mlm_loss,
        ObjectiveKind::Electra | ObjectiveKind::Electra15 => {
            metrics.mlm_loss + 50.0 * metrics.rtd_loss.unwrap()
        }
        _ => metrics.mlm_loss + metrics.target_loss.unwrap(),
    };
    assert!(
        (metrics.loss - expected).abs() < 1e-4 * expected,
        "{kind:?}"
    );
    if kind == ObjectiveKind::Electra15 {
        let weights = out.rtd_weights.as_ref().unwrap();
        assert_eq!(weights.iter().sum::<f32>() as usize, metrics.masked_tokens);
    } else if kind == ObjectiveKind::Electra {
        let weights = out.rtd_weights.as_ref().unwrap();
        assert_eq!(
            weights.iter().sum::<f32>() as i64,
            batch.attention_mask.iter().sum::<i64>()
        );
    }

    // Same (seed, step) every time: same masks, noise and dropout, so the loss must go down.
    let mut optim = AdamConfig::new().init();
    let first = metrics.loss;
    let mut last = first;
    for _ in 0..8 {
        let out = model.step(&batch, 0).unwrap();
        last = StepMetrics::compute(&out).loss;
        let grads = GradientsParams::from_grads(out.loss.backward(), &model);
        model = optim.step(3e-3, model, grads);
    }
    assert!(last < 0.9 * first, "{kind:?}: loss {first} -> {last}");
}

#[test]
fn electra_objective_shapes_and_training() {
    let _serial = serial();
    shapes_and_training(ObjectiveKind::Electra);
}

#[test]
fn mlm_objective_shapes_and_training() {
    let _serial = serial();
    shapes_and_training(ObjectiveKind::Mlm);
}

#[test]
fn electra_15_objective_shapes_and_training() {
    let _serial = serial();
    shapes_and_training(ObjectiveKind::Electra15);
}

#[test]
fn replace_mlm_objective_shapes_and_training() {
    let _serial = serial();
    shapes_and_training(ObjectiveKind::ReplaceMlm);
}

#[test]
fn all_tokens_mlm_objective_shapes_and_training() {
    let _serial = serial();
    shapes_and_training(ObjectiveKind::AllTokensMlm);
}

#[test]
fn mlm_baseline_has_no_generator_and_a_discriminator_sized_mlm_head() {
    let _serial = serial();
    let model = build::<B>(&objective_config(ObjectiveKind::Mlm));
    assert!(model.generator.is_none() && model.generator_predictions.is_none());
    assert!(model.discriminator_predictions.is_none());
    let head = model.mlm_predictions.as_ref().unwrap();
    assert_eq!(head.dense.weight.val().dims(), [32, 16], "H → E");
}

#[test]
fn a_micro_batch_of_short_rows_steps_with_the_configured_budget() {
    // Rows of at most 6 tokens, padded to 6 by the loader, in a run configured for 32 tokens:
    // N = floor(0.155·32) = 4 slots per row and one active slot per row (round(0.15·n) < 1
    // clamps to 1), in every objective. A budget from the padded length (floor(0.155·6) = 0)
    // made this step fail.
    let _serial = serial();
    let ids = vec![1, 10, 11, 12, 13, 2, 1, 20, 21, 2, 0, 0];
    let mask = vec![1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0];
    let short = HostBatch::new(ids, vec![0; 12], mask, 2, 6)
        .unwrap()
        .with_max_seq_len(32)
        .unwrap();
    for kind in ObjectiveKind::ALL {
        let model = build::<AB>(&objective_config(kind));
        let out = model.step(&short, 0).unwrap();
        assert_eq!(out.mlm_weights.len(), 2 * 4, "{}", kind.name());
        assert_eq!(
            out.mlm_weights.iter().filter(|&&w| w == 1.0).count(),
            2,
            "{}",
            kind.name()
        );
        let loss: f32 = out.loss.into_scalar();
        assert!(loss.is_finite(), "{}: loss {loss}", kind.name());
    }
}

#[test]
fn generator_size_follows_the_multipliers() {
    let _serial = serial();
    let cfg = ObjectiveConfig {
        generator_hidden_multiplier: 0.25,
        generator_layers_multiplier: 0.5,
        ..objective_config(ObjectiveKind::Electra)
    };
    let model = build::<B>(&cfg);
    let generator = model.generator.as_ref().unwrap();
    assert_eq!(generator.layers.len(), 1);
    // E = 16 → H_g = 8, FFN 32.
    let project = generator.embeddings_project.as_ref().unwrap();
    assert_eq!(project.weight.val().dims(), [16, 8]);
    assert_eq!(
        generator.layers[0].intermediate.weight.val().dims(),
        [8, 32]
    );
}

#[test]
fn bad_inputs_are_errors_not_panics() {
    let _serial = serial();
    let cfg = objective_config(ObjectiveKind::Electra);
    let model = build::<B>(&cfg);
    let mut bad = batch();
    bad.input_ids[5] = VOCAB as i64;
    let err = model.step(&bad, 0).unwrap_err().to_string();
    assert!(err.contains("input_ids[0][5]"), "{err}");
    let mut bad = batch();
    bad.token_type_ids[3] = 2;
    let err = model.step(&bad, 0).unwrap_err().to_string();
    assert!(err.contains("token_type_ids[0][3]"), "{err}");
    // A configured length too short for any prediction slot (floor(0.155·6) = 0).
    let short = HostBatch::new(vec![1, 10, 11, 12, 13, 2], vec![0; 6], vec![1; 6], 1, 6).unwrap();
    let err = model.step(&short, 0).unwrap_err().to_string();
    assert!(
        err.contains("no prediction slots") && err.contains("max_seq_len"),
        "{err}"
    );
    let batch = batch();
    let masked = mask_batch(&batch, &cfg, VOCAB, &mut step_rng(0, 0));
    let err = model
        .forward(&batch, &masked, Replacements::Given(&[1, 2]))
        .unwrap_err()
        .to_string();
    assert!(err.contains("replacements"), "{err}");
    let err = ElectraPretrainingModel::<B>::new(
        &model_config(),
        &ObjectiveConfig {
            mask_token_id: 999,
            ..cfg
        },
        &Default::default(),
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("mask_token_id"), "{err}");
}
