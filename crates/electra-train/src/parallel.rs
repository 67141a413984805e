//! Data-parallel training on several devices (paper §3.1 trains on TPU pods the same way):
//! one model replica per device, each step's batch split by rows across the replicas, and the
//! gradients averaged with burn's collective all-reduce before every replica takes the same
//! optimizer step.
//!
//! Peer 0 is the calling thread: it reads the data, logs, evaluates and writes checkpoints.
//! Every other peer is a worker thread that owns a replica (forked from peer 0's model, so the
//! parameter ids, which order the all-reduce, are the same) and a copy of the optimizer state.
//! Each step peer 0 sends every worker its rows; all peers compute forward and backward on
//! their rows, report their metrics, and on peer 0's go-ahead all-reduce
//! ([`GradientsParams::all_reduce`], mean) and apply the update. Because the update is applied
//! to identical parameters with identical averaged gradients, the replicas never drift apart,
//! and only peer 0's copy is saved.
//!
//! Like the reference's TPU data parallelism (a `CrossShardOptimizer` averages the per-core
//! gradients), each peer's loss is the mean over its own rows and the peers' gradients are
//! averaged. Peer `p` of `N` draws the randomness of micro-step `(step·accum + micro)·N + p`,
//! so `N` peers with `grad_accum_steps = a` compute exactly what one device computes with
//! `grad_accum_steps = a·N` over the same rows (up to float summation order); a test checks it.
//!
//! The backend's random stream is process-wide on the CPU backends, so the seeding and the
//! forward pass of one micro-step ([`forward_lock`]) run one peer at a time; the backward
//! passes, the all-reduce and the optimizer steps run in parallel.
//!
//! Several nodes ([`crate::distributed`]): each process is one node with its own peers; peer
//! `p` of node `r` is global peer `r·D + p` of `N·D` (its randomness index uses those), and
//! burn's collective adds a global level to the same all-reduce. The gradients are reduced
//! parameter by parameter in module order ([`param_order`]), the same in every process.

use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

use burn::collective::{
    CollectiveConfig, PeerId, ReduceOperation, all_reduce, finish_collective, register,
    reset_collective,
};
use burn::module::{Module, ModuleVisitor, Param, ParamId};
use burn::optim::{GradientsAccumulator, GradientsParams};
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{Tensor, TensorData, TensorPrimitive};
use electra_objective::{ElectraPretrainingModel, HostBatch, StepMetrics};

use crate::distributed::{
    Resolved, bytes_to_words, check_port_free, decode_words, encode_words, start_coordinator,
    wait_for_coordinator, with_timeout, words_to_bytes,
};
use crate::error::TrainError;
use crate::metrics::Record;
use crate::optim::ElectraAdam;

/// Serialises "seed the backend, run the forward pass" across peers (see the module docs).
static FORWARD: Mutex<()> = Mutex::new(());

/// The lock that makes one micro-step's random draws contiguous in the backend's stream.
pub fn forward_lock() -> MutexGuard<'static, ()> {
    FORWARD.lock().unwrap_or_else(|e| e.into_inner())
}

/// What one peer computed for one optimizer step.
pub struct PeerWork {
    /// The accumulated gradients of the peer's micro-batches (absent after a non-finite loss).
    pub grads: Option<GradientsParams>,
    /// The metrics of each micro-batch, as [`crate::metrics::Record`]s with a `loss` key.
    pub records: Vec<Record>,
    /// The first non-finite loss met, if any (the peer stopped there).
    pub non_finite: Option<f64>,
}

/// The randomness index of micro-batch `micro` of step `step` on peer `peer` of `peers`.
pub fn micro_step(step: u64, accum: usize, micro: usize, peers: usize, peer: usize) -> u64 {
    (step * accum as u64 + micro as u64) * peers as u64 + peer as u64
}

/// Forward and backward of one peer's micro-batches, gradients accumulated with the loss scaled
/// by `1/accum` (the all-reduce mean then divides by the number of peers).
pub fn peer_gradients<B: AutodiffBackend>(
    model: &ElectraPretrainingModel<B>,
    slices: &[HostBatch],
    step: u64,
    peers: usize,
    peer: usize,
    record: &dyn Fn(&StepMetrics) -> Record,
) -> Result<PeerWork, TrainError> {
    let accum = slices.len();
    let mut accumulator = GradientsAccumulator::<ElectraPretrainingModel<B>>::new();
    let mut records = Vec::with_capacity(accum);
    for (micro, batch) in slices.iter().enumerate() {
        let out = {
            let _guard = forward_lock();
            model.step(batch, micro_step(step, accum, micro, peers, peer))?
        };
        let metrics = StepMetrics::compute(&out);
        records.push(record(&metrics));
        if !metrics.loss.is_finite() {
            return Ok(PeerWork {
                grads: None,
                records,
                non_finite: Some(metrics.loss),
            });
        }
        let loss = out.loss.div_scalar(accum as f64);
        let grads = GradientsParams::from_grads(loss.backward(), model);
        accumulator.accumulate(model, grads);
    }
    Ok(PeerWork {
        grads: Some(accumulator.grads()),
        records,
        non_finite: None,
    })
}

/// Splits a batch by rows into `n` equal parts (rows `[i·b/n, (i+1)·b/n)` to part `i`),
/// keeping the batch's padded length and its configured length (the masking budget).
pub fn split_rows(batch: &HostBatch, n: usize) -> Result<Vec<HostBatch>, TrainError> {
    if n == 0 || !batch.batch.is_multiple_of(n) {
        return Err(TrainError::InvalidConfig(format!(
            "a micro-batch of {} rows cannot be split evenly across {n} devices; make \
             train.batch_size a multiple of grad_accum_steps × devices",
            batch.batch
        )));
    }
    let rows = batch.batch / n;
    let width = rows * batch.seq;
    (0..n)
        .map(|i| {
            let range = i * width..(i + 1) * width;
            Ok(HostBatch::new(
                batch.input_ids[range.clone()].to_vec(),
                batch.token_type_ids[range.clone()].to_vec(),
                batch.attention_mask[range].to_vec(),
                rows,
                batch.seq,
            )?
            .with_max_seq_len(batch.max_seq_len)?)
        })
        .collect()
}

enum ToWorker {
    /// Compute this step on these micro-batch slices, with this learning rate.
    Step {
        step: u64,
        lr: f64,
        slices: Vec<HostBatch>,
    },
    /// Take part in a Sum all-reduce of this many values with zeros (peer 0 carries the
    /// node's data; see [`crate::distributed::encode_words`]).
    Gather(usize),
    /// All peers are healthy: all-reduce and update.
    Proceed,
    /// End; with `finish`, leave the collective first.
    Stop { finish: bool },
}

/// A peer's metric records of one step and the first non-finite loss it met.
pub type PeerRecords = (Vec<Record>, Option<f64>);

/// A worker's report for one step, or its error.
type Report = Result<PeerRecords, String>;

struct Worker {
    to: Sender<ToWorker>,
    from: Receiver<Report>,
    handle: Option<JoinHandle<()>>,
}

/// Each float parameter of a model, in module order (the same in every process), with its
/// number of dimensions: the order of the gradient all-reduce. burn's
/// `GradientsParams::all_reduce` orders by `ParamId`, which is random per process, so it only
/// works among replicas forked in one process; across nodes the parameters would be paired
/// wrongly.
pub type ParamOrder = Vec<(ParamId, usize)>;

/// The parameter order of `model` (see [`ParamOrder`]).
pub fn param_order<B: Backend, M: Module<B>>(model: &M) -> ParamOrder {
    struct Order(ParamOrder);
    impl<B: Backend> ModuleVisitor<B> for Order {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
            self.0.push((param.id, D));
        }
    }
    let mut order = Order(Vec::new());
    model.visit(&mut order);
    order.0
}

/// Gradients are averaged in buckets of consecutive parameters of about this many bytes: one
/// all-reduce per bucket instead of one per parameter. Each collective call pays a fixed cost
/// (between nodes a websocket round trip and a barrier that opens a connection to every other
/// node), and the bucket bounds the extra memory of the concatenated copy. PyTorch's DDP
/// default is 25 MB; 32 MiB holds `tiny`'s gradients in one bucket and `small`'s in two.
const BUCKET_BYTES: usize = 32 << 20;

/// One parameter's gradient, taken out of the map and flattened, with its shape.
struct Flat<B: Backend> {
    param: ParamId,
    shape: Vec<usize>,
    values: Tensor<B, 1>,
}

fn take_flat<B: Backend, const D: usize>(
    grads: &mut GradientsParams,
    param: ParamId,
) -> Option<Flat<B>> {
    let grad = grads.remove::<B, D>(param)?;
    let shape = grad.dims().to_vec();
    let values = grad.reshape([shape.iter().product::<usize>()]);
    Some(Flat {
        param,
        shape,
        values,
    })
}

fn put_back<B: Backend, const D: usize>(
    grads: &mut GradientsParams,
    param: ParamId,
    shape: &[usize],
    values: Tensor<B, 1>,
) -> Result<(), String> {
    let dims: [usize; D] = shape
        .try_into()
        .map_err(|_| format!("a gradient of shape {shape:?} is not {D}-dimensional"))?;
    grads.register::<B, D>(param, values.reshape(dims));
    Ok(())
}

/// Averages one bucket over every peer and puts its gradients back into `grads`.
fn reduce_bucket<B: Backend>(
    id: PeerId,
    grads: &mut GradientsParams,
    bucket: Vec<Flat<B>>,
) -> Result<(), String> {
    let mut parts = Vec::with_capacity(bucket.len());
    let mut slots = Vec::with_capacity(bucket.len());
    for flat in bucket {
        slots.push((flat.param, flat.shape));
        parts.push(flat.values);
    }
    let joined = Tensor::cat(parts, 0);
    let out = all_reduce::<B>(id, joined.into_primitive().tensor(), ReduceOperation::Mean)
        .map_err(|e| format!("{e:?}"))?;
    let out = Tensor::<B, 1>::from_primitive(TensorPrimitive::Float(out));
    let mut offset = 0;
    for (param, shape) in slots {
        let n = shape.iter().product::<usize>();
        let values = out.clone().narrow(0, offset, n);
        offset += n;
        match shape.len() {
            1 => put_back::<B, 1>(grads, param, &shape, values)?,
            2 => put_back::<B, 2>(grads, param, &shape, values)?,
            3 => put_back::<B, 3>(grads, param, &shape, values)?,
            4 => put_back::<B, 4>(grads, param, &shape, values)?,
            d => return Err(format!("a parameter with {d} dimensions is not supported")),
        }
    }
    Ok(())
}

/// Averages `grads` over every peer of the collective: the gradients in `order`, flattened and
/// concatenated into buckets of about `bucket_bytes` ([`BUCKET_BYTES`] in training), one
/// all-reduce per bucket. The average
/// is element-wise, so bucketing changes no value: a sum of the peers' values, divided by the
/// peer count, as one tensor at a time would give.
fn reduce_grads<B: Backend>(
    id: PeerId,
    mut grads: GradientsParams,
    order: &[(ParamId, usize)],
    bucket_bytes: usize,
) -> Result<GradientsParams, String> {
    let (mut bucket, mut bytes) = (Vec::new(), 0usize);
    for &(param, dims) in order {
        let flat = match dims {
            1 => take_flat::<B, 1>(&mut grads, param),
            2 => take_flat::<B, 2>(&mut grads, param),
            3 => take_flat::<B, 3>(&mut grads, param),
            4 => take_flat::<B, 4>(&mut grads, param),
            d => return Err(format!("a parameter with {d} dimensions is not supported")),
        };
        let Some(flat) = flat else { continue };
        bytes += flat.values.dims()[0] * std::mem::size_of::<f32>();
        bucket.push(flat);
        if bytes >= bucket_bytes {
            reduce_bucket(id, &mut grads, std::mem::take(&mut bucket))?;
            bytes = 0;
        }
    }
    if !bucket.is_empty() {
        reduce_bucket(id, &mut grads, bucket)?;
    }
    Ok(grads)
}

/// The Sum all-reduce of `values` over every peer.
fn sum_values<B: Backend>(
    id: PeerId,
    values: Vec<f32>,
    device: &B::Device,
) -> Result<Vec<f32>, String> {
    let n = values.len();
    let tensor = Tensor::<B, 1>::from_data(TensorData::new(values, [n]), device);
    let out = all_reduce::<B>(id, tensor.into_primitive().tensor(), ReduceOperation::Sum)
        .map_err(|e| format!("{e:?}"))?;
    Tensor::<B, 1>::from_primitive(TensorPrimitive::Float(out))
        .into_data()
        .to_vec::<f32>()
        .map_err(|e| format!("{e:?}"))
}

/// The worker peers of a data-parallel run (none for a single device), and, in a multi-node
/// run, this node's place among the nodes.
pub struct Peers<B: AutodiffBackend> {
    workers: Vec<Worker>,
    /// The multi-node setup; `None` for a single-node run.
    world: Option<Resolved>,
    /// Whether peer 0 has joined the collective (several devices, or several nodes).
    joined: bool,
    order: ParamOrder,
    device0: B::Device,
}

fn collective_error(what: &str, e: impl std::fmt::Debug) -> TrainError {
    TrainError::Collective(format!("{what}: {e:?}"))
}

/// What a worker thread needs to know besides its channels.
struct WorkerSetup {
    /// This worker's peer index among all peers of all nodes.
    peer: usize,
    /// The number of peers of all nodes.
    peers: usize,
    config: CollectiveConfig,
    order: ParamOrder,
    record: fn(&StepMetrics) -> Record,
}

impl<B: AutodiffBackend> Peers<B> {
    /// Starts one worker per device in `devices` (local peers 1..), each with a replica of
    /// `model` and of `optimizer`'s state, and registers peer 0 (`device0`, the caller) with
    /// the collective. With `world` (several nodes), node 0 first starts the coordinator, and
    /// every node waits for it and for all nodes to join, within the join timeout. With no
    /// extra devices and one node nothing is started.
    pub fn start(
        model: &ElectraPretrainingModel<B>,
        optimizer: &ElectraAdam<B>,
        device0: &B::Device,
        devices: &[B::Device],
        record: fn(&StepMetrics) -> Record,
        world: Option<Resolved>,
    ) -> Result<Self, TrainError> {
        let order = param_order(model);
        if devices.is_empty() && world.is_none() {
            return Ok(Self {
                workers: Vec::new(),
                world,
                joined: false,
                order,
                device0: device0.clone(),
            });
        }
        let local = devices.len() + 1;
        let (config, first, total) = match &world {
            Some(w) => {
                if w.rank == 0 {
                    start_coordinator(w.coordinator.port)?;
                }
                check_port_free(
                    w.node.port,
                    "this node's tensor service, from --node-address",
                )?;
                wait_for_coordinator(&w.coordinator, w.join_timeout)?;
                (w.collective_config(local)?, w.rank * local, w.nodes * local)
            }
            None => (
                CollectiveConfig::default().with_num_devices(local),
                0,
                local,
            ),
        };
        reset_collective::<B::InnerBackend>();
        let mut workers = Vec::with_capacity(devices.len());
        for (i, device) in devices.iter().enumerate() {
            let peer = first + i + 1;
            let replica = model.clone().fork(device);
            let mut opt = ElectraAdam::<B>::new(optimizer.config().clone())?;
            opt.load_state(optimizer.state(), device);
            let device = device.clone();
            let (to, inbox) = channel();
            let (outbox, from) = channel();
            let setup = WorkerSetup {
                peer,
                peers: total,
                config: config.clone(),
                order: order.clone(),
                record,
            };
            let handle = std::thread::Builder::new()
                .name(format!("electra-peer-{peer}"))
                .spawn(move || worker::<B>(setup, replica, opt, device, inbox, outbox))
                .map_err(|e| TrainError::Collective(format!("cannot start peer {peer}: {e}")))?;
            workers.push(Worker {
                to,
                from,
                handle: Some(handle),
            });
        }
        let id = PeerId::from(first);
        let device = device0.clone();
        let registered = match &world {
            Some(w) => {
                let (nodes, coordinator) = (w.nodes, w.coordinator.clone());
                with_timeout(
                    w.join_timeout,
                    || {
                        format!(
                            "joining the run (all {nodes} nodes registering with the \
                             coordinator at {coordinator}; {} may not have started)",
                            w.others()
                        )
                    },
                    move || register::<B::InnerBackend>(id, device, config),
                )
                .map_err(|e| TrainError::Distributed(e.to_string()))?
            }
            None => register::<B::InnerBackend>(id, device, config),
        };
        registered.map_err(|e| collective_error("peer 0 cannot join the collective", e))?;
        Ok(Self {
            workers,
            world,
            joined: true,
            order,
            device0: device0.clone(),
        })
    }

    /// The number of peers on this node, peer 0 included.
    pub fn count(&self) -> usize {
        self.workers.len() + 1
    }

    /// The multi-node setup, if this is one of several nodes.
    pub fn world(&self) -> Option<&Resolved> {
        self.world.as_ref()
    }

    /// This node's first peer index among all peers, and the number of peers of all nodes.
    pub fn global(&self) -> (usize, usize) {
        match &self.world {
            Some(w) => (w.rank * self.count(), w.nodes * self.count()),
            None => (0, self.count()),
        }
    }

    /// Hands each worker its slices (`slices[i]` to local peer `i + 1`).
    pub fn send_step(
        &self,
        step: u64,
        lr: f64,
        slices: Vec<Vec<HostBatch>>,
    ) -> Result<(), TrainError> {
        for (i, (w, s)) in self.workers.iter().zip(slices).enumerate() {
            w.to.send(ToWorker::Step {
                step,
                lr,
                slices: s,
            })
            .map_err(|_| TrainError::Collective(format!("peer {} has stopped", i + 1)))?;
        }
        Ok(())
    }

    /// Each worker's records and first non-finite loss for the step just sent.
    pub fn collect(&self) -> Result<Vec<PeerRecords>, TrainError> {
        self.workers
            .iter()
            .enumerate()
            .map(|(i, w)| match w.from.recv() {
                Ok(Ok(report)) => Ok(report),
                Ok(Err(message)) => Err(TrainError::Collective(format!(
                    "peer {} failed: {message}",
                    i + 1
                ))),
                Err(_) => Err(TrainError::Collective(format!(
                    "peer {} ended unexpectedly",
                    i + 1
                ))),
            })
            .collect()
    }

    /// Lets the workers all-reduce and update.
    pub fn proceed(&self) {
        for w in &self.workers {
            // A worker that has gone reported it in `collect`.
            let _ = w.to.send(ToWorker::Proceed);
        }
    }

    /// Runs a collective call of peer 0: bounded by the collective timeout in a multi-node
    /// run (the error names the nodes waited for), direct otherwise.
    fn call<T: Send + 'static>(
        &self,
        what: &str,
        f: impl FnOnce() -> Result<T, String> + Send + 'static,
    ) -> Result<T, TrainError> {
        let timeout = self.world.as_ref().map(|w| w.collective_timeout);
        self.call_within(what, timeout, f)
    }

    /// [`Self::call`] with its own timeout (`None`: unbounded, single node only).
    fn call_within<T: Send + 'static>(
        &self,
        what: &str,
        timeout: Option<Duration>,
        f: impl FnOnce() -> Result<T, String> + Send + 'static,
    ) -> Result<T, TrainError> {
        let result = match (&self.world, timeout) {
            (Some(w), Some(timeout)) => with_timeout(
                timeout,
                || {
                    format!(
                        "{what} on node {} (waiting for {}: stopped, killed or unreachable?)",
                        w.rank,
                        w.others()
                    )
                },
                f,
            )?,
            _ => f(),
        };
        result.map_err(|e| match &self.world {
            Some(w) => TrainError::Collective(format!(
                "{what} failed on node {} ({} stopped or is unreachable?): {e}{}",
                w.rank,
                w.others(),
                if e.contains("NodeId") {
                    " (burn numbers the nodes in the order they joined, not by rank)"
                } else {
                    ""
                }
            )),
            None => collective_error(&format!("{what} failed"), e),
        })
    }

    /// Every node's `words` (the same count on every node), in node order: an exact
    /// all-gather over the Sum all-reduce (see [`crate::distributed::encode_words`]). A
    /// single-node run gets its own words back.
    pub fn gather_words(&self, words: &[u64]) -> Result<Vec<Vec<u64>>, TrainError> {
        let timeout = self.world.as_ref().map(|w| w.collective_timeout);
        self.gather_words_within(words, timeout)
    }

    /// [`Self::gather_words`] bounded by `timeout` instead of the collective timeout.
    pub fn gather_words_within(
        &self,
        words: &[u64],
        timeout: Option<Duration>,
    ) -> Result<Vec<Vec<u64>>, TrainError> {
        let Some(w) = &self.world else {
            return Ok(vec![words.to_vec()]);
        };
        let (nodes, len) = (w.nodes, words.len());
        let values = encode_words(words, w.rank, nodes);
        for worker in &self.workers {
            worker
                .to
                .send(ToWorker::Gather(values.len()))
                .map_err(|_| TrainError::Collective("a local peer has stopped".to_string()))?;
        }
        let (id, device) = (PeerId::from(self.global().0), self.device0.clone());
        let summed = self.call_within("an all-gather between the nodes", timeout, move || {
            sum_values::<B::InnerBackend>(id, values, &device)
        })?;
        decode_words(&summed, nodes, len)
    }

    /// Every node's `bytes` (any length), in node order; see [`Self::gather_words`].
    pub fn gather_bytes(&self, bytes: &[u8]) -> Result<Vec<Vec<u8>>, TrainError> {
        if self.world.is_none() {
            return Ok(vec![bytes.to_vec()]);
        }
        let lens = self.gather_words(&[bytes.len() as u64])?;
        let lens: Vec<usize> = lens.iter().map(|l| l[0] as usize).collect();
        let width = lens.iter().copied().max().unwrap_or(0).div_ceil(8);
        let mut words = bytes_to_words(bytes);
        words.resize(width, 0);
        let all = self.gather_words(&words)?;
        Ok(all
            .iter()
            .zip(lens)
            .map(|(w, len)| words_to_bytes(w, len))
            .collect())
    }

    /// Peer 0's part of the gradient all-reduce (identity for a single device on one node).
    pub fn all_reduce(&self, grads: GradientsParams) -> Result<GradientsParams, TrainError> {
        if !self.joined {
            return Ok(grads);
        }
        let id = PeerId::from(self.global().0);
        let order = self.order.clone();
        self.call("the gradient all-reduce", move || {
            reduce_grads::<B::InnerBackend>(id, grads, &order, BUCKET_BYTES)
        })
    }

    /// Stops the workers and, on one node, leaves the collective. With `finished = false` (an
    /// error on the way) the workers are told to stop without waiting for them. Several nodes
    /// do not leave burn's collective: leaving talks to the coordinator in node 0's process,
    /// which may already have ended; the process ends instead.
    pub fn stop(mut self, finished: bool) -> Result<(), TrainError> {
        if !self.joined {
            return Ok(());
        }
        let finish = finished && self.world.is_none();
        for w in &self.workers {
            let _ = w.to.send(ToWorker::Stop { finish });
        }
        if !finish {
            return Ok(());
        }
        finish_collective::<B::InnerBackend>(PeerId::from(0u32))
            .map_err(|e| collective_error("peer 0 cannot leave the collective", e))?;
        for (i, w) in self.workers.iter_mut().enumerate() {
            if let Some(handle) = w.handle.take()
                && handle.join().is_err()
            {
                return Err(TrainError::Collective(format!("peer {} panicked", i + 1)));
            }
        }
        Ok(())
    }
}

fn worker<B: AutodiffBackend>(
    setup: WorkerSetup,
    mut model: ElectraPretrainingModel<B>,
    mut optimizer: ElectraAdam<B>,
    device: B::Device,
    inbox: Receiver<ToWorker>,
    outbox: Sender<Report>,
) {
    let WorkerSetup {
        peer,
        peers,
        config,
        order,
        record,
    } = setup;
    let id = PeerId::from(peer);
    if let Err(e) = register::<B::InnerBackend>(id, device.clone(), config) {
        let _ = outbox.send(Err(format!("cannot join the collective: {e:?}")));
        return;
    }
    let mut pending: Option<(f64, GradientsParams)> = None;
    loop {
        match inbox.recv() {
            Ok(ToWorker::Step { step, lr, slices }) => {
                let work = match peer_gradients(&model, &slices, step, peers, peer, &record) {
                    Ok(work) => work,
                    Err(e) => {
                        let _ = outbox.send(Err(e.to_string()));
                        return;
                    }
                };
                pending = work.grads.map(|g| (lr, g));
                if outbox.send(Ok((work.records, work.non_finite))).is_err() {
                    return;
                }
            }
            Ok(ToWorker::Gather(len)) => {
                if let Err(e) = sum_values::<B::InnerBackend>(id, vec![0.0; len], &device) {
                    tracing::error!(peer, "all-gather failed: {e}");
                    return;
                }
            }
            Ok(ToWorker::Proceed) => {
                let Some((lr, grads)) = pending.take() else {
                    return;
                };
                let grads = match reduce_grads::<B::InnerBackend>(id, grads, &order, BUCKET_BYTES) {
                    Ok(grads) => grads,
                    Err(e) => {
                        tracing::error!(peer, "gradient all-reduce failed: {e}");
                        return;
                    }
                };
                model = optimizer.step(lr, model, grads, &|_| 1.0).0;
            }
            Ok(ToWorker::Stop { finish }) => {
                if finish && pending.is_none() {
                    let _ = finish_collective::<B::InnerBackend>(id);
                }
                return;
            }
            Err(_) => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_rows_keep_the_configured_length_for_the_masking_budget() {
        // Four rows padded to 6 in a run configured for 128 tokens: every peer's slice must
        // still mask with N = floor(0.155·128) = 19 slots, as one device would.
        let batch = HostBatch::new((0..24).collect(), vec![0; 24], vec![1; 24], 4, 6)
            .and_then(|b| b.with_max_seq_len(128))
            .expect("batch");
        let parts = split_rows(&batch, 2).expect("split");
        assert_eq!(parts.len(), 2);
        for (i, part) in parts.iter().enumerate() {
            assert_eq!((part.batch, part.seq, part.max_seq_len), (2, 6, 128));
            assert_eq!(
                part.input_ids,
                (i as i64 * 12..(i as i64 + 1) * 12).collect::<Vec<_>>()
            );
        }
    }

    fn register_grad<const D: usize>(
        grads: &mut GradientsParams,
        shape: [usize; D],
        values: Vec<f32>,
    ) -> ParamId {
        let id = ParamId::new();
        let device = Default::default();
        let tensor =
            Tensor::<burn::backend::Flex, D>::from_data(TensorData::new(values, shape), &device);
        grads.register::<burn::backend::Flex, D>(id, tensor);
        id
    }

    fn grad_values<const D: usize>(grads: &GradientsParams, id: ParamId) -> (Vec<usize>, Vec<f32>) {
        let tensor = grads
            .get::<burn::backend::Flex, D>(id)
            .expect("the gradient is back");
        let shape = tensor.dims().to_vec();
        (shape, tensor.into_data().to_vec::<f32>().expect("f32"))
    }

    /// With one peer the average is the identity, so what comes back shows the buckets'
    /// bookkeeping: every gradient, under its id, with its shape and values, whatever the
    /// bucket size (one bucket each, some together, all in one).
    #[test]
    fn buckets_put_every_gradient_back_with_its_shape_and_values() {
        type F = burn::backend::Flex;
        let config = CollectiveConfig::default().with_num_devices(1);
        reset_collective::<F>();
        register::<F>(PeerId::from(0u32), Default::default(), config).expect("register");
        let value = |k: usize, n: usize| {
            (0..n)
                .map(|i| (k * 100 + i) as f32 * 0.5)
                .collect::<Vec<_>>()
        };
        for bucket_bytes in [4, 48, 200, BUCKET_BYTES] {
            let mut grads = GradientsParams::new();
            let ids = [
                register_grad(&mut grads, [3], value(0, 3)),
                register_grad(&mut grads, [2, 5], value(1, 10)),
                register_grad(&mut grads, [2, 3, 4], value(2, 24)),
                register_grad(&mut grads, [1, 2, 2, 3], value(3, 12)),
            ];
            let order: ParamOrder = ids.iter().zip(1..).map(|(id, d)| (*id, d)).collect();
            let out =
                reduce_grads::<F>(PeerId::from(0u32), grads, &order, bucket_bytes).expect("reduce");
            assert_eq!(grad_values::<1>(&out, ids[0]), (vec![3], value(0, 3)));
            assert_eq!(grad_values::<2>(&out, ids[1]), (vec![2, 5], value(1, 10)));
            assert_eq!(
                grad_values::<3>(&out, ids[2]),
                (vec![2, 3, 4], value(2, 24))
            );
            assert_eq!(
                grad_values::<4>(&out, ids[3]),
                (vec![1, 2, 2, 3], value(3, 12)),
                "{bucket_bytes}"
            );
        }
        finish_collective::<F>(PeerId::from(0u32)).expect("finish");
    }
}
