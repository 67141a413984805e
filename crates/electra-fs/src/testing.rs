//! Helpers shared by the property tests of the crates that read user files (feature
//! `testing`, enabled from their dev-dependencies): the case count and the ways a file is
//! damaged.

use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::Config;

/// A property-test config running `cases` cases (or `PROPTEST_CASES` when set, for a longer
/// local search), without writing regression files into the source tree.
pub fn cases(cases: u32) -> Config {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(cases);
    Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    }
}

/// How a valid file's bytes are damaged.
#[derive(Debug, Clone)]
pub enum Damage {
    /// Left as it is.
    Keep,
    /// Replaced by these bytes.
    Bytes(Vec<u8>),
    /// Cut at a position (anywhere from empty to whole).
    Truncate(Index),
    /// One byte XOR-ed with a non-zero mask.
    Flip(Index, u8),
    /// The first 8 bytes (a safetensors header length, a Parquet or gzip magic) set to this
    /// little-endian number.
    Prefix(u64),
}

impl Damage {
    /// `bytes` damaged.
    pub fn apply(&self, mut bytes: Vec<u8>) -> Vec<u8> {
        match self {
            Self::Keep => {}
            Self::Bytes(b) => return b.clone(),
            Self::Truncate(i) => bytes.truncate(i.index(bytes.len() + 1)),
            Self::Flip(i, mask) => {
                if !bytes.is_empty() {
                    let i = i.index(bytes.len());
                    bytes[i] ^= mask;
                }
            }
            Self::Prefix(n) => {
                if bytes.len() >= 8 {
                    bytes[..8].copy_from_slice(&n.to_le_bytes());
                }
            }
        }
        bytes
    }
}

/// Any [`Damage`], with replacement bytes of up to `max_bytes` and header lengths around the
/// interesting edges (0, small, 2⁴⁰, `u64::MAX`).
pub fn damage(max_bytes: usize) -> impl Strategy<Value = Damage> {
    prop_oneof![
        Just(Damage::Keep),
        proptest::collection::vec(any::<u8>(), 0..max_bytes).prop_map(Damage::Bytes),
        any::<Index>().prop_map(Damage::Truncate),
        (any::<Index>(), 1u8..).prop_map(|(i, mask)| Damage::Flip(i, mask)),
        prop_oneof![Just(0u64), Just(u64::MAX), Just(1 << 40), 0u64..2048].prop_map(Damage::Prefix),
    ]
}
