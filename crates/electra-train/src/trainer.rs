//! The pre-training loop (paper §2, spec 3): batches in, optimizer steps out, with metrics,
//! evaluation, checkpoints and exact resumption.
//!
//! One optimizer step: for each of `grad_accum_steps` micro-batches, the objective's forward
//! pass (`ElectraPretrainingModel::step`, whose masking, sampling and dropout are derived
//! from `(seed, micro-step)`), the loss scaled by `1/grad_accum_steps`, backward and
//! accumulation; then global-norm clipping and the reference Adam update with the schedule's
//! learning rate. Because every random draw is derived from the step index and the data
//! cursor is saved, a run resumed from a checkpoint continues exactly where it stopped.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use burn::module::AutodiffModule;
use burn::prelude::*;
use burn::tensor::backend::AutodiffBackend;
use electra_objective::{ElectraPretrainingModel, HostBatch, StepMetrics};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;

use crate::checkpoint::{self, list_checkpoints};
use crate::config::RunConfig;
use crate::error::TrainError;
use crate::metrics::{MetricsLog, Record};
use crate::optim::ElectraAdam;
use crate::parallel::{Peers, peer_gradients, split_rows};

/// Where batches come from: the data loader (or anything else that yields host batches),
/// resumable from a JSON cursor.
pub trait BatchSource {
    /// The next batch of `batch_size` sequences.
    fn next_batch(&mut self, batch_size: usize) -> Result<HostBatch, TrainError>;
    /// Where the next batch would start, for checkpoints.
    fn cursor(&self) -> serde_json::Value;
    /// Continues from a cursor returned by [`Self::cursor`].
    fn seek(&mut self, cursor: &serde_json::Value) -> Result<(), TrainError>;
}

/// How to run the loop (not part of the run's configuration).
#[derive(Clone, Debug)]
pub struct RunOptions {
    /// The run directory (created if needed).
    pub run_dir: PathBuf,
    /// Set to stop at the end of the current step, checkpoint and return (Ctrl-C, SIGTERM).
    pub stop: Arc<AtomicBool>,
    /// Show a progress bar on the terminal.
    pub progress: bool,
    /// Stop after this step even if `train.steps` is larger (tests, benchmarks).
    pub stop_after: Option<u64>,
}

/// What a run did.
#[derive(Clone, Debug)]
pub struct Summary {
    /// The step the run started from (0 for a new run).
    pub start_step: u64,
    /// The last completed step.
    pub final_step: u64,
    /// Wall-clock seconds of the loop.
    pub seconds: f64,
    /// Real (non-pad) tokens per second through the training step.
    pub tokens_per_sec: f64,
    /// The mean of every logged quantity over the last `log_every` steps.
    pub last: Record,
    /// The last evaluation, if any.
    pub last_eval: Option<Record>,
    /// The checkpoint written at the end.
    pub checkpoint: PathBuf,
    /// Whether the run stopped before `train.steps` ([`RunOptions::stop`] or `stop_after`).
    pub interrupted: bool,
}

/// Step offset of evaluation batches: their masks and samples are fixed across evaluations
/// (the same `(seed, step)`) and never collide with a training step.
const EVAL_STEP_BASE: u64 = 1 << 40;

fn metrics_record(m: &StepMetrics, prefix: &str) -> Record {
    let mut r = Record::new();
    let mut put = |k: &str, v: Option<f64>| {
        if let Some(v) = v {
            r.insert(format!("{prefix}{k}"), v);
        }
    };
    put("loss", Some(m.loss));
    put("mlm_loss", Some(m.mlm_loss));
    put("mlm_accuracy", Some(m.mlm_accuracy));
    put("rtd_loss", m.rtd_loss);
    put("target_loss", m.target_loss);
    put("disc_accuracy", m.disc_accuracy);
    put("replaced_precision", m.disc_precision);
    put("replaced_recall", m.disc_recall);
    put("replaced_f1", m.disc_f1);
    put("disc_auc", m.disc_auc);
    put("sampled_equals_original", m.sampled_equals_original);
    r
}

/// Averages records key by key.
fn mean(records: &[Record]) -> Record {
    let mut sums: Record = Record::new();
    let mut counts: std::collections::BTreeMap<String, f64> = Default::default();
    for r in records {
        for (k, v) in r {
            *sums.entry(k.clone()).or_default() += v;
            *counts.entry(k.clone()).or_default() += 1.0;
        }
    }
    sums.into_iter()
        .map(|(k, v)| {
            let n = counts.get(&k).copied().unwrap_or(1.0);
            (k, v / n)
        })
        .collect()
}

fn real_tokens(batch: &HostBatch) -> usize {
    batch.attention_mask.iter().filter(|&&m| m != 0).count()
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> TrainError + '_ {
    move |source| TrainError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Runs (or continues) pre-training in `options.run_dir` on one device.
///
/// A directory without checkpoints starts a new run: `config.toml` is written and the model
/// initialised from `config.seed`. A directory with checkpoints continues from the newest; its
/// `config.toml` must equal `config`. `eval` (optional) is read from its start at every
/// evaluation.
pub fn run<B: AutodiffBackend>(
    config: &RunConfig,
    train: &mut dyn BatchSource,
    eval: Option<&mut dyn BatchSource>,
    device: &B::Device,
    options: &RunOptions,
) -> Result<Summary, TrainError> {
    run_data_parallel::<B>(config, train, eval, std::slice::from_ref(device), options)
}

/// [`run`] on several devices at once: data-parallel training with one model replica per
/// device and gradients averaged by burn's collective all-reduce (see [`crate::parallel`]).
/// `devices[0]` holds the model that is evaluated and saved; each micro-batch is split by rows
/// across the devices, so `train.batch_size` must be a multiple of
/// `grad_accum_steps × devices.len()`. A run may be resumed on a different number of devices.
pub fn run_data_parallel<B: AutodiffBackend>(
    config: &RunConfig,
    train: &mut dyn BatchSource,
    mut eval: Option<&mut dyn BatchSource>,
    devices: &[B::Device],
    options: &RunOptions,
) -> Result<Summary, TrainError> {
    config.validate()?;
    let Some(device) = devices.first() else {
        return Err(TrainError::InvalidConfig(
            "no device to train on".to_string(),
        ));
    };
    let n_peers = devices.len();
    if !config
        .train
        .batch_size
        .is_multiple_of(config.train.grad_accum_steps * n_peers)
    {
        return Err(TrainError::InvalidConfig(format!(
            "train.batch_size ({}) must be a multiple of train.grad_accum_steps ({}) × devices ({n_peers})",
            config.train.batch_size, config.train.grad_accum_steps
        )));
    }
    let run_dir = &options.run_dir;
    std::fs::create_dir_all(run_dir).map_err(io(run_dir))?;
    let config_path = run_dir.join("config.toml");
    let text = config.to_toml()?;
    let existing = list_checkpoints(run_dir)?;
    if existing.is_empty() {
        electra_fs::write_atomic(&config_path, text.as_bytes())?;
    } else {
        let saved = std::fs::read_to_string(&config_path).map_err(io(&config_path))?;
        if saved != text {
            return Err(TrainError::InvalidConfig(format!(
                "{} holds a run with a different config; resume it with its own config \
                 (`--resume {}`) or choose another output directory",
                config_path.display(),
                run_dir.display()
            )));
        }
    }

    let mut objective = config.objective.clone();
    objective.seed = config.objective_seed();
    B::seed(device, config.derived_seed("init"));
    let mut model = ElectraPretrainingModel::<B>::new(&config.model, &objective, device)?;
    let mut optimizer = ElectraAdam::<B>::new(config.optimizer.clone())?;
    let eval_cursor = eval.as_ref().map(|e| e.cursor());

    let mut step = 0u64;
    // The newest intact checkpoint: a damaged newer one is skipped with a warning (its
    // directory stays; training past its step writes a good one in its place).
    let resumed = checkpoint::newest_intact(run_dir, |_, dir| {
        let loaded = checkpoint::load(dir)?;
        let mut candidate = model.clone();
        checkpoint::load_model(dir, &mut candidate)?;
        Ok((loaded, candidate))
    })?;
    if let Some((saved_step, dir, (loaded, candidate))) = resumed {
        model = candidate;
        optimizer.load_state(loaded.optimizer, device);
        train.seek(&loaded.state["cursor"])?;
        step = saved_step;
        tracing::info!(step, checkpoint = %dir.display(), "resuming");
    }
    let start_step = step;
    let mut log = MetricsLog::open(&run_dir.join("metrics.jsonl"), step)?;

    let t = &config.train;
    let schedule = config.schedule_resolved();
    let micro_batch = t.batch_size / t.grad_accum_steps;
    let end = options.stop_after.map_or(t.steps, |s| s.min(t.steps));
    let bar = if options.progress {
        let bar = ProgressBar::new(end);
        bar.set_style(
            ProgressStyle::with_template(
                "{elapsed_precise} [{bar:30}] {pos}/{len} steps {msg} (eta {eta})",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        bar.set_position(step);
        bar
    } else {
        ProgressBar::hidden()
    };

    let peers = Peers::start(&model, &optimizer, device, &devices[1..], |m| {
        metrics_record(m, "")
    })?;
    let started = Instant::now();
    let mut tokens = 0usize;
    let mut window: Vec<Record> = Vec::new();
    let mut last = Record::new();
    let mut last_eval = None;
    let mut interrupted = false;
    while step < end {
        if options.stop.load(Ordering::SeqCst) {
            interrupted = true;
            break;
        }
        let step_started = Instant::now();
        let mut step_tokens = 0;
        let mut slices: Vec<Vec<HostBatch>> = vec![Vec::new(); n_peers];
        for _ in 0..t.grad_accum_steps {
            let batch = train.next_batch(micro_batch)?;
            step_tokens += real_tokens(&batch);
            if n_peers == 1 {
                slices[0].push(batch);
            } else {
                for (peer, part) in split_rows(&batch, n_peers)?.into_iter().enumerate() {
                    slices[peer].push(part);
                }
            }
        }
        let lr = schedule.lr(step);
        let own = slices.remove(0);
        peers.send_step(step, lr, slices)?;
        let work = peer_gradients(&model, &own, step, n_peers, 0, &|m| metrics_record(m, ""))?;
        let mut micro_records = work.records;
        let mut non_finite = work.non_finite;
        for (records, bad) in peers.collect()? {
            micro_records.extend(records);
            non_finite = non_finite.or(bad);
        }
        let (Some(grads), None) = (work.grads, non_finite) else {
            let loss = non_finite.unwrap_or(f64::NAN);
            peers.stop::<B>(false)?;
            return Err(TrainError::NonFinite {
                step: step + 1,
                loss,
                checkpoint: list_checkpoints(run_dir)?.last().map(|(_, d)| d.clone()),
            });
        };
        peers.proceed();
        let grads = peers.all_reduce::<B>(grads)?;
        let (next, stats) = optimizer.step(lr, model, grads, &|_| 1.0);
        model = next;
        step += 1;
        tokens += step_tokens;

        let mut record = mean(&micro_records);
        record.insert("lr".into(), lr);
        record.insert("grad_norm".into(), stats.grad_norm);
        let secs = step_started.elapsed().as_secs_f64().max(1e-9);
        record.insert("tokens_per_sec".into(), step_tokens as f64 / secs);
        record.insert("step_seconds".into(), secs);
        window.push(record);
        bar.set_position(step);

        if step.is_multiple_of(t.log_every) || step == end {
            last = mean(&window);
            window.clear();
            last.insert("step".into(), step as f64);
            log.write(&last)?;
            bar.set_message(format!(
                "loss {:.3} mlm {:.3} rtd {:.4} {:.0} tok/s",
                last.get("loss").copied().unwrap_or(f64::NAN),
                last.get("mlm_loss").copied().unwrap_or(f64::NAN),
                last.get("rtd_loss").copied().unwrap_or(f64::NAN),
                last.get("tokens_per_sec").copied().unwrap_or(0.0)
            ));
            if bar.is_hidden() {
                tracing::info!(
                    step,
                    loss = last.get("loss").copied().unwrap_or(f64::NAN),
                    tokens_per_sec = last.get("tokens_per_sec").copied().unwrap_or(0.0),
                    "train"
                );
            }
        }
        if let (Some(source), Some(cursor)) = (eval.as_deref_mut(), eval_cursor.as_ref())
            && t.eval_every > 0
            && (step.is_multiple_of(t.eval_every) || step == end)
        {
            let record = evaluate(&model.valid(), source, cursor, config, step)?;
            log.write(&record)?;
            last_eval = Some(record);
        }
        if step.is_multiple_of(t.checkpoint_every) && step != end {
            save(
                run_dir,
                step,
                &model,
                &optimizer,
                train,
                config,
                t.keep_checkpoints,
            )?;
        }
    }
    bar.finish_and_clear();
    peers.stop::<B>(true)?;
    if !window.is_empty() {
        last = mean(&window);
        last.insert("step".into(), step as f64);
        log.write(&last)?;
    }
    let checkpoint = save(
        run_dir,
        step,
        &model,
        &optimizer,
        train,
        config,
        t.keep_checkpoints,
    )?;
    let seconds = started.elapsed().as_secs_f64();
    Ok(Summary {
        start_step,
        final_step: step,
        seconds,
        tokens_per_sec: tokens as f64 / seconds.max(1e-9),
        last,
        last_eval,
        checkpoint,
        interrupted: interrupted || step < t.steps,
    })
}

fn save<B: AutodiffBackend>(
    run_dir: &Path,
    step: u64,
    model: &ElectraPretrainingModel<B>,
    optimizer: &ElectraAdam<B>,
    train: &dyn BatchSource,
    config: &RunConfig,
    keep: usize,
) -> Result<PathBuf, TrainError> {
    let state = json!({
        "step": step,
        "cursor": train.cursor(),
        "config": config,
    });
    let dir = checkpoint::save(run_dir, step, model, &optimizer.state(), &state, keep)?;
    tracing::debug!(step, dir = %dir.display(), "checkpoint written");
    Ok(dir)
}

/// Runs the held-out batches through the model without dropout; the masks and samples are the
/// same at every evaluation, so the numbers are comparable across steps.
fn evaluate<B: Backend>(
    model: &ElectraPretrainingModel<B>,
    source: &mut dyn BatchSource,
    start: &serde_json::Value,
    config: &RunConfig,
    step: u64,
) -> Result<Record, TrainError> {
    source.seek(start)?;
    let micro_batch = config.train.batch_size / config.train.grad_accum_steps;
    let mut records = Vec::new();
    for i in 0..config.train.eval_batches {
        let batch = source.next_batch(micro_batch)?;
        let out = model.step(&batch, EVAL_STEP_BASE + i as u64)?;
        records.push(metrics_record(&StepMetrics::compute(&out), "eval_"));
    }
    let mut record = mean(&records);
    record.insert("step".into(), step as f64);
    Ok(record)
}
