//! Multi-node data-parallel training over burn's global collective (see `docs/multi-node.md`).
//!
//! A multi-node run is `nodes` processes (usually one per machine), each training
//! data-parallel on its own devices as [`crate::parallel`] describes; burn's collective joins
//! them into one all-reduce. burn 0.21 does this in two levels: inside a process the peers
//! (devices) reduce locally, and one tensor per process goes through the *global* level, a
//! websocket service on every node (peer-to-peer tensor downloads) introduced to each other by a
//! *global orchestrator* (`burn_collective::start_global_orchestrator`). Node 0 runs the
//! orchestrator inside its own process ([`start_coordinator`]).
//!
//! What this module adds around burn's API:
//!
//! - [`NodeSetup`]: the node's rank, the node count and the addresses, validated with errors
//!   that name the flag and what was expected; [`NodeSetup::collective_config`] turns it into
//!   burn's `CollectiveConfig` (the global all-reduce is a tree: burn's default ring refuses
//!   tensors with fewer elements than nodes along their largest dimension, such as the
//!   discriminator head's one-element bias).
//! - Bounded waits: burn retries a connection to the orchestrator forever and blocks in every
//!   collective call until all nodes take part. [`wait_for_coordinator`] refuses an unreachable
//!   coordinator after `join_timeout`; [`with_timeout`] bounds each collective call by
//!   `collective_timeout` and names the nodes that did not answer.
//! - An exact all-gather ([`encode_words`] / [`decode_words`]) built on the Sum all-reduce:
//!   each node writes its 64-bit words, as four 16-bit chunks (exact in `f32`), into its own
//!   slot of a zero tensor, so the sum is every node's words side by side. The trainer uses it
//!   (`exchange.rs`) to compare the nodes' configs at the start, to share each step's metrics
//!   (rank 0 logs the mean over every node, bit for bit as one process would), to agree on
//!   stopping, and to collect every node's data cursor into rank 0's checkpoints.

use std::net::{SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::sync::mpsc::channel;
use std::time::{Duration, Instant};

use burn::collective::{AllReduceStrategy, CollectiveConfig};

use crate::error::TrainError;

/// The coordinator's default port (the one torchrun uses for its rendezvous).
pub const DEFAULT_COORDINATOR_PORT: u16 = 29500;

/// Environment variables read by the CLI when the flags are absent (documented in
/// `docs/multi-node.md`): node count, this node's rank, the coordinator's `HOST:PORT`, this
/// node's `HOST:PORT`.
pub const ENV_NODES: &str = "ELECTRA_NNODES";
/// See [`ENV_NODES`].
pub const ENV_NODE_RANK: &str = "ELECTRA_NODE_RANK";
/// See [`ENV_NODES`].
pub const ENV_COORDINATOR: &str = "ELECTRA_COORDINATOR";
/// See [`ENV_NODES`].
pub const ENV_NODE_ADDRESS: &str = "ELECTRA_NODE_ADDRESS";

/// Where this process sits in a multi-node run and how it reaches the others. Not part of the
/// run's config (`config.toml`): a run may be resumed with other addresses or another node
/// count (its checkpoints hold one data cursor per node; on another count every node starts
/// at the earliest of them).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeSetup {
    /// Number of nodes (processes) in the run. Default 1: a single-node run, no network.
    pub nodes: usize,
    /// This node's rank, `0..nodes`. Default 0. Node 0 runs the coordinator, evaluates and
    /// writes `config.toml`, metrics and checkpoints; the others write nothing.
    pub node_rank: usize,
    /// `HOST:PORT` of the coordinator (burn's global orchestrator), which node 0 starts on
    /// `PORT`. Default `127.0.0.1:29500`.
    pub coordinator: String,
    /// `HOST:PORT` at which the other nodes reach this node's tensor service; the service
    /// listens on `PORT`. Default: the coordinator's host and port `coordinator port + 1 +
    /// node_rank` (right for several nodes on one machine; give it on a cluster).
    pub node_address: Option<String>,
    /// How long to wait for the coordinator to answer and for every node to join. Default 60 s.
    pub join_timeout: Duration,
    /// How long one collective operation (a step's metrics exchange, the gradient all-reduce)
    /// may take before the run stops with an error naming the nodes that did not answer; it
    /// must exceed the slowest node's step time plus node 0's evaluation and checkpoint
    /// writing, which the other nodes wait for. Default 300 s.
    pub collective_timeout: Duration,
}

impl Default for NodeSetup {
    fn default() -> Self {
        Self {
            nodes: 1,
            node_rank: 0,
            coordinator: format!("127.0.0.1:{DEFAULT_COORDINATOR_PORT}"),
            node_address: None,
            join_timeout: Duration::from_secs(60),
            collective_timeout: Duration::from_secs(300),
        }
    }
}

/// A `HOST:PORT` pair; `HOST` may be a name, an IPv4 address or a bracketed IPv6 address.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostPort {
    /// The host as written (IPv6 in brackets).
    pub host: String,
    /// The port (never 0).
    pub port: u16,
}

impl HostPort {
    /// Parses `HOST:PORT`; `what` names the flag in the error.
    pub fn parse(text: &str, what: &str) -> Result<Self, TrainError> {
        let bad = |why: &str| {
            TrainError::Distributed(format!(
                "{what} `{text}`: {why}; expected HOST:PORT, e.g. 10.0.0.1:{DEFAULT_COORDINATOR_PORT}"
            ))
        };
        let Some((host, port)) = text.rsplit_once(':') else {
            return Err(bad("no port"));
        };
        if host.is_empty() {
            return Err(bad("no host"));
        }
        if host.contains(':') && !(host.starts_with('[') && host.ends_with(']')) {
            return Err(bad("an IPv6 host must be in brackets, as in [::1]:29500"));
        }
        let port: u16 = port
            .parse()
            .map_err(|_| bad("the port is not a number from 1 to 65535"))?;
        if port == 0 {
            return Err(bad("port 0 is not allowed"));
        }
        Ok(Self {
            host: host.to_string(),
            port,
        })
    }

    /// The socket addresses the host resolves to.
    fn resolve(&self) -> Result<Vec<SocketAddr>, TrainError> {
        let host = self.host.trim_start_matches('[').trim_end_matches(']');
        let addrs: Vec<SocketAddr> = (host, self.port)
            .to_socket_addrs()
            .map_err(|e| {
                TrainError::Distributed(format!("cannot resolve host `{}`: {e}", self.host))
            })?
            .collect();
        if addrs.is_empty() {
            return Err(TrainError::Distributed(format!(
                "host `{}` resolves to no address",
                self.host
            )));
        }
        Ok(addrs)
    }

    /// The websocket URL burn's communication layer expects (`ws://HOST:PORT`; burn rejects a
    /// bare `HOST:PORT`).
    fn ws(&self) -> String {
        format!("ws://{}:{}", self.host, self.port)
    }
}

impl std::fmt::Display for HostPort {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.host, self.port)
    }
}

/// A validated [`NodeSetup`]: ranks in range, addresses parsed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Resolved {
    /// Number of nodes.
    pub nodes: usize,
    /// This node's rank.
    pub rank: usize,
    /// The coordinator.
    pub coordinator: HostPort,
    /// This node's tensor service.
    pub node: HostPort,
    /// See [`NodeSetup::join_timeout`].
    pub join_timeout: Duration,
    /// See [`NodeSetup::collective_timeout`].
    pub collective_timeout: Duration,
}

impl NodeSetup {
    /// Whether this is a run of several nodes.
    pub fn is_multi(&self) -> bool {
        self.nodes > 1
    }

    /// Checks the setup: at least one node, the rank below the node count, parseable
    /// addresses, the node's port distinct from the coordinator's on one host, positive
    /// timeouts.
    pub fn validate(&self) -> Result<Resolved, TrainError> {
        if self.nodes == 0 {
            return Err(TrainError::Distributed(
                "--nodes 0: a run needs at least one node".to_string(),
            ));
        }
        if self.node_rank >= self.nodes {
            return Err(TrainError::Distributed(format!(
                "--node-rank {} is out of range: with --nodes {} the ranks are 0 to {}",
                self.node_rank,
                self.nodes,
                self.nodes - 1
            )));
        }
        if u32::try_from(self.nodes).is_err() {
            return Err(TrainError::Distributed(format!(
                "--nodes {} is too large",
                self.nodes
            )));
        }
        let coordinator = HostPort::parse(&self.coordinator, "--coordinator")?;
        let node = match &self.node_address {
            Some(text) => HostPort::parse(text, "--node-address")?,
            None => {
                let port = usize::from(coordinator.port) + 1 + self.node_rank;
                let port = u16::try_from(port).map_err(|_| {
                    TrainError::Distributed(format!(
                        "the default node port ({port} = coordinator port + 1 + rank) is above \
                         65535; give --node-address HOST:PORT"
                    ))
                })?;
                HostPort {
                    host: coordinator.host.clone(),
                    port,
                }
            }
        };
        if self.is_multi() && node.port == coordinator.port && node.host == coordinator.host {
            return Err(TrainError::Distributed(format!(
                "--node-address {node} is the coordinator's address; give the node another port"
            )));
        }
        for (name, t) in [
            ("join timeout", self.join_timeout),
            ("collective timeout", self.collective_timeout),
        ] {
            if t.is_zero() {
                return Err(TrainError::Distributed(format!(
                    "the {name} must be positive"
                )));
            }
        }
        Ok(Resolved {
            nodes: self.nodes,
            rank: self.node_rank,
            coordinator,
            node,
            join_timeout: self.join_timeout,
            collective_timeout: self.collective_timeout,
        })
    }
}

impl Resolved {
    /// burn's collective config for this node with `devices` local peers: the global level
    /// (node count, coordinator, this node's address and data-service port) and a tree for
    /// the global all-reduce (see the module docs for why not the ring).
    pub fn collective_config(&self, devices: usize) -> Result<CollectiveConfig, TrainError> {
        let parse = |url: String| {
            url.parse::<burn_communication::Address>()
                .map_err(|e| TrainError::Distributed(format!("address {url}: {e}")))
        };
        let nodes = u32::try_from(self.nodes)
            .map_err(|_| TrainError::Distributed(format!("--nodes {} is too large", self.nodes)))?;
        Ok(CollectiveConfig::default()
            .with_num_devices(devices)
            .with_num_nodes(nodes)
            .with_global_address(parse(self.coordinator.ws())?)
            .with_node_address(parse(self.node.ws())?)
            .with_data_service_port(self.node.port)
            .with_global_all_reduce_strategy(AllReduceStrategy::Tree(2)))
    }

    /// "node 1", or "nodes 1, 2, 3": every node but this one (the ones a stalled collective
    /// waits for; burn does not say which of them failed).
    pub fn others(&self) -> String {
        let others: Vec<String> = (0..self.nodes)
            .filter(|&r| r != self.rank)
            .map(|r| r.to_string())
            .collect();
        match others.len() {
            1 => format!("node {}", others[0]),
            _ => format!("nodes {}", others.join(", ")),
        }
    }
}

/// Checks that nothing listens on `port` yet (burn's websocket servers listen on all
/// interfaces, `0.0.0.0`, and fail silently in a background task when the port is taken).
pub fn check_port_free(port: u16, what: &str) -> Result<(), TrainError> {
    TcpListener::bind(("0.0.0.0", port)).map(drop).map_err(|e| {
        TrainError::Distributed(format!(
            "cannot listen on port {port} ({what}): {e}; is another run using it?"
        ))
    })
}

/// Starts burn's global orchestrator on `port` in a background thread of this process (node
/// 0). It listens on every interface (burn 0.21's websocket server binds `0.0.0.0`) and lives
/// until the process ends.
pub fn start_coordinator(port: u16) -> Result<(), TrainError> {
    check_port_free(port, "the coordinator, from --coordinator")?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("electra-coordinator")
        .enable_all()
        .build()
        .map_err(|e| TrainError::Distributed(format!("cannot start the coordinator: {e}")))?;
    std::thread::Builder::new()
        .name("electra-coordinator".to_string())
        .spawn(move || runtime.block_on(burn_collective::start_global_orchestrator(port)))
        .map_err(|e| TrainError::Distributed(format!("cannot start the coordinator: {e}")))?;
    Ok(())
}

/// Waits until a TCP connection to the coordinator succeeds, at most `timeout` (burn itself
/// would retry forever).
pub fn wait_for_coordinator(coordinator: &HostPort, timeout: Duration) -> Result<(), TrainError> {
    let addrs = coordinator.resolve()?;
    let start = Instant::now();
    loop {
        for addr in &addrs {
            let left = timeout.saturating_sub(start.elapsed());
            let attempt = left
                .min(Duration::from_secs(1))
                .max(Duration::from_millis(10));
            if TcpStream::connect_timeout(addr, attempt).is_ok() {
                return Ok(());
            }
        }
        if start.elapsed() >= timeout {
            return Err(TrainError::Distributed(format!(
                "cannot reach the coordinator at {coordinator} within {} s; node 0 starts it: \
                 start node 0 first, and check --coordinator (or {ENV_COORDINATOR}) and the \
                 firewall",
                timeout.as_secs_f64()
            )));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Runs `f` on a helper thread and waits at most `timeout` for it. On a timeout the helper
/// stays blocked (burn's collective calls cannot be cancelled) and the error says `what` did
/// not finish; the caller is expected to end the process.
pub fn with_timeout<T: Send + 'static>(
    timeout: Duration,
    what: impl FnOnce() -> String,
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, TrainError> {
    let (tx, rx) = channel();
    std::thread::Builder::new()
        .name("electra-collective".to_string())
        .spawn(move || {
            let _ = tx.send(f());
        })
        .map_err(|e| TrainError::Collective(format!("cannot start a helper thread: {e}")))?;
    match rx.recv_timeout(timeout) {
        Ok(value) => Ok(value),
        Err(std::sync::mpsc::RecvTimeoutError::Timeout) => Err(TrainError::Collective(format!(
            "{} did not finish within {} s",
            what(),
            timeout.as_secs_f64()
        ))),
        Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => Err(TrainError::Collective(
            format!("{} failed: burn's collective panicked", what()),
        )),
    }
}

/// The all-gather's tensor for this node: `nodes` slots of `words.len() × 4` values, this
/// node's words in slot `rank` as 16-bit chunks (low first), zeros elsewhere. Summed over
/// every peer (the other local peers send zeros), it holds every node's words exactly.
pub fn encode_words(words: &[u64], rank: usize, nodes: usize) -> Vec<f32> {
    let width = words.len() * 4;
    let mut values = vec![0.0f32; width * nodes];
    for (i, w) in words.iter().enumerate() {
        for c in 0..4 {
            values[rank * width + i * 4 + c] = ((w >> (16 * c)) & 0xffff) as f32;
        }
    }
    values
}

/// Reads the summed tensor of [`encode_words`] back: `nodes` lists of `len` words. A value
/// that is not a 16-bit integer (two peers wrote the same slot, or a node sent something
/// else) is an error.
pub fn decode_words(values: &[f32], nodes: usize, len: usize) -> Result<Vec<Vec<u64>>, TrainError> {
    if values.len() != nodes * len * 4 {
        return Err(TrainError::Collective(format!(
            "all-gather: {} values, expected {} ({nodes} nodes × {len} words × 4)",
            values.len(),
            nodes * len * 4
        )));
    }
    values
        .chunks_exact(len * 4)
        .map(|slot| {
            slot.chunks_exact(4)
                .map(|chunks| {
                    chunks.iter().enumerate().try_fold(0u64, |acc, (c, &v)| {
                        if !(0.0..=65535.0).contains(&v) || v.fract() != 0.0 {
                            return Err(TrainError::Collective(format!(
                                "all-gather: value {v} is not a 16-bit chunk; the nodes sent \
                                 different things"
                            )));
                        }
                        Ok(acc | ((v as u64) << (16 * c)))
                    })
                })
                .collect()
        })
        .collect()
}

/// Bytes as little-endian 64-bit words (the last one zero-padded).
pub fn bytes_to_words(bytes: &[u8]) -> Vec<u64> {
    bytes
        .chunks(8)
        .map(|c| {
            let mut b = [0u8; 8];
            b[..c.len()].copy_from_slice(c);
            u64::from_le_bytes(b)
        })
        .collect()
}

/// The first `len` bytes of little-endian words.
pub fn words_to_bytes(words: &[u64], len: usize) -> Vec<u8> {
    let mut bytes: Vec<u8> = words.iter().flat_map(|w| w.to_le_bytes()).collect();
    bytes.truncate(len);
    bytes
}

/// FNV-1a, 64 bits: a stable hash (the same on every machine and build) of the config text.
pub fn fnv1a64(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn setup(nodes: usize, rank: usize) -> NodeSetup {
        NodeSetup {
            nodes,
            node_rank: rank,
            ..NodeSetup::default()
        }
    }

    #[test]
    fn a_rank_out_of_range_is_refused_naming_the_valid_ranks() {
        let err = setup(2, 2).validate().expect_err("rank 2 of 2");
        assert!(
            err.to_string()
                .contains("--node-rank 2 is out of range: with --nodes 2 the ranks are 0 to 1"),
            "{err}"
        );
        assert!(setup(0, 0).validate().is_err());
        assert!(setup(2, 1).validate().is_ok());
    }

    #[test]
    fn addresses_parse_and_default_node_ports_follow_the_rank() {
        let r = setup(3, 2).validate().expect("valid");
        assert_eq!(r.coordinator.to_string(), "127.0.0.1:29500");
        assert_eq!(r.node.to_string(), "127.0.0.1:29503");
        assert_eq!(r.others(), "nodes 0, 1");
        assert_eq!(setup(2, 0).validate().expect("valid").others(), "node 1");
        for bad in ["10.0.0.1", ":29500", "host:0", "host:port", "::1:29500"] {
            let err = HostPort::parse(bad, "--coordinator").expect_err(bad);
            assert!(err.to_string().contains("expected HOST:PORT"), "{err}");
        }
        assert_eq!(HostPort::parse("[::1]:7", "x").expect("v6").port, 7);
        let same = NodeSetup {
            node_address: Some("127.0.0.1:29500".into()),
            ..setup(2, 1)
        };
        assert!(same.validate().is_err());
    }

    #[test]
    fn gathered_words_survive_the_sum_of_every_peer_exactly() {
        let a = [u64::MAX, 0, 0x0123_4567_89ab_cdef, f64::NAN.to_bits()];
        let b = [1, 2, 3, (-0.0f64).to_bits()];
        let zeros = vec![0.0f32; 3 * 4 * 4];
        let sum: Vec<f32> = encode_words(&a, 0, 3)
            .iter()
            .zip(encode_words(&b, 2, 3))
            .zip(&zeros)
            .map(|((x, y), z)| x + y + z)
            .collect();
        let got = decode_words(&sum, 3, 4).expect("decode");
        assert_eq!(got, vec![a.to_vec(), vec![0; 4], b.to_vec()]);
        // Two peers writing one slot is detected, not silently misread.
        let twice: Vec<f32> = encode_words(&a, 0, 3).iter().map(|v| v * 2.0).collect();
        assert!(decode_words(&twice, 3, 4).is_err());
        let bytes = b"config text".to_vec();
        assert_eq!(words_to_bytes(&bytes_to_words(&bytes), bytes.len()), bytes);
    }

    #[test]
    fn an_unreachable_coordinator_is_refused_within_the_timeout() {
        // A port nothing listens on: bind one, note it, close it.
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let coordinator = HostPort {
            host: "127.0.0.1".into(),
            port,
        };
        let start = Instant::now();
        let err = wait_for_coordinator(&coordinator, Duration::from_millis(600))
            .expect_err("nothing listens");
        assert!(start.elapsed() < Duration::from_secs(5));
        assert!(
            err.to_string()
                .contains(&format!("cannot reach the coordinator at 127.0.0.1:{port}")),
            "{err}"
        );
    }

    #[test]
    fn the_config_hash_is_stable() {
        // FNV-1a test vectors: a different build or machine must hash the same text alike.
        assert_eq!(fnv1a64(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a64(b"a"), 0xaf63_dc4c_8601_ec8c);
    }
}
