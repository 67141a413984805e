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
use serde_json::json;

use crate::checkpoint::{self, list_checkpoints};
use crate::config::RunConfig;
use crate::distributed::{NodeSetup, Resolved, fnv1a64};
use crate::error::TrainError;
use crate::metrics::{MetricsLog, Record};
use crate::observer::{LogLines, LoggedMetrics, TrainObserver, objective_record};
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

fn metrics_record(m: &StepMetrics) -> Record {
    objective_record(m, "")
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

/// The loop's state between steps.
struct Loop<'a, B: AutodiffBackend> {
    config: &'a RunConfig,
    run_dir: &'a Path,
    devices: &'a [B::Device],
    /// The multi-node setup (`None`: one node).
    world: Option<Resolved>,
    model: ElectraPretrainingModel<B>,
    optimizer: ElectraAdam<B>,
    step: u64,
}

/// What one node tells the others after computing a step (multi-node runs): its peers'
/// metric records (as `f64` bits, so the mean over all nodes is exact), its first non-finite
/// loss, its real tokens and whether it was asked to stop.
#[derive(serde::Serialize, serde::Deserialize)]
struct StepShare {
    records: Vec<Vec<(String, u64)>>,
    non_finite: Option<u64>,
    tokens: usize,
    stop: bool,
}

impl StepShare {
    fn new(records: &[Record], non_finite: Option<f64>, tokens: usize, stop: bool) -> Self {
        Self {
            records: records
                .iter()
                .map(|r| r.iter().map(|(k, v)| (k.clone(), v.to_bits())).collect())
                .collect(),
            non_finite: non_finite.map(f64::to_bits),
            tokens,
            stop,
        }
    }

    fn records(&self) -> impl Iterator<Item = Record> + '_ {
        self.records.iter().map(|r| {
            r.iter()
                .map(|(k, v)| (k.clone(), f64::from_bits(*v)))
                .collect()
        })
    }
}

fn json_error(what: &str, e: serde_json::Error) -> TrainError {
    TrainError::Collective(format!("{what}: {e}"))
}

/// [`run`] on several devices at once: data-parallel training with one model replica per
/// device and gradients averaged by burn's collective all-reduce (see [`crate::parallel`]).
/// `devices[0]` holds the model that is evaluated and saved; each micro-batch is split by rows
/// across the devices, so `train.batch_size` must be a multiple of
/// `grad_accum_steps × devices.len()`. A run may be resumed on a different number of devices.
/// `observer` hears about progress, logged records and evaluations.
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
    let nodes = world.as_ref().map_or(1, |w| w.nodes);
    // Node 0 alone writes into the run directory and evaluates.
    let writer = world.as_ref().is_none_or(|w| w.rank == 0);
    let device = validate(config, devices, nodes)?;
    let run_dir = &options.run_dir;
    // Refused before the model is allocated if it cannot fit (CPU backends).
    electra_run::memory::check_pretraining::<B>(config, devices)?;
    // One writer per run directory, held until the run returns (released by the OS on kill -9).
    let _lock = writer
        .then(|| electra_fs::DirLock::acquire(run_dir, "electra pretrain"))
        .transpose()?;
    prepare_run_dir(config, run_dir, writer)?;
    let state = init_or_resume::<B>(config, run_dir, devices, device, train, world.clone())?;
    let start_step = state.step;
    let mut logging = Logging {
        log: if writer {
            Some(MetricsLog::open(
                &run_dir.join("metrics.jsonl"),
                start_step,
            )?)
        } else {
            None
        },
        window: Vec::new(),
        last: Record::new(),
        last_eval: None,
    };
    let held = eval.filter(|_| writer).map(|source| Held {
        start: source.cursor(),
        source,
    });
    let t = &config.train;
    let end = options.stop_after.map_or(t.steps, |s| s.min(t.steps));
    let peers = Peers::start(
        &state.model,
        &state.optimizer,
        device,
        &devices[1..],
        metrics_record,
        world,
    )?;
    agree(&peers, config, start_step, end)?;
    observer.started(start_step, end);
    let started = Instant::now();
    let stepped = step_loop(
        state,
        train,
        held,
        &peers,
        &mut logging,
        observer,
        options,
        end,
    );
    let (state, tokens, interrupted) = match stepped {
        Ok(done) => done,
        Err(e @ TrainError::NonFinite { .. }) => {
            peers.stop(false)?;
            return Err(e);
        }
        Err(e) => return Err(e),
    };
    observer.finished();
    logging.flush(state.step)?;
    // Before the peers stop: on several nodes, saving gathers every node's data cursor.
    let checkpoint = state.save(train, &peers)?;
    peers.stop(true)?;
    let seconds = started.elapsed().as_secs_f64();
    Ok(Summary {
        start_step,
        final_step: state.step,
        seconds,
        tokens_per_sec: tokens as f64 / seconds.max(1e-9),
        last: LoggedMetrics::from_record(&logging.last, ""),
        last_eval: logging.last_eval,
        checkpoint,
        interrupted: interrupted || state.step < t.steps,
    })
}

/// The steps up to `end` (or a stop request): train, log, evaluate and checkpoint when due.
/// Returns the state after the last step, the real tokens trained on and whether it stopped
/// on request.
#[allow(clippy::too_many_arguments)]
fn step_loop<'a, B: AutodiffBackend>(
    mut state: Loop<'a, B>,
    train: &mut dyn BatchSource,
    mut held: Option<Held<'_>>,
    peers: &Peers<B>,
    logging: &mut Logging,
    observer: &mut dyn TrainObserver,
    options: &RunOptions,
    end: u64,
) -> Result<(Loop<'a, B>, usize, bool), TrainError> {
    let t = &state.config.train;
    let mut tokens = 0usize;
    let multi = peers.world().is_some();
    while state.step < end {
        let stop_asked = options.stop.load(Ordering::SeqCst);
        // Several nodes decide together, at the end of a step (see `train_step`).
        if stop_asked && !multi {
            return Ok((state, tokens, true));
        }
        let (next, record, step_tokens, stop_all) = state.train_step(train, peers, stop_asked)?;
        state = next;
        tokens += step_tokens;
        let step = state.step;
        observer.stepped(step);
        let log_due = step.is_multiple_of(t.log_every) || step == end;
        logging.step(record, step, log_due, observer)?;
        if let Some(held) = held.as_mut()
            && t.eval_every > 0
            && (step.is_multiple_of(t.eval_every) || step == end)
        {
            let record = evaluate(&state.model.valid(), held, state.config, step)?;
            logging.evaluation(record, observer)?;
        }
        if stop_all {
            return Ok((state, tokens, true));
        }
        if step.is_multiple_of(t.checkpoint_every) && step != end {
            state.save(train, peers)?;
        }
    }
    Ok((state, tokens, false))
}

/// The held-out batches and the cursor they start from at every evaluation.
struct Held<'s> {
    source: &'s mut dyn BatchSource,
    start: serde_json::Value,
}

/// What the loop has logged: step records not yet averaged, the last logged record and the
/// last evaluation.
struct Logging {
    /// `None` on the nodes other than node 0, which write nothing.
    log: Option<MetricsLog>,
    window: Vec<Record>,
    last: Record,
    last_eval: Option<LoggedMetrics>,
}

impl Logging {
    /// Adds one step's record; when `due`, writes the mean of the steps since the last log and
    /// tells the observer.
    fn step(
        &mut self,
        record: Record,
        step: u64,
        due: bool,
        observer: &mut dyn TrainObserver,
    ) -> Result<(), TrainError> {
        self.window.push(record);
        if due {
            self.write_window(step)?;
            observer.logged(&LoggedMetrics::from_record(&self.last, ""));
        }
        Ok(())
    }

    /// Writes an evaluation record and tells the observer.
    fn evaluation(
        &mut self,
        record: Record,
        observer: &mut dyn TrainObserver,
    ) -> Result<(), TrainError> {
        if let Some(log) = &mut self.log {
            log.write(&record)?;
        }
        let typed = LoggedMetrics::from_record(&record, "eval_");
        observer.evaluated(&typed);
        self.last_eval = Some(typed);
        Ok(())
    }

    /// Writes the steps not logged yet (a run stopped between two logs).
    fn flush(&mut self, step: u64) -> Result<(), TrainError> {
        if self.window.is_empty() {
            return Ok(());
        }
        self.write_window(step)
    }

    fn write_window(&mut self, step: u64) -> Result<(), TrainError> {
        self.last = mean(&self.window);
        self.window.clear();
        self.last.insert("step".into(), step as f64);
        match &mut self.log {
            Some(log) => log.write(&self.last),
            None => Ok(()),
        }
    }
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

/// Creates the run directory and writes `config.toml` for a new run; for a run with
/// checkpoints, checks that its saved config equals `config`. A node other than node 0
/// (`writer = false`) writes nothing and only checks a run it finds.
fn prepare_run_dir(config: &RunConfig, run_dir: &Path, writer: bool) -> Result<(), TrainError> {
    if writer {
        std::fs::create_dir_all(run_dir).map_err(io(run_dir))?;
    }
    let config_path = run_dir.join("config.toml");
    let text = config.to_toml()?;
    if list_checkpoints(run_dir)?.is_empty() {
        if writer {
            electra_fs::write_atomic(&config_path, text.as_bytes())?;
        }
        return Ok(());
    }
    let saved = std::fs::read_to_string(&config_path).map_err(io(&config_path))?;
    // Compared as configs, not as text: a config written by an older build (another key
    // order, `tie_embeddings` for `embedding_sharing`) resumes when it says the same.
    if saved != text
        && RunConfig::resolve(None, Some(&config_path), &[])
            .ok()
            .as_ref()
            != Some(config)
    {
        return Err(TrainError::InvalidConfig(format!(
            "{} holds a run with a different config; resume it with its own config \
             (`--resume {}`) or choose another output directory",
            config_path.display(),
            run_dir.display()
        )));
    }
    Ok(())
}

/// A freshly initialised model and optimizer, or those of the newest intact checkpoint
/// (with `train` moved to its cursor); a new run with `[init]` starts from the released
/// Hugging Face pair it names (`electra_run::init`) with a fresh optimizer.
fn init_or_resume<'a, B: AutodiffBackend>(
    config: &'a RunConfig,
    run_dir: &'a Path,
    devices: &'a [B::Device],
    device: &B::Device,
    train: &mut dyn BatchSource,
    world: Option<Resolved>,
) -> Result<Loop<'a, B>, TrainError> {
    let mut objective = config.objective.clone();
    objective.seed = config.objective_seed();
    B::seed(device, config.derived_seed("init"));
    let mut model = ElectraPretrainingModel::<B>::new(&config.model, &objective, device)?;
    let mut optimizer = ElectraAdam::<B>::new(config.optimizer.clone())?;
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
        let cursor = node_cursor(&loaded.state, &dir, world.as_ref(), &*train)?;
        train.seek(&cursor)?;
        step = saved_step;
        tracing::info!(step, checkpoint = %dir.display(), "resuming");
    } else if let Some((released, report)) = electra_run::init::load_hf_pair::<B>(config, device)? {
        // A new run continuing a released pair: its weights, a fresh optimizer and schedule.
        model = released;
        for line in electra_run::init::describe(&report) {
            if report.differences.is_empty() {
                tracing::info!("{line}");
            } else {
                tracing::warn!("{line}");
            }
        }
    }
    Ok(Loop {
        config,
        run_dir,
        devices,
        world,
        model,
        optimizer,
        step,
    })
}

impl<B: AutodiffBackend> Loop<'_, B> {
    /// One optimizer step (the loop's state goes in and comes out): `grad_accum_steps` micro-batches split across the peers, forward
    /// and backward on each, gradients all-reduced, one Adam step. Returns the step's record
    /// and its real tokens; a non-finite loss is [`TrainError::NonFinite`] (the caller stops
    /// the peers).
    ///
    /// On several nodes each node reads its own share of every micro-batch
    /// (`batch_size / grad_accum_steps / nodes` rows from its own slice of the data); before
    /// the gradient all-reduce the nodes exchange their metric records, non-finite losses,
    /// tokens and stop requests, so that every node logs the same record and takes the same
    /// decision. `stop_asked` is this node's stop request; the last value returned says
    /// whether any node asked to stop.
    fn train_step(
        mut self,
        train: &mut dyn BatchSource,
        peers: &Peers<B>,
        stop_asked: bool,
    ) -> Result<(Self, Record, usize, bool), TrainError> {
        let t = &self.config.train;
        let n_peers = self.devices.len();
        let nodes = self.world.as_ref().map_or(1, |w| w.nodes);
        let (first_peer, all_peers) = peers.global();
        let micro_batch = t.batch_size / t.grad_accum_steps / nodes;
        let step = self.step;
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
        let lr = self.config.schedule_resolved().lr(step);
        let own = slices.remove(0);
        peers.send_step(step, lr, slices)?;
        let work = peer_gradients(
            &self.model,
            &own,
            step,
            all_peers,
            first_peer,
            &metrics_record,
        )?;
        let mut micro_records = work.records;
        let mut non_finite = work.non_finite;
        for (records, bad) in peers.collect()? {
            micro_records.extend(records);
            non_finite = non_finite.or(bad);
        }
        let mut stop_all = stop_asked;
        if self.world.is_some() {
            let share = StepShare::new(&micro_records, non_finite, step_tokens, stop_asked);
            let bytes = serde_json::to_vec(&share).map_err(|e| json_error("step record", e))?;
            micro_records.clear();
            (non_finite, step_tokens, stop_all) = (None, 0, false);
            for bytes in peers.gather_bytes(&bytes)? {
                let share: StepShare = serde_json::from_slice(&bytes)
                    .map_err(|e| json_error("a node's step record", e))?;
                micro_records.extend(share.records());
                non_finite = non_finite.or(share.non_finite.map(f64::from_bits));
                step_tokens += share.tokens;
                stop_all |= share.stop;
            }
        }
        let (Some(grads), None) = (work.grads, non_finite) else {
            let loss = non_finite.unwrap_or(f64::NAN);
            return Err(TrainError::NonFinite {
                step: step + 1,
                loss,
                checkpoint: list_checkpoints(self.run_dir)?
                    .last()
                    .map(|(_, d)| d.clone()),
            });
        };
        peers.proceed();
        let grads = peers.all_reduce(grads)?;
        let (next, stats) = self.optimizer.step(lr, self.model, grads, &|_| 1.0);
        self.model = next;
        self.step += 1;

        let mut record = mean(&micro_records);
        record.insert("lr".into(), lr);
        record.insert("grad_norm".into(), stats.grad_norm);
        let secs = step_started.elapsed().as_secs_f64().max(1e-9);
        record.insert("tokens_per_sec".into(), step_tokens as f64 / secs);
        record.insert("step_seconds".into(), secs);
        Ok((self, record, step_tokens, stop_all))
    }

    /// A checkpoint of the current step. On several nodes every node takes part (each
    /// node's data cursor is gathered) and node 0 alone writes; the others return the
    /// directory node 0 writes.
    fn save(&self, train: &dyn BatchSource, peers: &Peers<B>) -> Result<PathBuf, TrainError> {
        let cursor = train.cursor();
        let mut state = json!({
            "step": self.step,
            "cursor": cursor,
            "config": self.config,
        });
        if let Some(world) = &self.world {
            let bytes = serde_json::to_vec(&cursor).map_err(|e| json_error("data cursor", e))?;
            let cursors = peers
                .gather_bytes(&bytes)?
                .iter()
                .map(|b| serde_json::from_slice(b).map_err(|e| json_error("a node's cursor", e)))
                .collect::<Result<Vec<serde_json::Value>, _>>()?;
            state["cursors"] = serde_json::Value::Array(cursors);
            if world.rank != 0 {
                return Ok(self
                    .run_dir
                    .join("checkpoints")
                    .join(checkpoint::checkpoint_name(self.step)));
            }
        }
        save(
            self.run_dir,
            self.step,
            &self.model,
            &self.optimizer,
            &state,
            self.config.train.keep_checkpoints,
        )
    }
}

/// The data cursor this node resumes from: `cursor` on one node; on several, this node's
/// entry of `cursors` (each node reads its own slice of the data). On another number of nodes
/// than wrote the checkpoint, the source regroups the writers' cursors
/// ([`BatchSource::regroup`]: the loader starts every node at the earliest of them).
fn node_cursor(
    state: &serde_json::Value,
    dir: &Path,
    world: Option<&Resolved>,
    train: &dyn BatchSource,
) -> Result<serde_json::Value, TrainError> {
    let written = match state["cursors"].as_array() {
        Some(cursors) => cursors.clone(),
        None => vec![state["cursor"].clone()],
    };
    let nodes = world.map_or(1, |w| w.nodes);
    if written.len() == nodes {
        return Ok(written[world.map_or(0, |w| w.rank)].clone());
    }
    let cursor = train.regroup(&written).map_err(|e| {
        TrainError::Distributed(format!(
            "{} was written by {} node(s), resumed on {nodes}: {e}",
            dir.display(),
            written.len()
        ))
    })?;
    tracing::warn!(
        written_by = written.len(),
        nodes,
        %cursor,
        "resuming on another number of nodes: every node starts at the earliest data cursor \
         of the nodes that wrote the checkpoint (no row is skipped; a few rows may be read \
         twice)"
    );
    Ok(cursor)
}

/// Checks at the start that every node runs the same thing: the same `config.toml`, the same
/// number of devices, the same start step (the same checkpoint) and the same last step. The
/// nodes exchange these through the collective; each node compares every node with node 0,
/// so all of them stop with the same error naming the node that differs.
fn agree<B: AutodiffBackend>(
    peers: &Peers<B>,
    config: &RunConfig,
    start_step: u64,
    end: u64,
) -> Result<(), TrainError> {
    if peers.world().is_none() {
        return Ok(());
    }
    let hash = fnv1a64(config.to_toml()?.as_bytes());
    let own = [hash, peers.count() as u64, start_step, end];
    let all = peers.gather_words(&own)?;
    let zero = &all[0];
    for (rank, theirs) in all.iter().enumerate().skip(1) {
        let differs = |what: String| {
            Err(TrainError::Distributed(format!(
                "node {rank} does not match node 0: {what}"
            )))
        };
        if theirs[0] != zero[0] {
            return differs(format!(
                "its run config differs (config hash {:016x}, node 0 has {:016x}); start every \
                 node with the same preset, config file and --set flags",
                theirs[0], zero[0]
            ));
        }
        if theirs[1] != zero[1] {
            return differs(format!(
                "it has {} device(s), node 0 has {}; every node needs the same number",
                theirs[1], zero[1]
            ));
        }
        if theirs[2] != zero[2] {
            return differs(format!(
                "it starts at step {}, node 0 at step {}; every node must see the same \
                 checkpoints (a shared run directory)",
                theirs[2], zero[2]
            ));
        }
        if theirs[3] != zero[3] {
            return differs(format!(
                "it stops after step {}, node 0 after step {}",
                theirs[3], zero[3]
            ));
        }
    }
    // burn-collective 0.21.0 never resets its global barrier, so the second global
    // all-reduce of a process never completes (docs/multi-node.md). Probe it now, briefly,
    // so that such a build stops here with a pointer to the fix instead of hanging in the
    // first step until the collective timeout.
    let probe = peers
        .world()
        .map(|w| w.collective_timeout.min(SECOND_EXCHANGE_TIMEOUT));
    peers
        .gather_words_within(&[1], probe)
        .map_err(|e| match e {
            // A timeout (`distributed::with_timeout`), not a lost node or a refusal.
            TrainError::Collective(m) if m.contains("did not finish within") => {
                TrainError::Distributed(format!(
                    "{m}. The nodes completed one exchange but not a second one: burn-collective \
                     0.21.0 as published never resets its global barrier; multi-node training \
                     needs the binary that `cargo xtask multinode build --release` builds \
                     (target/release/electra-multinode; docs/multi-node.md)"
                ))
            }
            e => e,
        })
        .map(drop)
}

/// How long the start-up probe of [`agree`] waits for the nodes' second exchange.
const SECOND_EXCHANGE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

fn save<B: AutodiffBackend>(
    run_dir: &Path,
    step: u64,
    model: &ElectraPretrainingModel<B>,
    optimizer: &ElectraAdam<B>,
    state: &serde_json::Value,
    keep: usize,
) -> Result<PathBuf, TrainError> {
    let dir = checkpoint::save(run_dir, step, model, &optimizer.state(), state, keep)?;
    tracing::debug!(step, dir = %dir.display(), "checkpoint written");
    Ok(dir)
}

/// Runs the held-out batches through the model without dropout; the masks and samples are the
/// same at every evaluation, so the numbers are comparable across steps.
fn evaluate<B: Backend>(
    model: &ElectraPretrainingModel<B>,
    held: &mut Held<'_>,
    config: &RunConfig,
    step: u64,
) -> Result<Record, TrainError> {
    held.source.seek(&held.start)?;
    let micro_batch = config.train.batch_size / config.train.grad_accum_steps;
    let mut records = Vec::new();
    for i in 0..config.train.eval_batches {
        let batch = held.source.next_batch(micro_batch)?;
        let out = model.step(&batch, EVAL_STEP_BASE + i as u64)?;
        records.push(objective_record(&StepMetrics::compute(&out), "eval_"));
    }
    let mut record = mean(&records);
    record.insert("step".into(), step as f64);
    Ok(record)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A source whose cursors are numbers and which regroups to the smallest.
    struct Numbers;

    impl BatchSource for Numbers {
        fn next_batch(&mut self, _: usize) -> Result<HostBatch, TrainError> {
            Err(TrainError::InvalidConfig("not read".into()))
        }
        fn cursor(&self) -> serde_json::Value {
            json!(0)
        }
        fn seek(&mut self, _: &serde_json::Value) -> Result<(), TrainError> {
            Ok(())
        }
        fn regroup(&self, cursors: &[serde_json::Value]) -> Result<serde_json::Value, TrainError> {
            Ok(json!(
                cursors.iter().filter_map(|c| c["row"].as_u64()).min()
            ))
        }
    }

    /// The default [`BatchSource::regroup`].
    struct Fixed;

    impl BatchSource for Fixed {
        fn next_batch(&mut self, _: usize) -> Result<HostBatch, TrainError> {
            Err(TrainError::InvalidConfig("not read".into()))
        }
        fn cursor(&self) -> serde_json::Value {
            json!(0)
        }
        fn seek(&mut self, _: &serde_json::Value) -> Result<(), TrainError> {
            Ok(())
        }
    }

    #[test]
    fn a_checkpoint_resumes_on_its_node_count_by_rank_and_on_another_through_the_source() {
        let two = json!({ "cursor": { "row": 7 }, "cursors": [{ "row": 7 }, { "row": 4 }] });
        let one = json!({ "cursor": { "row": 5 } });
        let dir = Path::new("run/checkpoints/step-00000002");
        let node = |nodes, node_rank| {
            NodeSetup {
                nodes,
                node_rank,
                ..NodeSetup::default()
            }
            .validate()
            .expect("valid")
        };
        let cursor = node_cursor(&two, dir, Some(&node(2, 1)), &Numbers).expect("node 1 of 2");
        assert_eq!(
            cursor,
            json!({ "row": 4 }),
            "each node resumes its own slice"
        );
        let cursor = node_cursor(&one, dir, None, &Numbers).expect("one node");
        assert_eq!(cursor, json!({ "row": 5 }));
        // Another node count: the source regroups every writer's cursor.
        assert_eq!(
            node_cursor(&two, dir, None, &Numbers).expect("2 -> 1"),
            json!(4)
        );
        assert_eq!(
            node_cursor(&two, dir, Some(&node(3, 2)), &Numbers).expect("2 -> 3"),
            json!(4)
        );
        assert_eq!(
            node_cursor(&one, dir, Some(&node(2, 1)), &Numbers).expect("1 -> 2"),
            json!(5)
        );
        // A source that cannot regroup is refused, naming the checkpoint and both counts.
        let err = node_cursor(&two, dir, None, &Fixed).expect_err("no regrouping");
        let err = err.to_string();
        assert!(
            err.contains("step-00000002 was written by 2 node(s), resumed on 1")
                && err.contains("cannot resume on another number of nodes"),
            "{err}"
        );
    }
}
