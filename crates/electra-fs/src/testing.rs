//! Helpers shared by the property tests of the crates that read user files (feature
//! `testing`, enabled from their dev-dependencies): the case count, the ways a file is
//! damaged, and wrong values put into valid JSON files.

use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::{Config, RngSeed};

/// The seed of every property test unless `PROPTEST_RNG_SEED` names another.
pub const DEFAULT_SEED: u64 = 0x0045_4c45_4354_5241; // "ELECTRA" in ASCII

/// A property-test config running `cases` cases (or `PROPTEST_CASES` when set, for a longer
/// local search), without writing regression files into the source tree.
///
/// The inputs come from a fixed seed, so a test run (and CI) is reproducible: a red run
/// means a change broke something, not that the search drew a new input. Searching further
/// is deliberate: `PROPTEST_RNG_SEED=<n> PROPTEST_CASES=<many> cargo test fuzzed`. An input
/// such a search finds becomes a named, deterministic test beside the property.
pub fn cases(cases: u32) -> Config {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(cases);
    let defaults = Config::default();
    let rng_seed = match std::env::var_os("PROPTEST_RNG_SEED") {
        Some(_) => defaults.rng_seed,
        None => RngSeed::Fixed(DEFAULT_SEED),
    };
    Config {
        cases,
        failure_persistence: None,
        rng_seed,
        ..defaults
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

/// JSON values that are wrong in type or range for most fields (null, booleans, 0, -1, 2⁶⁴-1,
/// -2⁶³, fractions, 1e300, empty and odd strings, empty arrays and objects), plus `extra`
/// values that matter to one reader (file names, architecture names).
pub fn wrong_json_value(extra: Vec<serde_json::Value>) -> impl Strategy<Value = serde_json::Value> {
    use serde_json::json;
    let base = prop_oneof![
        Just(json!(null)),
        Just(json!(true)),
        Just(json!(0)),
        Just(json!(-1)),
        Just(json!(u64::MAX)),
        Just(json!(i64::MIN)),
        Just(json!(1.5)),
        Just(json!(1e300)),
        Just(json!("")),
        Just(json!("../../etc/passwd")),
        Just(json!([])),
        Just(json!({})),
        any::<u32>().prop_map(|n| json!(n)),
        "\\PC{0,8}".prop_map(|s| json!(s)),
    ];
    let extra = if extra.is_empty() {
        vec![json!(null)]
    } else {
        extra
    };
    prop_oneof![3 => base, 1 => proptest::sample::select(extra)]
}

/// Replaces one value of `json`, chosen by `at` among all of them (leaves, and now and then a
/// whole object or array, or the document itself).
pub fn replace_json_value(json: &mut serde_json::Value, at: Index, value: serde_json::Value) {
    fn pointers(v: &serde_json::Value, here: &str, out: &mut Vec<String>) {
        out.push(here.to_string());
        let escape = |k: &str| k.replace('~', "~0").replace('/', "~1");
        match v {
            serde_json::Value::Object(map) => {
                for (k, child) in map {
                    pointers(child, &format!("{here}/{}", escape(k)), out);
                }
            }
            serde_json::Value::Array(items) => {
                for (i, child) in items.iter().enumerate() {
                    pointers(child, &format!("{here}/{i}"), out);
                }
            }
            _ => {}
        }
    }
    let mut all = Vec::new();
    pointers(json, "", &mut all);
    let pointer = &all[at.index(all.len())];
    if let Some(slot) = json.pointer_mut(pointer) {
        *slot = value;
    }
}

/// A small tmpfs mounted for a test of a full disk, unmounted when dropped.
///
/// Mounting needs root (CI runs as root): [`SmallFs::mount`] returns `None` after printing
/// why when the test does not run as root, so such a test passes elsewhere without claiming
/// to have checked anything. As root a failing `mount` is a test failure, not a skip.
#[derive(Debug)]
pub struct SmallFs {
    dir: tempfile::TempDir,
}

impl SmallFs {
    /// Mounts a tmpfs of `bytes` (rounded up to pages by the kernel) on a new temporary
    /// directory; `None` (with the reason printed) unless running as root.
    #[allow(clippy::expect_used)]
    pub fn mount(bytes: u64) -> Option<Self> {
        if !is_root() {
            println!(
                "skipped: a full-disk test mounts a small tmpfs, which needs root (CI runs as \
                 root); nothing was checked"
            );
            return None;
        }
        let dir = tempfile::tempdir().expect("a mount point");
        let status = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={bytes}"), "tmpfs"])
            .arg(dir.path())
            .status()
            .expect("run mount");
        assert!(
            status.success(),
            "mount -t tmpfs failed as root ({status}); a full-disk test cannot run"
        );
        Some(Self { dir })
    }

    /// The mounted directory.
    pub fn path(&self) -> &std::path::Path {
        self.dir.path()
    }

    /// Fills the filesystem until at most `leave` bytes are free (a file `filler` in it,
    /// written until the disk is full, after a `leave`-byte reserve file was written and then
    /// removed). Returns the filler, whose removal frees the space again.
    #[allow(clippy::expect_used)]
    pub fn fill_leaving(&self, leave: u64) -> std::path::PathBuf {
        use std::io::Write;
        let reserve = self.path().join("reserve");
        std::fs::write(&reserve, vec![0u8; leave as usize]).expect("the reserve fits");
        let filler = self.path().join("filler");
        let mut file = std::fs::File::create(&filler).expect("filler");
        let block = vec![0u8; 64 << 10];
        let mut chunk = block.as_slice();
        loop {
            match file.write(chunk) {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) if crate::is_out_of_space(&e) => {
                    if chunk.len() == 1 {
                        break;
                    }
                    chunk = &chunk[..chunk.len() / 2];
                }
                Err(e) => panic!("filling {}: {e}", filler.display()),
            }
        }
        drop(file);
        std::fs::remove_file(&reserve).expect("remove the reserve");
        filler
    }
}

impl Drop for SmallFs {
    fn drop(&mut self) {
        let unmounted = std::process::Command::new("umount")
            .arg(self.dir.path())
            .status()
            .is_ok_and(|s| s.success());
        if !unmounted {
            // Still in use (a child process that has not exited): detach it lazily.
            let _ = std::process::Command::new("umount")
                .arg("-l")
                .arg(self.dir.path())
                .status();
        }
    }
}

/// Whether this process runs as root (effective user id 0).
pub fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2).map(|uid| uid == "0"))
        })
        .unwrap_or(false)
}
