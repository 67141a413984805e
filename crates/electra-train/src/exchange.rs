//! What the nodes of a multi-node run tell each other besides gradients, over the exact
//! all-gather of [`crate::distributed`] ([`Peers::gather_words`]): at the start, what each
//! node runs ([`agree`]); after computing each step, each node's metrics, first non-finite
//! loss, real tokens and stop request ([`share_step`]), so that every node logs the same
//! record and takes the same decision; at each checkpoint, each node's data cursor
//! ([`gather_cursors`]). A one-node run enters none of this.
//!
//! Metrics travel as the bits of their `f64`s, in the order of the key table
//! ([`OBJECTIVE_KEYS`]), so node 0's mean over every node is bit for bit what one process
//! would compute.

use std::time::Duration;

use burn::tensor::backend::AutodiffBackend;
use electra_objective::StepMetrics;

use crate::config::RunConfig;
use crate::distributed::fnv1a64;
use crate::error::TrainError;
use crate::observer::OBJECTIVE_KEYS;
use crate::parallel::Peers;

/// One node's part of a step, or (after [`share_step`]) every node's together.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct NodeStep {
    /// The metrics of every micro-batch of every peer (node by node, peer by peer).
    pub metrics: Vec<StepMetrics>,
    /// The first non-finite loss met, if any.
    pub non_finite: Option<f64>,
    /// Real (non-pad) tokens read.
    pub tokens: usize,
    /// Whether a stop was asked.
    pub stop: bool,
}

/// [`NodeStep`] on the wire: every `f64` as its bits.
#[derive(serde::Serialize, serde::Deserialize)]
struct Wire {
    /// Per micro-batch: each objective metric of [`OBJECTIVE_KEYS`] in order, then
    /// `masked_tokens`.
    metrics: Vec<(Vec<Option<u64>>, usize)>,
    non_finite: Option<u64>,
    tokens: usize,
    stop: bool,
}

fn json_error(what: &str, e: serde_json::Error) -> TrainError {
    TrainError::Collective(format!("{what}: {e}"))
}

fn metric_bits(m: &StepMetrics) -> (Vec<Option<u64>>, usize) {
    let bits = OBJECTIVE_KEYS
        .iter()
        .map(|(_, get, _)| get(m).map(f64::to_bits));
    (bits.collect(), m.masked_tokens)
}

fn metric_from_bits(
    (bits, masked_tokens): &(Vec<Option<u64>>, usize),
) -> Result<StepMetrics, TrainError> {
    if bits.len() != OBJECTIVE_KEYS.len() {
        return Err(TrainError::Collective(format!(
            "a node's step record holds {} metrics, expected {}; every node must run the \
             same build",
            bits.len(),
            OBJECTIVE_KEYS.len()
        )));
    }
    let mut m = StepMetrics {
        masked_tokens: *masked_tokens,
        ..StepMetrics::default()
    };
    for ((_, _, set), value) in OBJECTIVE_KEYS.iter().zip(bits) {
        if let Some(value) = value {
            set(&mut m, f64::from_bits(*value));
        }
    }
    Ok(m)
}

impl NodeStep {
    fn encode(&self) -> Result<Vec<u8>, TrainError> {
        let wire = Wire {
            metrics: self.metrics.iter().map(metric_bits).collect(),
            non_finite: self.non_finite.map(f64::to_bits),
            tokens: self.tokens,
            stop: self.stop,
        };
        serde_json::to_vec(&wire).map_err(|e| json_error("step record", e))
    }

    fn decode(bytes: &[u8]) -> Result<Self, TrainError> {
        let wire: Wire =
            serde_json::from_slice(bytes).map_err(|e| json_error("a node's step record", e))?;
        Ok(Self {
            metrics: wire
                .metrics
                .iter()
                .map(metric_from_bits)
                .collect::<Result<_, _>>()?,
            non_finite: wire.non_finite.map(f64::from_bits),
            tokens: wire.tokens,
            stop: wire.stop,
        })
    }

    /// Every node's steps as one: metrics in node order, the first non-finite loss, the sum of
    /// the tokens, a stop if any node asked.
    fn combine(nodes: impl IntoIterator<Item = Self>) -> Self {
        nodes.into_iter().fold(Self::default(), |mut all, node| {
            all.metrics.extend(node.metrics);
            all.non_finite = all.non_finite.or(node.non_finite);
            all.tokens += node.tokens;
            all.stop |= node.stop;
            all
        })
    }
}

/// Every node's part of the step, combined ([`NodeStep::combine`]): the same on every node.
pub(crate) fn share_step<B: AutodiffBackend>(
    peers: &Peers<B>,
    own: &NodeStep,
) -> Result<NodeStep, TrainError> {
    let nodes = peers.gather_bytes(&own.encode()?)?;
    let nodes = nodes.iter().map(|bytes| NodeStep::decode(bytes));
    Ok(NodeStep::combine(nodes.collect::<Result<Vec<_>, _>>()?))
}

/// Every node's data cursor, in node order (each node reads its own slice of the data).
pub(crate) fn gather_cursors<B: AutodiffBackend>(
    peers: &Peers<B>,
    cursor: &serde_json::Value,
) -> Result<Vec<serde_json::Value>, TrainError> {
    let bytes = serde_json::to_vec(cursor).map_err(|e| json_error("data cursor", e))?;
    peers
        .gather_bytes(&bytes)?
        .iter()
        .map(|b| serde_json::from_slice(b).map_err(|e| json_error("a node's cursor", e)))
        .collect()
}

/// Checks at the start that every node runs the same thing: the same `config.toml`, the same
/// number of devices, the same start step (the same checkpoint) and the same last step. The
/// nodes exchange these through the collective; each node compares every node with node 0,
/// so all of them stop with the same error naming the node that differs. Nothing on one node.
pub(crate) fn agree<B: AutodiffBackend>(
    peers: &Peers<B>,
    config: &RunConfig,
    start_step: u64,
    end: u64,
) -> Result<(), TrainError> {
    let Some(world) = peers.world() else {
        return Ok(());
    };
    let hash = fnv1a64(config.to_toml()?.as_bytes());
    let own = [hash, peers.count() as u64, start_step, end];
    let all = peers.gather_words(&own)?;
    for (rank, theirs) in all.iter().enumerate().skip(1) {
        if let Some(what) = difference(theirs, &all[0]) {
            return Err(TrainError::Distributed(format!(
                "node {rank} does not match node 0: {what}"
            )));
        }
    }
    // burn-collective 0.21.0 never resets its global barrier, so the second global
    // all-reduce of a process never completes (docs/multi-node.md). Probe it now, briefly,
    // so that such a build stops here with a pointer to the fix instead of hanging in the
    // first step until the collective timeout.
    let probe = world.collective_timeout.min(SECOND_EXCHANGE_TIMEOUT);
    peers
        .gather_words_within(&[1], Some(probe))
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

/// How a node's `[config hash, devices, start step, last step]` differs from node 0's.
fn difference(theirs: &[u64], zero: &[u64]) -> Option<String> {
    if theirs[0] != zero[0] {
        return Some(format!(
            "its run config differs (config hash {:016x}, node 0 has {:016x}); start every \
             node with the same preset, config file and --set flags",
            theirs[0], zero[0]
        ));
    }
    if theirs[1] != zero[1] {
        return Some(format!(
            "it has {} device(s), node 0 has {}; every node needs the same number",
            theirs[1], zero[1]
        ));
    }
    if theirs[2] != zero[2] {
        return Some(format!(
            "it starts at step {}, node 0 at step {}; every node must see the same \
             checkpoints (a shared run directory)",
            theirs[2], zero[2]
        ));
    }
    if theirs[3] != zero[3] {
        return Some(format!(
            "it stops after step {}, node 0 after step {}",
            theirs[3], zero[3]
        ));
    }
    None
}

/// How long the start-up probe of [`agree`] waits for the nodes' second exchange.
const SECOND_EXCHANGE_TIMEOUT: Duration = Duration::from_secs(30);

#[cfg(test)]
mod tests {
    use super::*;

    fn odd_metrics(loss: f64) -> StepMetrics {
        StepMetrics {
            loss,
            mlm_loss: -0.0,
            mlm_accuracy: f64::MIN_POSITIVE / 3.0,
            rtd_loss: Some(f64::from_bits(0x7ff8_0000_0000_0001)),
            disc_auc: None,
            sampled_equals_original: Some(1.0 / 3.0),
            masked_tokens: 17,
            ..StepMetrics::default()
        }
    }

    #[test]
    fn a_step_survives_the_wire_bit_for_bit() {
        let own = NodeStep {
            metrics: vec![odd_metrics(0.1), odd_metrics(f64::INFINITY)],
            non_finite: Some(f64::NAN),
            tokens: 12,
            stop: true,
        };
        let back = NodeStep::decode(&own.encode().expect("encode")).expect("decode");
        let all_bits = |s: &NodeStep| s.metrics.iter().map(metric_bits).collect::<Vec<_>>();
        assert_eq!(all_bits(&back), all_bits(&own));
        assert_eq!(back.metrics[0].disc_auc, None, "absent stays absent");
        assert_eq!(
            back.non_finite.map(f64::to_bits),
            own.non_finite.map(f64::to_bits)
        );
        assert_eq!((back.tokens, back.stop), (12, true));
    }

    #[test]
    fn nodes_combine_in_node_order() {
        let node = |loss, non_finite, stop| NodeStep {
            metrics: vec![odd_metrics(loss)],
            non_finite,
            tokens: 5,
            stop,
        };
        let all = NodeStep::combine([
            node(1.0, None, false),
            node(2.0, Some(f64::INFINITY), false),
            node(3.0, Some(-1.0), true),
        ]);
        let losses: Vec<f64> = all.metrics.iter().map(|m| m.loss).collect();
        assert_eq!(losses, [1.0, 2.0, 3.0]);
        assert_eq!(all.non_finite, Some(f64::INFINITY), "the first node's");
        assert_eq!((all.tokens, all.stop), (15, true));
    }

    #[test]
    fn a_record_of_another_build_is_refused() {
        let err = metric_from_bits(&(vec![Some(0); 3], 0)).expect_err("three metrics");
        assert!(
            err.to_string().contains("holds 3 metrics, expected 11"),
            "{err}"
        );
    }

    #[test]
    fn a_node_that_differs_is_named_by_what_differs() {
        let zero = [1, 2, 0, 10];
        assert_eq!(difference(&zero, &zero), None);
        let what = difference(&[1, 4, 0, 10], &zero).expect("devices differ");
        assert!(what.contains("it has 4 device(s), node 0 has 2"), "{what}");
        let what = difference(&[1, 2, 3, 10], &zero).expect("start differs");
        assert!(
            what.contains("starts at step 3, node 0 at step 0"),
            "{what}"
        );
    }
}
