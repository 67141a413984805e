//! Data-parallel training on several devices (paper §3.1 trains on TPU pods the same way): a
//! layer around the one-device step (`step::State::step`) that one device never enters. One model
//! replica per device, each micro-batch split by rows across the replicas, and the gradients
//! averaged with burn's collective all-reduce before every replica takes the same optimizer
//! step.
//!
//! `parallel::step` is one optimizer step with peers: peer 0 (the calling thread) reads the step's
//! micro-batches and splits each by rows ([`split_rows`]); it sends every worker (one thread
//! per extra device, [`Peers`]) its rows; every peer runs the one-device micro-batch loop on
//! its rows ([`peer_gradients`]: `step::forward`, metrics, non-finite check,
//! `step::backward`) and reports its typed metrics; on several nodes the nodes then
//! exchange their metrics, non-finite losses, tokens and stop requests
//! (`exchange::share_step`); if every loss was finite, peer 0 gives the go-ahead and
//! every peer all-reduces the gradients (mean, in buckets in module order: [`param_order`])
//! and applies the same Adam step. Identical parameters updated with identical averaged
//! gradients never drift apart, so only peer 0's replica is evaluated and saved. Each worker
//! owns a replica forked from peer 0's model and a copy of the optimizer state.
//!
//! Like the reference's TPU data parallelism (a `CrossShardOptimizer` averages the per-core
//! gradients), each peer's loss is the mean over its own rows and the peers' gradients are
//! averaged. Peer `p` of `N` draws the randomness of micro-step `(step·accum + micro)·N + p`
//! ([`micro_step`]), so `N` peers with `grad_accum_steps = a` compute exactly what one device
//! computes with `grad_accum_steps = a·N` over the same rows (up to float summation order); a
//! test checks it.
//!
//! The backend's random stream is process-wide on the CPU backends, so the seeding and the
//! forward pass of one micro-step ([`forward_lock`]) run one peer at a time; the backward
//! passes, the all-reduce and the optimizer steps run in parallel.
//!
//! Several nodes ([`crate::distributed`]): each process is one node with its own peers; peer
//! `p` of node `r` is global peer `r·D + p` of `N·D` (its randomness index uses those), and
//! burn's collective adds a global level to the same all-reduce. The gradients are reduced in
//! module order ([`param_order`]), the same in every process.

use std::time::Instant;

use burn::optim::{GradientsAccumulator, GradientsParams};
use burn::tensor::backend::AutodiffBackend;
use electra_objective::{ElectraPretrainingModel, HostBatch, StepMetrics};

use crate::error::TrainError;
use crate::exchange::{NodeStep, share_step};
use crate::logging::StepRecord;
use crate::step::{State, backward, forward, real_tokens};
use crate::trainer::BatchSource;

pub use crate::peers::{PeerRecords, Peers};
pub use crate::reduce::{ParamOrder, param_order};
pub use crate::step::{forward_lock, micro_step};

/// One optimizer step with peers (the state goes in and comes out): see the module docs.
/// `stop_asked` is this node's stop request; the flag returned says whether any node asked
/// to stop (on one node: `stop_asked`). A non-finite loss on any peer of any node is
/// [`TrainError::NonFinite`] on every node, before any update (the caller stops the peers).
pub(crate) fn step<'a, B: AutodiffBackend>(
    state: State<'a, B>,
    train: &mut dyn BatchSource,
    peers: &Peers<B>,
    stop_asked: bool,
) -> Result<(State<'a, B>, StepRecord, bool), TrainError> {
    let started = Instant::now();
    let t = &state.config.train;
    let nodes = peers.world().map_or(1, |w| w.nodes);
    let rows = t.batch_size / t.grad_accum_steps / nodes;
    let (mut slices, tokens) = read_split(train, rows, t.grad_accum_steps, peers.count())?;
    let lr = state.config.schedule_resolved().lr(state.step);
    let own = slices.remove(0);
    peers.send_step(state.step, lr, slices)?;
    let (first_peer, all_peers) = peers.global();
    let work = peer_gradients(&state.model, &own, state.step, all_peers, first_peer)?;
    let mut node = NodeStep {
        metrics: work.metrics,
        non_finite: work.non_finite,
        tokens,
        stop: stop_asked,
    };
    for (metrics, non_finite) in peers.collect()? {
        node.metrics.extend(metrics);
        node.non_finite = node.non_finite.or(non_finite);
    }
    if peers.world().is_some() {
        node = share_step(peers, &node)?;
    }
    let (Some(grads), None) = (work.grads, node.non_finite) else {
        return Err(state.non_finite(node.non_finite.unwrap_or(f64::NAN)));
    };
    peers.proceed();
    let (state, grad_norm) = state.apply(lr, peers.all_reduce(grads)?);
    let record = StepRecord::new(&node.metrics, lr, grad_norm, node.tokens, started);
    Ok((state, record, node.stop))
}

/// One step's `accum` micro-batches of `rows` rows, each split by rows across `peers`:
/// `slices[p]` holds peer `p`'s part of every micro-batch, in order. Also the real tokens
/// read.
fn read_split(
    train: &mut dyn BatchSource,
    rows: usize,
    accum: usize,
    peers: usize,
) -> Result<(Vec<Vec<HostBatch>>, usize), TrainError> {
    let mut slices: Vec<Vec<HostBatch>> = vec![Vec::new(); peers];
    let mut tokens = 0;
    for _ in 0..accum {
        let batch = train.next_batch(rows)?;
        tokens += real_tokens(&batch);
        if peers == 1 {
            slices[0].push(batch);
            continue;
        }
        for (peer, part) in split_rows(&batch, peers)?.into_iter().enumerate() {
            slices[peer].push(part);
        }
    }
    Ok((slices, tokens))
}

/// What one peer computed for one optimizer step.
pub struct PeerWork {
    /// The accumulated gradients of the peer's micro-batches (absent after a non-finite loss).
    pub grads: Option<GradientsParams>,
    /// The metrics of each micro-batch computed (up to a non-finite loss).
    pub metrics: Vec<StepMetrics>,
    /// The first non-finite loss met, if any (the peer stopped there).
    pub non_finite: Option<f64>,
}

/// Forward and backward of peer `peer` of `peers` on its micro-batches: the one-device loop
/// of `step` (gradients accumulated with the loss scaled by `1/accum`; the
/// all-reduce mean then divides by the number of peers), with a non-finite loss reported
/// instead of returned as an error, so that peer 0 can stop every peer.
pub fn peer_gradients<B: AutodiffBackend>(
    model: &ElectraPretrainingModel<B>,
    slices: &[HostBatch],
    step: u64,
    peers: usize,
    peer: usize,
) -> Result<PeerWork, TrainError> {
    let accum = slices.len();
    let mut grads = GradientsAccumulator::new();
    let mut metrics = Vec::with_capacity(accum);
    for (micro, batch) in slices.iter().enumerate() {
        let out = forward(model, batch, micro_step(step, accum, micro, peers, peer))?;
        let m = StepMetrics::compute(&out);
        let loss = m.loss;
        metrics.push(m);
        if !loss.is_finite() {
            return Ok(PeerWork {
                grads: None,
                metrics,
                non_finite: Some(loss),
            });
        }
        backward(model, out.loss, accum, &mut grads);
    }
    Ok(PeerWork {
        grads: Some(grads.grads()),
        metrics,
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
