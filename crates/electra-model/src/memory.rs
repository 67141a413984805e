//! Will it fit? Parameter counts from a config, the memory a model (or a training run) needs,
//! and the memory this machine has, checked before anything is allocated.
//!
//! Without this check a config asking for an enormous model (`hidden_size = 10⁹`) reaches the
//! allocator, which aborts the process ("memory allocation of N bytes failed") or, for a model
//! just too large, pushes the machine into swap or the out-of-memory killer. [`check`] compares
//! an estimate with what the machine has and refuses with [`ModelError::OutOfMemory`] (naming
//! both, and what the estimate is made of), or returns a warning when the estimate is above
//! [`NEAR_LIMIT`] of it.
//!
//! **What the machine has** ([`HostMemory::read`]): Linux's `MemAvailable` (`/proc/meminfo`),
//! lowered to what the process's cgroup may still use (`memory.max − memory.current`, cgroup
//! v2) when that is less, as on a cluster node or in a container. `ELECTRA_MEMORY_AVAILABLE`
//! (bytes, or with a `K`/`M`/`G`/`T` suffix, powers of 1024) replaces it, to keep a run
//! within a share of a shared machine (and for tests).
//!
//! **The estimate** counts what is certain (f32 weights, and for training their gradients and
//! the two Adam moments) plus an estimate of the activations kept for the backward pass; it
//! leaves out the allocator's overhead and the data loader, so a run the check lets through
//! can still be too large, but one it refuses cannot fit. It applies to the CPU backends
//! (flex, ndarray), whose tensors live in this memory; a GPU's memory is not checked here.

use std::path::Path;

use crate::config::ElectraConfig;
use crate::error::ModelError;

/// The environment variable that replaces the available memory (see the module docs).
pub const MEMORY_ENV: &str = "ELECTRA_MEMORY_AVAILABLE";

/// Above this share of the available memory a run starts with a warning.
pub const NEAR_LIMIT: f64 = 0.8;

/// Bytes of one f32.
const F32: u128 = 4;

/// The memory this process may still use.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostMemory {
    /// Bytes available.
    pub available: u64,
    /// Where the number comes from (`MemAvailable in /proc/meminfo`, the cgroup limit, or
    /// the environment variable).
    pub source: String,
}

impl HostMemory {
    /// What this machine has; `None` where it cannot be known (not Linux, no `/proc`), in
    /// which case nothing is checked. An unreadable `ELECTRA_MEMORY_AVAILABLE` is an error
    /// naming it.
    pub fn read() -> Result<Option<Self>, ModelError> {
        if let Ok(text) = std::env::var(MEMORY_ENV) {
            let available = parse_size(&text).ok_or_else(|| {
                ModelError::InvalidConfig(format!(
                    "{MEMORY_ENV}={text:?}: expected bytes, optionally with a K, M, G or T \
                     suffix (powers of 1024), e.g. 12G"
                ))
            })?;
            return Ok(Some(Self {
                available,
                source: format!("{MEMORY_ENV}={text}"),
            }));
        }
        let Some(meminfo) = read_small("/proc/meminfo") else {
            return Ok(None);
        };
        let Some(available) = meminfo_available(&meminfo) else {
            return Ok(None);
        };
        let mut memory = Self {
            available,
            source: "MemAvailable in /proc/meminfo".to_string(),
        };
        if let Some(left) = cgroup_left(Path::new("/sys/fs/cgroup"))
            && left < memory.available
        {
            memory = Self {
                available: left,
                source: "this process's cgroup limit (memory.max − memory.current)".to_string(),
            };
        }
        Ok(Some(memory))
    }
}

fn read_small(path: impl AsRef<Path>) -> Option<String> {
    std::fs::read_to_string(path).ok()
}

/// `MemAvailable` of a `/proc/meminfo` text, in bytes.
fn meminfo_available(text: &str) -> Option<u64> {
    let line = text.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let mut words = line.split_whitespace().skip(1);
    let value: u64 = words.next()?.parse().ok()?;
    let unit = match words.next() {
        Some("kB") => 1024,
        None => 1,
        Some(_) => return None,
    };
    value.checked_mul(unit)
}

/// What the cgroup (v2) rooted at `root` still allows: `memory.max − memory.current`, or
/// `None` without a limit.
fn cgroup_left(root: &Path) -> Option<u64> {
    let max: u64 = read_small(root.join("memory.max"))?.trim().parse().ok()?;
    let current: u64 = read_small(root.join("memory.current"))?
        .trim()
        .parse()
        .ok()?;
    Some(max.saturating_sub(current))
}

/// `123`, `64K`, `1.5G`, `2T` (powers of 1024) to bytes.
fn parse_size(text: &str) -> Option<u64> {
    let text = text.trim();
    let (number, unit) = match text.char_indices().last()? {
        (i, c) if c.is_ascii_alphabetic() => (&text[..i], c.to_ascii_uppercase()),
        _ => (text, 'B'),
    };
    let scale: f64 = match unit {
        'B' => 1.0,
        'K' => 1024.0,
        'M' => 1024.0 * 1024.0,
        'G' => 1024.0 * 1024.0 * 1024.0,
        'T' => 1024.0 * 1024.0 * 1024.0 * 1024.0,
        _ => return None,
    };
    let value: f64 = number.trim().parse().ok()?;
    (value.is_finite() && value >= 0.0 && value * scale < u64::MAX as f64)
        .then_some((value * scale) as u64)
}

/// An estimate of the memory something needs, part by part, in bytes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MemoryEstimate {
    /// `(what, bytes)`, e.g. `("weights", 440_000_000)`.
    pub parts: Vec<(String, u128)>,
}

impl MemoryEstimate {
    /// Adds a part.
    pub fn add(&mut self, what: impl Into<String>, bytes: u128) {
        self.parts.push((what.into(), bytes));
    }

    /// The sum of the parts.
    pub fn total(&self) -> u128 {
        self.parts.iter().map(|(_, b)| *b).sum()
    }

    fn describe(&self) -> String {
        self.parts
            .iter()
            .map(|(what, bytes)| format!("{what} {}", human(*bytes)))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// `human_bytes` for numbers past `u64` (a config of absurd sizes).
fn human(bytes: u128) -> String {
    match u64::try_from(bytes) {
        Ok(b) => electra_fs::human_bytes(b),
        Err(_) => format!("{:.1e} bytes (more than 16 EiB)", bytes as f64),
    }
}

/// What [`ModelError::OutOfMemory`] says: what was to run, its estimate and what the machine
/// has.
#[derive(Debug, thiserror::Error)]
#[error(
    "{what} needs about {needed} of memory ({parts}), but {available} is available ({origin}); \
     make the model or the batch smaller, or free memory"
)]
pub struct MemoryShortage {
    /// What was to run.
    pub what: String,
    /// The estimate, for people.
    pub needed: String,
    /// What the estimate is made of.
    pub parts: String,
    /// The memory available, for people.
    pub available: String,
    /// Where that number comes from.
    pub origin: String,
}

/// Compares `estimate` (for `what`, e.g. "pre-training this config") with `memory`:
/// [`ModelError::OutOfMemory`] if it needs more than is available, `Ok(Some(warning))` if it
/// needs more than [`NEAR_LIMIT`] of it, `Ok(None)` otherwise (and when `memory` is unknown).
pub fn check(
    what: &str,
    estimate: &MemoryEstimate,
    memory: Option<&HostMemory>,
) -> Result<Option<String>, ModelError> {
    let Some(memory) = memory else {
        return Ok(None);
    };
    let needed = estimate.total();
    let available = u128::from(memory.available);
    if needed > available {
        return Err(ModelError::OutOfMemory(Box::new(MemoryShortage {
            what: what.to_string(),
            needed: human(needed),
            parts: estimate.describe(),
            available: human(available),
            origin: memory.source.clone(),
        })));
    }
    if needed as f64 > NEAR_LIMIT * available as f64 {
        return Ok(Some(format!(
            "{what} needs about {} of memory ({}), {:.0} % of the {} available ({}): near the \
             limit; other processes or a larger batch may push it out of memory",
            human(needed),
            estimate.describe(),
            100.0 * needed as f64 / available.max(1) as f64,
            human(available),
            memory.source
        )));
    }
    Ok(None)
}

/// Whether a backend (by its `Backend::name`) keeps its tensors in this machine's memory:
/// the CPU backends flex and ndarray (also under autodiff or fusion).
pub fn backend_uses_host_memory(backend_name: &str) -> bool {
    backend_name.contains("flex") || backend_name.contains("ndarray")
}

impl ElectraConfig {
    /// Parameters of the embedding block: word, position and token-type tables and their
    /// LayerNorm.
    pub fn embedding_parameters(&self) -> u128 {
        let e = self.embedding_size as u128;
        let rows = self.vocab_size as u128
            + self.max_position_embeddings as u128
            + self.type_vocab_size as u128;
        rows * e + 2 * e
    }

    /// Parameters of the encoder above the embeddings: the `E → H` projection (when the
    /// widths differ) and the layers (attention, feed-forward, two LayerNorms each).
    pub fn encoder_layer_parameters(&self) -> u128 {
        let (e, h, i) = (
            self.embedding_size as u128,
            self.hidden_size as u128,
            self.intermediate_size as u128,
        );
        let projection = if e == h { 0 } else { e * h + h };
        let attention = 4 * (h * h + h) + 2 * h;
        let feed_forward = h * i + i + i * h + h + 2 * h;
        projection + self.num_hidden_layers as u128 * (attention + feed_forward)
    }

    /// Parameters of the encoder (embeddings and layers), without a head.
    pub fn num_parameters(&self) -> u128 {
        self.embedding_parameters() + self.encoder_layer_parameters()
    }

    /// Activations one sequence of `seq_len` tokens keeps for the backward pass through the
    /// encoder, in f32 values: per layer the attention's queries, keys, values, context and
    /// outputs, the feed-forward's two activations and the residual LayerNorms (about
    /// `10·H + 2·I` per token), and the attention scores, probabilities and dropout mask
    /// (`3·heads·seq²`).
    pub fn activation_values_per_sequence(&self, seq_len: usize) -> u128 {
        let (s, h, i, a) = (
            seq_len as u128,
            self.hidden_size as u128,
            self.intermediate_size as u128,
            self.num_attention_heads as u128,
        );
        let per_layer = s * (10 * h + 2 * i) + 3 * a * s * s;
        s * self.embedding_size as u128 + self.num_hidden_layers as u128 * per_layer
    }

    /// What holding this model's weights (f32) takes, to load it for inference or export.
    pub fn weights_estimate(&self) -> MemoryEstimate {
        let mut estimate = MemoryEstimate::default();
        estimate.add("weights", self.num_parameters() * F32);
        estimate
    }

    /// Refuses a model whose weights alone do not fit in this machine's memory, before
    /// anything is allocated (on the CPU backends; `backend_name` is `Backend::name`).
    pub fn check_weights_fit(&self, backend_name: &str) -> Result<(), ModelError> {
        if !backend_uses_host_memory(backend_name) {
            return Ok(());
        }
        let memory = HostMemory::read()?;
        check(
            "a model of this config",
            &self.weights_estimate(),
            memory.as_ref(),
        )
        .map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_base_encoder_has_bert_base_s_parameter_count() {
        // BERT-Base / ELECTRA-Base discriminator encoder: 108,891,648 parameters in HF
        // (without the pooler, which ELECTRA has not).
        assert_eq!(ElectraConfig::base().num_parameters(), 108_891_648);
    }

    #[test]
    fn a_huge_config_is_refused_naming_need_and_availability() {
        let config = ElectraConfig {
            hidden_size: 1_000_000_000,
            ..ElectraConfig::small()
        };
        let memory = HostMemory {
            available: 16 << 30,
            source: "test".into(),
        };
        let err =
            check("pre-training", &config.weights_estimate(), Some(&memory)).expect_err("refused");
        let text = err.to_string();
        assert!(text.contains("needs about"), "{text}");
        assert!(text.contains("16.0 GiB"), "{text}");
        assert!(text.contains("weights"), "{text}");
    }

    #[test]
    fn near_the_limit_warns_and_below_it_is_silent() {
        let mut estimate = MemoryEstimate::default();
        estimate.add("weights", 900);
        let memory = |available| HostMemory {
            available,
            source: "test".into(),
        };
        let warning = check("x", &estimate, Some(&memory(1000))).expect("fits");
        assert!(warning.is_some_and(|w| w.contains("near the limit")));
        assert_eq!(
            check("x", &estimate, Some(&memory(2000))).expect("fits"),
            None
        );
        assert_eq!(check("x", &estimate, None).expect("unknown"), None);
        assert!(check("x", &estimate, Some(&memory(899))).is_err());
    }

    #[test]
    fn meminfo_cgroup_and_sizes_parse() {
        let text = "MemTotal:       24000000 kB\nMemAvailable:   20000000 kB\n";
        assert_eq!(meminfo_available(text), Some(20_000_000 * 1024));
        assert_eq!(parse_size("12G"), Some(12 << 30));
        assert_eq!(parse_size("1.5k"), Some(1536));
        assert_eq!(parse_size("100"), Some(100));
        assert_eq!(parse_size("lots"), None);
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("memory.max"), "max\n").expect("write");
        std::fs::write(dir.path().join("memory.current"), "100\n").expect("write");
        assert_eq!(cgroup_left(dir.path()), None);
        std::fs::write(dir.path().join("memory.max"), "1000\n").expect("write");
        assert_eq!(cgroup_left(dir.path()), Some(900));
    }

    #[test]
    fn only_the_cpu_backends_are_checked() {
        assert!(backend_uses_host_memory("autodiff<flex>"));
        assert!(backend_uses_host_memory("ndarray"));
        assert!(!backend_uses_host_memory("fusion<cubecl<cuda>>"));
    }
}
