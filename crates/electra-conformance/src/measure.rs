//! Everything the conformance run computes on one backend, read back to the host.
//!
//! [`Measure`] runs, on whichever backend [`electra_backend::dispatch`] picks:
//!
//! 1. the HF parity fixtures: both tiny checkpoints, every recorded activation;
//! 2. the PyTorch loss fixture: the same checkpoints as one pre-training model, with the
//!    fixture's slots and replacements;
//! 3. two checks of the sampler: rows whose answer is certain whatever the noise,
//!    and token frequencies against the softmax over many draws;
//! 4. a few pre-training steps of the `tiny` model (objective forward, backward, the reference
//!    Adam with global-norm clipping) on a fixed batch.
//!
//! Step 4 must compute the same function on every backend, so three things that would differ
//! are fixed: the initial weights are drawn once on flex and loaded on the device; dropout is
//! off (its masks come from the backend's RNG); and the generator's samples, which come from
//! Gumbel noise drawn with the backend's RNG, are taken from the flex run and given to the
//! device run (`Replacements::Given`). Losses, gradients and updates do not depend on how the
//! replacement ids were drawn, only on which they are; the sampler itself is checked in step 3.
//! Masking runs on the host from `(seed, step)`, so it is already the same everywhere.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, bail};
use burn::backend::Autodiff;
use burn::optim::GradientsParams;
use burn::prelude::*;
use burn::tensor::backend::AutodiffBackend;
use burn_store::{ModuleSnapshot, SafetensorsStore};
use electra_model::{ElectraConfig, hf};
use electra_objective::{
    ElectraPretrainingModel, HostBatch, ObjectiveConfig, Replacements, mask_batch,
    sample_from_softmax, step_rng,
};
use electra_train::{AdamConfig, ElectraAdam};

use electra_backend::BackendTask;

use crate::fixtures::{ObjectiveFixture, hf_inputs};
use crate::report::max_abs_diff;

/// Draws in the sampler's frequency check (4 tokens; σ of a frequency ≤ 0.0035).
pub const SAMPLING_ROWS: usize = 20_000;
/// The sampler check's logits (one row, repeated) and temperature.
pub const SAMPLING_LOGITS: [f32; 4] = [0.0, 0.5, 1.0, 1.5];
/// Temperature of the frequency check (not 1, so that the division is exercised).
pub const SAMPLING_TEMPERATURE: f64 = 2.0;
/// Backend seed of the sampler checks.
const SAMPLING_SEED: u64 = 7;
/// Rows and vocabulary of the sampler's certain-answer check.
const FORCED_ROWS: usize = 64;
const FORCED_VOCAB: usize = 50;

/// Seed of the training steps: initial weights (drawn on flex) and masking.
pub const TRAIN_SEED: u64 = 42;
/// Constant learning rate of the training steps (the `tiny` preset's peak); constant so that
/// every step moves every parameter that has a gradient.
pub const LEARNING_RATE: f64 = 1e-3;

/// The training part's size.
#[derive(Clone, Copy, Debug, serde::Serialize)]
pub struct TrainingSetup {
    /// Optimizer steps.
    pub steps: u64,
    /// Sequences in the batch.
    pub batch_size: usize,
    /// Tokens per sequence.
    pub seq_len: usize,
}

/// One optimizer step's results.
#[derive(Clone, Debug)]
pub struct StepResult {
    /// Generator MLM loss.
    pub mlm_loss: f64,
    /// Discriminator RTD loss.
    pub rtd_loss: f64,
    /// `mlm_loss + 50·rtd_loss`.
    pub loss: f64,
    /// Global gradient norm before clipping.
    pub grad_norm: f64,
    /// Every parameter after the update, by path.
    pub parameters: BTreeMap<String, Vec<f32>>,
    /// The largest change of any parameter in this step, `max |θ_after − θ_before|`.
    pub max_update: f64,
    /// The replacements the discriminator saw, `[b, N]`.
    pub sampled_ids: Vec<i64>,
    /// Seconds from the forward pass to the updated parameters being ready.
    pub seconds: f64,
}

/// What [`Measure`] returns.
#[derive(Clone, Debug)]
pub struct Measurements {
    /// Activations and logits, flattened, by name (see [`crate::fixtures::hf_expected`]).
    pub tensors: BTreeMap<String, Vec<f64>>,
    /// Losses of the PyTorch loss fixture (`objective.*`).
    pub losses: BTreeMap<String, f64>,
    /// Rows of the certain-answer sampler check that came out wrong.
    pub forced_sampling_errors: usize,
    /// Frequencies of the [`SAMPLING_LOGITS`] tokens over [`SAMPLING_ROWS`] draws.
    pub sampling_frequencies: Vec<f64>,
    /// The training steps.
    pub steps: Vec<StepResult>,
    /// The initial training weights (safetensors bytes).
    pub initial_weights: Vec<u8>,
}

/// The measurement run on one backend.
pub struct Measure<'a> {
    /// The HF parity fixture directory.
    pub hf_dir: PathBuf,
    /// The PyTorch loss fixture directory.
    pub objective_dir: PathBuf,
    /// The training part's size.
    pub setup: TrainingSetup,
    /// `None`: draw the initial weights here and sample replacements (the reference run).
    /// `Some`: load these weights and use these replacements per step.
    pub reference: Option<&'a Measurements>,
    /// Called with a short description of each stage as it starts.
    pub progress: &'a dyn Fn(&str),
}

impl BackendTask for Measure<'_> {
    type Output = anyhow::Result<Measurements>;

    fn run<B: Backend>(self, device: B::Device) -> anyhow::Result<Measurements> {
        (self.progress)("HF parity fixtures");
        let mut tensors = hf_activations::<B>(&self, &device)?;
        (self.progress)("PyTorch loss fixture");
        let losses = objective_fixture::<B>(&self, &device, &mut tensors)?;
        (self.progress)("sampler");
        let (forced_sampling_errors, sampling_frequencies) = sampling::<B>(&device);
        let (steps, initial_weights) = training::<Autodiff<B>>(&self, &device)?;
        Ok(Measurements {
            tensors,
            losses,
            forced_sampling_errors,
            sampling_frequencies,
            steps,
            initial_weights,
        })
    }
}

fn host<B: Backend, const D: usize>(tensor: Tensor<B, D>) -> anyhow::Result<Vec<f64>> {
    Ok(tensor
        .into_data()
        .convert::<f32>()
        .to_vec::<f32>()
        .map_err(|e| anyhow::anyhow!("cannot read a tensor back: {e:?}"))?
        .into_iter()
        .map(f64::from)
        .collect())
}

fn scalar<B: Backend>(tensor: Tensor<B, 1>) -> anyhow::Result<f64> {
    host(tensor)?
        .first()
        .copied()
        .context("an empty loss tensor")
}

/// Step 1: every activation `expected.json` records, under the same names.
fn hf_activations<B: Backend>(
    task: &Measure<'_>,
    device: &B::Device,
) -> anyhow::Result<BTreeMap<String, Vec<f64>>> {
    let inputs = hf_inputs(&task.hf_dir)?;
    let mut out = BTreeMap::new();
    let dir = task.hf_dir.join("discriminator");
    let (disc, config) = hf::load_pretraining::<B>(&dir, device)
        .with_context(|| format!("cannot load {}", dir.display()))?;
    let x = inputs.to_tensors::<B>(&config.model, device)?;
    let all = disc.electra.forward_all(
        x.input_ids.clone(),
        x.token_type_ids.clone(),
        x.attention_mask.clone(),
    );
    out.insert(
        "discriminator.embedding_output".into(),
        host(all.embedding_output)?,
    );
    out.insert(
        "discriminator.hidden_states".into(),
        host(Tensor::stack::<4>(all.hidden_states, 0))?,
    );
    let logits = disc.forward(x.input_ids, x.token_type_ids, x.attention_mask);
    out.insert("discriminator.logits".into(), host(logits)?);

    let dir = task.hf_dir.join("generator");
    let (generator, config) = hf::load_masked_lm::<B>(&dir, device)
        .with_context(|| format!("cannot load {}", dir.display()))?;
    let x = inputs.to_tensors::<B>(&config.model, device)?;
    let all = generator.electra.forward_all(
        x.input_ids.clone(),
        x.token_type_ids.clone(),
        x.attention_mask.clone(),
    );
    out.insert(
        "generator.embedding_output".into(),
        host(all.embedding_output)?,
    );
    out.insert(
        "generator.hidden_states".into(),
        host(Tensor::stack::<4>(all.hidden_states, 0))?,
    );
    let logits = generator.forward(x.input_ids, x.token_type_ids, x.attention_mask);
    out.insert("generator.logits".into(), host(logits)?);
    Ok(out)
}

/// Step 2: the HF checkpoints assembled into one pre-training model (their embedding blocks
/// are identical, spec 2.3) and run on the fixture's slots and replacements; the logits go
/// into `tensors`, the losses are returned.
fn objective_fixture<B: Backend>(
    task: &Measure<'_>,
    device: &B::Device,
    tensors: &mut BTreeMap<String, Vec<f64>>,
) -> anyhow::Result<BTreeMap<String, f64>> {
    let fixture = ObjectiveFixture::read(&task.hf_dir, &task.objective_dir)?;
    let (disc, _) = hf::load_pretraining::<B>(&task.hf_dir.join("discriminator"), device)?;
    let (generator, _) = hf::load_masked_lm::<B>(&task.hf_dir.join("generator"), device)?;
    let [pad, cls, sep, mask] = fixture.special_ids;
    let objective = ObjectiveConfig {
        gen_weight: fixture.weights.0,
        disc_weight: fixture.weights.1,
        pad_token_id: pad,
        cls_token_id: cls,
        sep_token_id: sep,
        mask_token_id: mask,
        ..ObjectiveConfig::default()
    };
    let model = ElectraPretrainingModel::from_hf(disc, generator, objective);
    let out = model.forward(
        &fixture.batch,
        &fixture.masked,
        Replacements::Given(&fixture.sampled_ids),
    )?;
    tensors.insert(
        "objective.generator_logits".into(),
        host(out.mlm_logits.clone())?,
    );
    let (Some(disc_logits), Some(rtd)) = (out.discriminator_logits, out.rtd_loss) else {
        bail!("the ELECTRA objective returned no discriminator output");
    };
    tensors.insert("objective.discriminator_logits".into(), host(disc_logits)?);
    Ok(BTreeMap::from([
        ("objective.mlm_loss".to_string(), scalar(out.mlm_loss)?),
        ("objective.rtd_loss".to_string(), scalar(rtd)?),
        ("objective.loss".to_string(), scalar(out.loss)?),
    ]))
}

/// Step 3. (a) Rows where one token's logit is 80 above the rest and another's 40: the first
/// holds all but e^-40 of the probability, so it must be drawn, and with `disallow` (−1000 on
/// the first) the second must; returns how many rows did not. (b) The
/// frequencies of [`SAMPLING_ROWS`] draws from one tempered distribution.
fn sampling<B: Backend>(device: &B::Device) -> (usize, Vec<f64>) {
    B::seed(device, SAMPLING_SEED);
    let (n, v) = (FORCED_ROWS, FORCED_VOCAB);
    let first: Vec<i64> = (0..n).map(|i| ((7 * i + 3) % v) as i64).collect();
    let second: Vec<i64> = first
        .iter()
        .enumerate()
        .map(|(i, &f)| (f + 1 + (i % (v - 1)) as i64) % v as i64)
        .collect();
    let mut logits = vec![0.0f32; n * v];
    for i in 0..n {
        logits[i * v + first[i] as usize] = 80.0;
        logits[i * v + second[i] as usize] = 40.0;
    }
    let logits = Tensor::<B, 2>::from_data(TensorData::new(logits, [n, v]), device);
    let plain = sample_from_softmax(logits.clone(), 1.0, None);
    let disallowed = sample_from_softmax(logits, 1.0, Some(&first));
    let errors = plain.iter().zip(&first).filter(|(a, b)| a != b).count()
        + disallowed
            .iter()
            .zip(&second)
            .filter(|(a, b)| a != b)
            .count()
        + 2 * n.saturating_sub(plain.len().min(disallowed.len()));

    let k = SAMPLING_LOGITS.len();
    let row = Tensor::<B, 1>::from_data(TensorData::new(SAMPLING_LOGITS.to_vec(), [k]), device);
    let logits = row.unsqueeze_dim::<2>(0).repeat_dim(0, SAMPLING_ROWS);
    let mut counts = vec![0usize; k];
    for id in sample_from_softmax(logits, SAMPLING_TEMPERATURE, None) {
        if let Some(c) = usize::try_from(id).ok().and_then(|i| counts.get_mut(i)) {
            *c += 1;
        }
    }
    let frequencies = counts
        .iter()
        .map(|&c| c as f64 / SAMPLING_ROWS as f64)
        .collect();
    (errors, frequencies)
}

/// The softmax probabilities the frequency check should find.
pub fn sampling_probabilities() -> Vec<f64> {
    let scaled: Vec<f64> = SAMPLING_LOGITS
        .iter()
        .map(|&l| f64::from(l) / SAMPLING_TEMPERATURE)
        .collect();
    let z: f64 = scaled.iter().map(|x| x.exp()).sum();
    scaled.iter().map(|x| x.exp() / z).collect()
}

/// The `tiny` model with dropout off (see the module docs).
pub fn training_model_config() -> ElectraConfig {
    ElectraConfig {
        hidden_dropout_prob: 0.0,
        attention_probs_dropout_prob: 0.0,
        ..ElectraConfig::tiny()
    }
}

/// A fixed batch of `[CLS] A [SEP] B [SEP]` rows from a SplitMix64 stream: row `r` has
/// `seq − r·seq/(2·batch)` real tokens (the first row is full, later rows are padded), ids in
/// `[1000, vocab)` (clear of BERT's special ids).
pub fn training_batch(
    setup: &TrainingSetup,
    vocab: usize,
    objective: &ObjectiveConfig,
) -> anyhow::Result<HostBatch> {
    let (b, s) = (setup.batch_size, setup.seq_len);
    let mut state = TRAIN_SEED;
    let mut next = move || {
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    };
    let span = vocab.saturating_sub(1000).max(1) as u64;
    let (mut ids, mut types, mut mask) = (vec![0; b * s], vec![0; b * s], vec![0; b * s]);
    for r in 0..b {
        let len = s - r * s / (2 * b);
        let a_end = len / 2;
        for t in 0..len {
            let i = r * s + t;
            ids[i] = if t == 0 {
                objective.cls_token_id
            } else if t == a_end || t == len - 1 {
                objective.sep_token_id
            } else {
                1000 + (next() % span) as i64
            };
            types[i] = i64::from(t > a_end);
            mask[i] = 1;
        }
    }
    Ok(HostBatch::new(ids, types, mask, b, s)?)
}

/// Every parameter of `model`, by path.
fn parameters<B: Backend, M: ModuleSnapshot<B>>(
    model: &M,
) -> anyhow::Result<BTreeMap<String, Vec<f32>>> {
    model
        .collect(None, None, false)
        .into_iter()
        .map(|snapshot| {
            let path = snapshot.full_path();
            let data = snapshot
                .to_data()
                .map_err(|e| anyhow::anyhow!("cannot read parameter {path}: {e:?}"))?;
            let values = data
                .convert::<f32>()
                .to_vec::<f32>()
                .map_err(|e| anyhow::anyhow!("cannot read parameter {path}: {e:?}"))?;
            Ok((path, values))
        })
        .collect()
}

/// Step 4 (see the module docs). Returns the steps and the initial weights.
fn training<B: AutodiffBackend>(
    task: &Measure<'_>,
    device: &B::Device,
) -> anyhow::Result<(Vec<StepResult>, Vec<u8>)> {
    let config = training_model_config();
    let objective = ObjectiveConfig {
        seed: TRAIN_SEED,
        ..ObjectiveConfig::default()
    };
    B::seed(device, TRAIN_SEED);
    let mut model = ElectraPretrainingModel::<B>::new(&config, &objective, device)?;
    if let Some(reference) = task.reference {
        let mut store = SafetensorsStore::from_bytes(Some(reference.initial_weights.clone()));
        let result = model
            .load_from(&mut store)
            .map_err(|e| anyhow::anyhow!("cannot load the reference weights: {e}"))?;
        if !result.missing.is_empty() || !result.errors.is_empty() {
            bail!(
                "the reference weights do not fit the model: missing {:?}, errors {:?}",
                result.missing,
                result.errors
            );
        }
    }
    let mut store = SafetensorsStore::from_bytes(None);
    model
        .save_into(&mut store)
        .map_err(|e| anyhow::anyhow!("cannot serialise the initial weights: {e}"))?;
    let initial_weights = store
        .get_bytes()
        .map_err(|e| anyhow::anyhow!("cannot serialise the initial weights: {e}"))?;

    let batch = training_batch(&task.setup, config.vocab_size, &objective)?;
    let mut optimizer = ElectraAdam::<B>::new(AdamConfig::default())?;
    let mut steps = Vec::new();
    let mut before = parameters(&model)?;
    for step in 0..task.setup.steps {
        (task.progress)(&format!("training step {}/{}", step + 1, task.setup.steps));
        let started = Instant::now();
        let out = match task.reference {
            None => model.step(&batch, step)?,
            Some(reference) => {
                let given = reference
                    .steps
                    .get(step as usize)
                    .context("the reference run has fewer steps")?;
                let mut rng = step_rng(objective.seed, step);
                let masked = mask_batch(&batch, &objective, config.vocab_size, &mut rng);
                model.forward(&batch, &masked, Replacements::Given(&given.sampled_ids))?
            }
        };
        let sampled_ids = out.sampled_ids.clone().context("no generator samples")?;
        let rtd = out.rtd_loss.clone().context("no RTD loss")?;
        let (mlm_loss, rtd_loss) = (scalar(out.mlm_loss.clone())?, scalar(rtd)?);
        let loss = out.loss;
        let total = scalar(loss.clone())?;
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        let (next, stats) = optimizer.step(LEARNING_RATE, model, grads, &|_| 1.0);
        model = next;
        let parameters = parameters(&model)?;
        let max_update = before
            .iter()
            .filter_map(|(path, old)| parameters.get(path).map(|new| max_abs_diff(old, new)))
            .fold(0.0, f64::max);
        before = parameters.clone();
        steps.push(StepResult {
            mlm_loss,
            rtd_loss,
            loss: total,
            grad_norm: stats.grad_norm,
            parameters,
            max_update,
            sampled_ids,
            seconds: started.elapsed().as_secs_f64(),
        });
    }
    Ok((steps, initial_weights))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_training_batch_is_fixed_padded_and_in_range() {
        let setup = TrainingSetup {
            steps: 1,
            batch_size: 4,
            seq_len: 32,
        };
        let objective = ObjectiveConfig::default();
        let batch = training_batch(&setup, 30522, &objective).unwrap();
        assert_eq!(batch, training_batch(&setup, 30522, &objective).unwrap());
        assert_eq!(batch.real_tokens(0), 32);
        assert_eq!(batch.real_tokens(3), 32 - 3 * 32 / 8);
        assert_eq!(batch.input_ids[0], objective.cls_token_id);
        assert_eq!(
            batch
                .input_ids
                .iter()
                .filter(|&&i| i == objective.sep_token_id)
                .count(),
            8
        );
        assert!(batch.input_ids.iter().all(|&i| i == 0 || i >= 100));
        // Two segments per row: type 1 after the first [SEP].
        assert_eq!(batch.token_type_ids[16], 0);
        assert_eq!(batch.token_type_ids[17], 1);
    }

    #[test]
    fn sampling_probabilities_are_the_tempered_softmax() {
        let p = sampling_probabilities();
        assert!((p.iter().sum::<f64>() - 1.0).abs() < 1e-12);
        // Logits 0.5 apart at temperature 2: each probability is e^0.25 times the previous.
        for pair in p.windows(2) {
            assert!((pair[1] / pair[0] - 0.25f64.exp()).abs() < 1e-12);
        }
    }
}
