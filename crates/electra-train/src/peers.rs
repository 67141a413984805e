//! The peers of a data-parallel run and, in a multi-node run, this node's place among the
//! nodes: one worker thread per extra device, each with a replica of the model and of the
//! optimizer state, driven by peer 0 (the caller) through channels, and burn's collective
//! joining them (and the nodes) in one all-reduce. See [`crate::parallel`] for the protocol
//! of a step. A run on one device and one node starts none of this.

use std::sync::mpsc::{Receiver, Sender, channel};
use std::thread::JoinHandle;
use std::time::Duration;

use burn::collective::{CollectiveConfig, PeerId, finish_collective, register, reset_collective};
use burn::module::Module;
use burn::optim::GradientsParams;
use burn::tensor::backend::AutodiffBackend;
use electra_objective::{ElectraPretrainingModel, HostBatch, StepMetrics};

use crate::distributed::{
    Resolved, bytes_to_words, check_port_free, decode_words, encode_words, start_coordinator,
    wait_for_coordinator, with_timeout, words_to_bytes,
};
use crate::error::TrainError;
use crate::optim::ElectraAdam;
use crate::parallel::peer_gradients;
use crate::reduce::{BUCKET_BYTES, ParamOrder, param_order, reduce_grads, sum_values};

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

/// A peer's metrics of one step (one per micro-batch computed) and the first non-finite loss
/// it met.
pub type PeerRecords = (Vec<StepMetrics>, Option<f64>);

/// A worker's report for one step, or its error.
type Report = Result<PeerRecords, String>;

struct Worker {
    to: Sender<ToWorker>,
    from: Receiver<Report>,
    handle: Option<JoinHandle<()>>,
}

/// The worker peers of a data-parallel run (one per device after the first), and, in a
/// multi-node run, this node's place among the nodes. Peer 0 (the caller) has joined burn's
/// collective.
pub struct Peers<B: AutodiffBackend> {
    workers: Vec<Worker>,
    /// The multi-node setup; `None` for a single-node run.
    world: Option<Resolved>,
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
}

impl<B: AutodiffBackend> Peers<B> {
    /// Starts one worker per device in `devices` (local peers 1..), each with a replica of
    /// `model` and of `optimizer`'s state, and registers peer 0 (`device0`, the caller) with
    /// the collective. With `world` (several nodes), node 0 first starts the coordinator, and
    /// every node waits for it and for all nodes to join, within the join timeout. The
    /// trainer starts peers only for several devices or several nodes.
    pub fn start(
        model: &ElectraPretrainingModel<B>,
        optimizer: &ElectraAdam<B>,
        device0: &B::Device,
        devices: &[B::Device],
        world: Option<Resolved>,
    ) -> Result<Self, TrainError> {
        let order = param_order(model);
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

    /// Peer 0's part of the gradient all-reduce (the mean over every peer of every node).
    pub fn all_reduce(&self, grads: GradientsParams) -> Result<GradientsParams, TrainError> {
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
                let work = match peer_gradients(&model, &slices, step, peers, peer) {
                    Ok(work) => work,
                    Err(e) => {
                        let _ = outbox.send(Err(e.to_string()));
                        return;
                    }
                };
                pending = work.grads.map(|g| (lr, g));
                if outbox.send(Ok((work.metrics, work.non_finite))).is_err() {
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
