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

use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Mutex, MutexGuard};
use std::thread::JoinHandle;

use burn::collective::{
    CollectiveConfig, PeerId, ReduceOperation, finish_collective, register, reset_collective,
};
use burn::module::Module;
use burn::optim::{GradientsAccumulator, GradientsParams};
use burn::tensor::backend::AutodiffBackend;
use electra_objective::{ElectraPretrainingModel, HostBatch, StepMetrics};

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
    /// All peers are healthy: all-reduce and update.
    Proceed,
    /// Leave the collective and end.
    Stop,
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

/// The worker peers of a data-parallel run (none for a single device).
pub struct Peers {
    workers: Vec<Worker>,
}

/// The collective's setup: every peer on this machine, one process.
fn collective_config(peers: usize) -> CollectiveConfig {
    CollectiveConfig::default().with_num_devices(peers)
}

fn collective_error(what: &str, e: impl std::fmt::Debug) -> TrainError {
    TrainError::Collective(format!("{what}: {e:?}"))
}

impl Peers {
    /// Starts one worker per device in `devices` (peers 1..), each with a replica of `model`
    /// and of `optimizer`'s state, and registers peer 0 (`device0`, the caller) with the
    /// collective. With no extra devices nothing is started.
    pub fn start<B: AutodiffBackend>(
        model: &ElectraPretrainingModel<B>,
        optimizer: &ElectraAdam<B>,
        device0: &B::Device,
        devices: &[B::Device],
        record: fn(&StepMetrics) -> Record,
    ) -> Result<Self, TrainError> {
        if devices.is_empty() {
            return Ok(Self {
                workers: Vec::new(),
            });
        }
        let peers = devices.len() + 1;
        reset_collective::<B::InnerBackend>();
        let mut workers = Vec::with_capacity(devices.len());
        for (i, device) in devices.iter().enumerate() {
            let peer = i + 1;
            let replica = model.clone().fork(device);
            let mut opt = ElectraAdam::<B>::new(optimizer.config().clone())?;
            opt.load_state(optimizer.state(), device);
            let device = device.clone();
            let (to, inbox) = channel();
            let (outbox, from) = channel();
            let handle = std::thread::Builder::new()
                .name(format!("electra-peer-{peer}"))
                .spawn(move || {
                    worker::<B>(peer, peers, replica, opt, device, inbox, outbox, record)
                })
                .map_err(|e| TrainError::Collective(format!("cannot start peer {peer}: {e}")))?;
            workers.push(Worker {
                to,
                from,
                handle: Some(handle),
            });
        }
        register::<B::InnerBackend>(
            PeerId::from(0u32),
            device0.clone(),
            collective_config(peers),
        )
        .map_err(|e| collective_error("peer 0 cannot join the collective", e))?;
        Ok(Self { workers })
    }

    /// The number of peers, peer 0 included.
    pub fn count(&self) -> usize {
        self.workers.len() + 1
    }

    /// Hands each worker its slices (`slices[i]` to peer `i + 1`).
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

    /// Peer 0's part of the gradient all-reduce (identity for a single device).
    pub fn all_reduce<B: AutodiffBackend>(
        &self,
        grads: GradientsParams,
    ) -> Result<GradientsParams, TrainError> {
        if self.workers.is_empty() {
            return Ok(grads);
        }
        grads
            .all_reduce::<B::InnerBackend>(PeerId::from(0u32), ReduceOperation::Mean)
            .map_err(|e| collective_error("gradient all-reduce failed on peer 0", e))
    }

    /// Stops the workers and leaves the collective. With `finished = false` (an error on the
    /// way) the workers are told to stop without waiting for them.
    pub fn stop<B: AutodiffBackend>(mut self, finished: bool) -> Result<(), TrainError> {
        if self.workers.is_empty() {
            return Ok(());
        }
        for w in &self.workers {
            let _ = w.to.send(ToWorker::Stop);
        }
        if !finished {
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

#[allow(clippy::too_many_arguments)]
fn worker<B: AutodiffBackend>(
    peer: usize,
    peers: usize,
    mut model: ElectraPretrainingModel<B>,
    mut optimizer: ElectraAdam<B>,
    device: B::Device,
    inbox: Receiver<ToWorker>,
    outbox: Sender<Report>,
    record: fn(&StepMetrics) -> Record,
) {
    let id = PeerId::from(peer);
    if let Err(e) = register::<B::InnerBackend>(id, device, collective_config(peers)) {
        let _ = outbox.send(Err(format!("cannot join the collective: {e:?}")));
        return;
    }
    while let Ok(ToWorker::Step { step, lr, slices }) = inbox.recv() {
        let work = match peer_gradients(&model, &slices, step, peers, peer, &record) {
            Ok(work) => work,
            Err(e) => {
                let _ = outbox.send(Err(e.to_string()));
                return;
            }
        };
        if outbox.send(Ok((work.records, work.non_finite))).is_err() {
            return;
        }
        let (Ok(ToWorker::Proceed), Some(grads)) = (inbox.recv(), work.grads) else {
            return;
        };
        let grads = match grads.all_reduce::<B::InnerBackend>(id, ReduceOperation::Mean) {
            Ok(grads) => grads,
            Err(e) => {
                tracing::error!(peer, "gradient all-reduce failed: {e:?}");
                return;
            }
        };
        model = optimizer.step(lr, model, grads, &|_| 1.0).0;
    }
    let _ = finish_collective::<B::InnerBackend>(id);
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
}
