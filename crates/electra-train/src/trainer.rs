//! The pre-training loop (paper §2, spec 3): batches in, optimizer steps out, with metrics,
//! evaluation, checkpoints and exact resumption.
//!
//! The loop, as nanoGPT and burn's examples write it: for each step, one optimizer step, then
//! log, evaluate and checkpoint when due. On one device and one node the step is
//! `step`'s (batch → forward → backward → accumulate → clip and Adam step → typed
//! record); nothing else is entered. The layers around it:
//!
//! - several devices: `parallel::step` splits each micro-batch by rows across the
//!   peers ([`crate::parallel::Peers`]: worker threads and burn's collective), which run the
//!   same micro-batch loop and all-reduce their gradients before the same Adam step;
//! - several nodes: the same, and the nodes agree on the run at the start
//!   (`exchange::agree`), exchange each step's metrics and stop requests, and
//!   gather their data cursors into node 0's checkpoints (`exchange`).
//!
//! Because every random draw is derived from the step index and the data cursor is saved, a
//! run resumed from a checkpoint continues exactly where it stopped (`run_dir`).
//! Metrics are typed from the step to the observer (`logging`); `metrics.jsonl` is
//! written through the key table of [`crate::observer`].

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use burn::module::AutodiffModule;
use burn::prelude::*;
use burn::tensor::backend::AutodiffBackend;
use electra_objective::{ElectraPretrainingModel, HostBatch, StepMetrics};

use crate::config::RunConfig;
use crate::distributed::{NodeSetup, Resolved};
use crate::error::TrainError;
use crate::exchange::agree;
use crate::logging::Logging;
use crate::observer::{LogLines, LoggedMetrics, TrainObserver};
use crate::parallel::{self, Peers};
use crate::run_dir::{init_or_resume, prepare_run_dir, save};
use crate::step::State;

/// Where batches come from: the data loader (or anything else that yields host batches),
/// resumable from a JSON cursor.
pub trait BatchSource {
    /// The next batch of `batch_size` sequences.
    fn next_batch(&mut self, batch_size: usize) -> Result<HostBatch, TrainError>;
    /// Where the next batch would start, for checkpoints.
    fn cursor(&self) -> serde_json::Value;
    /// Continues from a cursor returned by [`Self::cursor`].
    fn seek(&mut self, cursor: &serde_json::Value) -> Result<(), TrainError>;
    /// Where every node continues when a run resumes on another number of nodes than wrote
    /// its checkpoint; `cursors` holds the writing nodes' cursors in node order. The default
    /// refuses: a source must say how its slices recombine.
    fn regroup(&self, cursors: &[serde_json::Value]) -> Result<serde_json::Value, TrainError> {
        Err(TrainError::Distributed(format!(
            "this data source cannot resume on another number of nodes than the {} that \
             wrote the checkpoint",
            cursors.len()
        )))
    }
}

/// How to run the loop (not part of the run's configuration).
#[derive(Clone, Debug)]
pub struct RunOptions {
    /// The run directory (created if needed).
    pub run_dir: PathBuf,
    /// Set to stop at the end of the current step, checkpoint and return (Ctrl-C, SIGTERM).
    pub stop: Arc<AtomicBool>,
    /// Stop after this step even if `train.steps` is larger (tests, benchmarks).
    pub stop_after: Option<u64>,
    /// This process's place in a multi-node run ([`NodeSetup::default`]: one node).
    pub node: NodeSetup,
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
    pub last: LoggedMetrics,
    /// The last evaluation, if any.
    pub last_eval: Option<LoggedMetrics>,
    /// The checkpoint written at the end.
    pub checkpoint: PathBuf,
    /// Whether the run stopped before `train.steps` ([`RunOptions::stop`] or `stop_after`).
    pub interrupted: bool,
}

/// Step offset of evaluation batches: their masks and samples are fixed across evaluations
/// (the same `(seed, step)`) and never collide with a training step.
const EVAL_STEP_BASE: u64 = 1 << 40;

/// Runs (or continues) pre-training in `options.run_dir` on one device, reporting through
/// [`LogLines`].
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

/// [`run`] on several devices at once, reporting through [`LogLines`]; see [`run_observed`].
pub fn run_data_parallel<B: AutodiffBackend>(
    config: &RunConfig,
    train: &mut dyn BatchSource,
    eval: Option<&mut dyn BatchSource>,
    devices: &[B::Device],
    options: &RunOptions,
) -> Result<Summary, TrainError> {
    run_observed::<B>(config, train, eval, devices, options, &mut LogLines)
}

/// [`run`] on one or several devices. On several, training is data-parallel with one model
/// replica per device and gradients averaged by burn's collective all-reduce (see
/// [`crate::parallel`]). `devices[0]` holds the model that is evaluated and saved; each
/// micro-batch is split by rows across the devices, so `train.batch_size` must be a multiple
/// of `grad_accum_steps × devices.len()`. A run may be resumed on a different number of
/// devices. `observer` hears about progress, logged records and evaluations.
pub fn run_observed<B: AutodiffBackend>(
    config: &RunConfig,
    train: &mut dyn BatchSource,
    eval: Option<&mut dyn BatchSource>,
    devices: &[B::Device],
    options: &RunOptions,
    observer: &mut dyn TrainObserver,
) -> Result<Summary, TrainError> {
    let world = options.node.validate()?;
    let world = (world.nodes > 1).then_some(world);
    // Node 0 alone writes into the run directory and evaluates.
    let writer = world.as_ref().is_none_or(|w| w.rank == 0);
    let device = validate(config, devices, world.as_ref().map_or(1, |w| w.nodes))?;
    let run_dir = &options.run_dir;
    // Refused before the model is allocated if it cannot fit (CPU backends).
    electra_run::memory::check_pretraining::<B>(config, devices)?;
    // One writer per run directory, held until the run returns (released by the OS on kill -9).
    let _lock = writer
        .then(|| electra_fs::DirLock::acquire(run_dir, "electra pretrain"))
        .transpose()?;
    prepare_run_dir(config, run_dir, writer)?;
    let state = init_or_resume::<B>(config, run_dir, device, train, world.as_ref())?;
    let start_step = state.step;
    let mut logging = Logging::open(run_dir, start_step, writer)?;
    let held = eval.filter(|_| writer).map(|source| Held {
        start: source.cursor(),
        source,
    });
    let end = options
        .stop_after
        .map_or(config.train.steps, |s| s.min(config.train.steps));
    let peers = start_peers(&state, devices, world, end)?;
    observer.started(start_step, end);
    let started = Instant::now();
    let stepped = step_loop(
        state,
        train,
        held,
        peers.as_ref(),
        &mut logging,
        observer,
        options,
        end,
    );
    let (state, tokens, interrupted) = match stepped {
        Ok(done) => done,
        Err(e @ TrainError::NonFinite { .. }) => {
            if let Some(peers) = peers {
                peers.stop(false)?;
            }
            return Err(e);
        }
        Err(e) => return Err(e),
    };
    observer.finished();
    logging.flush(state.step)?;
    // Before the peers stop: on several nodes, saving gathers every node's data cursor.
    let checkpoint = save(&state, train, peers.as_ref())?;
    if let Some(peers) = peers {
        peers.stop(true)?;
    }
    let seconds = started.elapsed().as_secs_f64();
    Ok(Summary {
        start_step,
        final_step: state.step,
        seconds,
        tokens_per_sec: tokens as f64 / seconds.max(1e-9),
        last: logging.last,
        last_eval: logging.last_eval,
        checkpoint,
        interrupted: interrupted || state.step < config.train.steps,
    })
}

/// The layers around the one-device step, started only when needed: the peers of several
/// devices or several nodes (the nodes checked to run the same thing). `None` on one device
/// and one node.
fn start_peers<B: AutodiffBackend>(
    state: &State<'_, B>,
    devices: &[B::Device],
    world: Option<Resolved>,
    end: u64,
) -> Result<Option<Peers<B>>, TrainError> {
    if devices.len() == 1 && world.is_none() {
        return Ok(None);
    }
    let (model, optimizer) = (&state.model, &state.optimizer);
    let peers = Peers::start(model, optimizer, &devices[0], &devices[1..], world)?;
    agree(&peers, state.config, state.step, end)?;
    Ok(Some(peers))
}

/// The steps up to `end` (or a stop request): one optimizer step (on this device, or with
/// `peers`), then log, evaluate and checkpoint when due. Returns the state after the last
/// step, the real tokens trained on and whether it stopped on request.
#[allow(clippy::too_many_arguments)]
fn step_loop<'a, B: AutodiffBackend>(
    mut state: State<'a, B>,
    train: &mut dyn BatchSource,
    mut held: Option<Held<'_>>,
    peers: Option<&Peers<B>>,
    logging: &mut Logging,
    observer: &mut dyn TrainObserver,
    options: &RunOptions,
    end: u64,
) -> Result<(State<'a, B>, usize, bool), TrainError> {
    let t = &state.config.train;
    let mut tokens = 0usize;
    // Several nodes decide to stop together, at the end of a step (`parallel::step`).
    let nodes_decide = peers.is_some_and(|p| p.world().is_some());
    while state.step < end {
        let stop_asked = options.stop.load(Ordering::SeqCst);
        if stop_asked && !nodes_decide {
            return Ok((state, tokens, true));
        }
        let (next, record, stop_all) = match peers {
            None => state
                .step(train)
                .map(|(next, record)| (next, record, false))?,
            Some(peers) => parallel::step(state, train, peers, stop_asked)?,
        };
        state = next;
        tokens += record.tokens;
        let step = state.step;
        observer.stepped(step);
        let log_due = step.is_multiple_of(t.log_every) || step == end;
        logging.step(record, step, log_due, observer)?;
        if let Some(held) = held.as_mut()
            && t.eval_every > 0
            && (step.is_multiple_of(t.eval_every) || step == end)
        {
            let metrics = evaluate(&state.model.valid(), held, state.config)?;
            logging.evaluation(step, &metrics, observer)?;
        }
        if stop_all {
            return Ok((state, tokens, true));
        }
        if step.is_multiple_of(t.checkpoint_every) && step != end {
            save(&state, train, peers)?;
        }
    }
    Ok((state, tokens, false))
}

/// The held-out batches and the cursor they start from at every evaluation.
struct Held<'s> {
    source: &'s mut dyn BatchSource,
    start: serde_json::Value,
}

/// Checks the config and the devices; the first device (the one that evaluates and saves).
fn validate<'a, D>(
    config: &RunConfig,
    devices: &'a [D],
    nodes: usize,
) -> Result<&'a D, TrainError> {
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
        .is_multiple_of(config.train.grad_accum_steps * n_peers * nodes)
    {
        let nodes_part = if nodes > 1 {
            format!(" × nodes ({nodes})")
        } else {
            String::new()
        };
        return Err(TrainError::InvalidConfig(format!(
            "train.batch_size ({}) must be a multiple of train.grad_accum_steps ({}) × devices ({n_peers}){nodes_part}",
            config.train.batch_size, config.train.grad_accum_steps
        )));
    }
    Ok(device)
}

/// Runs the held-out batches through the model without dropout: each batch's metrics. The
/// masks and samples are the same at every evaluation, so the numbers are comparable across
/// steps.
fn evaluate<B: Backend>(
    model: &ElectraPretrainingModel<B>,
    held: &mut Held<'_>,
    config: &RunConfig,
) -> Result<Vec<StepMetrics>, TrainError> {
    held.source.seek(&held.start)?;
    let micro_batch = config.train.batch_size / config.train.grad_accum_steps;
    let mut metrics = Vec::with_capacity(config.train.eval_batches);
    for i in 0..config.train.eval_batches {
        let batch = held.source.next_batch(micro_batch)?;
        let out = model.step(&batch, EVAL_STEP_BASE + i as u64)?;
        metrics.push(StepMetrics::compute(&out));
    }
    Ok(metrics)
}
