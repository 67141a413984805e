//! `cargo xtask multinode test [TEST ARGS...]|build [--release]`: multi-node training against burn-collective
//! 0.21.0 with its global barrier fixed.
//!
//! burn-collective 0.21.0 as published never resets the barrier that ends every global
//! all-reduce, so a process's second global all-reduce waits forever (docs/multi-node.md, "The
//! burn 0.21 blocker"). The fix is one hunk, kept in
//! `xtask/patches/burn-collective-0.21.0-barrier.diff`. This task applies it without putting
//! burn's code into the repository and without touching ordinary builds:
//!
//! 1. `cargo metadata` names the registry copy of burn-collective 0.21.0 that cargo already
//!    downloaded;
//! 2. that copy goes to `target/burn-collective-0.21.0-patched/` with the hunk applied (a file
//!    is written only when its bytes change, so cargo rebuilds nothing on a second run; the
//!    hunk must match the published text exactly once, or the task stops naming the file);
//! 3. cargo runs with `--config patch.crates-io.burn-collective.path=...`. Cargo rewrites
//!    `Cargo.lock` for the path dependency, so the lock is saved first and written back
//!    afterwards, also after a failure; a copy in `target/` restores it on the next run if this
//!    one was killed.
//!
//! `test` runs both multi-node test binaries with their ignored tests (CI runs it); `build`
//! builds `electra` and copies it to `target/<profile>/electra-multinode`, the binary to launch
//! nodes with. The patched and stock builds share `target/` (cargo keeps both).

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};
use clap::{Args, Subcommand};

use crate::{cargo, run};

/// The fix, as a unified diff against burn-collective 0.21.0 (paths relative to the crate).
const BARRIER_FIX: &str = include_str!("../patches/burn-collective-0.21.0-barrier.diff");
const CRATE: &str = "burn-collective";
const VERSION: &str = "0.21.0";

#[derive(Debug, Args)]
pub struct MultinodeArgs {
    #[command(subcommand)]
    pub action: Action,
}

#[derive(Debug, Subcommand)]
pub enum Action {
    /// The multi-node tests of electra-train and electra-cli, the ignored ones included.
    Test {
        /// Passed to the test binaries (a test name filter, `--nocapture`).
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Builds `electra` and copies it to target/<profile>/electra-multinode.
    Build {
        /// Optimised build (target/release).
        #[arg(long)]
        release: bool,
    },
}

pub fn run_task(root: &Path, args: &MultinodeArgs) -> anyhow::Result<()> {
    // First, so that a killed run's rewritten lock is restored before cargo metadata reads it.
    let _lock = LockGuard::save(&root.join("Cargo.lock"), &root.join("target"))?;
    let patched = patched_source(root)?;
    let patch = format!(
        "patch.crates-io.{CRATE}.path={}",
        serde_json::to_string(&patched.display().to_string())?
    );
    match &args.action {
        Action::Test { args } => run(Command::new(cargo())
            .current_dir(root)
            .args(["test", "--config", &patch])
            .args([
                "-p",
                "electra-train",
                "-p",
                "electra-cli",
                "--test",
                "multinode",
            ])
            .args(["--", "--include-ignored"])
            .args(args)),
        Action::Build { release } => {
            let mut build = Command::new(cargo());
            build.current_dir(root).args(["build", "--config", &patch]);
            build.args(["-p", "electra-cli"]);
            if *release {
                build.arg("--release");
            }
            run(&mut build)?;
            let dir = root
                .join("target")
                .join(if *release { "release" } else { "debug" });
            let out = dir.join("electra-multinode");
            copy_atomically(&dir.join("electra"), &out)?;
            println!("multi-node binary: {}", out.display());
            Ok(())
        }
    }
}

/// Writes the patched copy of the registry source and returns its directory.
fn patched_source(root: &Path) -> anyhow::Result<PathBuf> {
    let published = registry_source(root)?;
    let hunks = parse_diff(BARRIER_FIX)?;
    let target = root
        .join("target")
        .join(format!("{CRATE}-{VERSION}-patched"));
    mirror(&published, &target, Path::new(""), &hunks)?;
    Ok(target)
}

/// The directory of burn-collective 0.21.0 in cargo's registry, from `cargo metadata`.
fn registry_source(root: &Path) -> anyhow::Result<PathBuf> {
    let output = Command::new(cargo())
        .current_dir(root)
        .args(["metadata", "--format-version", "1"])
        .output()
        .context("cannot run cargo metadata")?;
    if !output.status.success() {
        bail!(
            "cargo metadata failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let metadata: serde_json::Value = serde_json::from_slice(&output.stdout)?;
    let packages = metadata["packages"].as_array().context("no packages")?;
    let found = packages.iter().find(|p| {
        p["name"] == CRATE
            && p["version"] == VERSION
            && p["source"]
                .as_str()
                .is_some_and(|s| s.starts_with("registry+"))
    });
    let manifest = found
        .and_then(|p| p["manifest_path"].as_str())
        .with_context(|| {
            format!("cargo metadata lists no {CRATE} {VERSION} from crates.io (is Cargo.lock patched by hand?)")
        })?;
    Ok(Path::new(manifest)
        .parent()
        .context("manifest path has no parent")?
        .to_path_buf())
}

/// Copies `from` to `to` file by file (writing only changed bytes), applying the hunks whose
/// path matches; every hunk must be used.
fn mirror(from: &Path, to: &Path, rel: &Path, hunks: &[Hunk]) -> anyhow::Result<usize> {
    let mut used = 0;
    std::fs::create_dir_all(to).with_context(|| format!("cannot create {}", to.display()))?;
    let entries =
        std::fs::read_dir(from).with_context(|| format!("cannot read {}", from.display()))?;
    for entry in entries {
        let entry = entry?;
        let (src, dst, rel) = (
            entry.path(),
            to.join(entry.file_name()),
            rel.join(entry.file_name()),
        );
        if entry.file_type()?.is_dir() {
            used += mirror(&src, &dst, &rel, hunks)?;
            continue;
        }
        let mut bytes =
            std::fs::read(&src).with_context(|| format!("cannot read {}", src.display()))?;
        for hunk in hunks.iter().filter(|h| Path::new(&h.path) == rel) {
            let text = String::from_utf8(bytes)
                .with_context(|| format!("{} is not UTF-8", src.display()))?;
            bytes = hunk.apply(&text, &src)?.into_bytes();
            used += 1;
        }
        if std::fs::read(&dst).ok().as_deref() != Some(&bytes[..]) {
            std::fs::write(&dst, &bytes)
                .with_context(|| format!("cannot write {}", dst.display()))?;
        }
    }
    if rel.as_os_str().is_empty() && used != hunks.len() {
        bail!(
            "only {used} of the fix's {} hunks found a file in {}",
            hunks.len(),
            from.display()
        );
    }
    Ok(used)
}

/// One hunk of a unified diff: the text it replaces in `path` and the text it puts there.
#[derive(Debug, PartialEq)]
struct Hunk {
    path: String,
    old: String,
    new: String,
}

impl Hunk {
    /// Replaces the hunk's old text, which must occur exactly once in `text` (read from `file`).
    fn apply(&self, text: &str, file: &Path) -> anyhow::Result<String> {
        match text.matches(&self.old).count() {
            1 => Ok(text.replacen(&self.old, &self.new, 1)),
            n => bail!(
                "{}: the fix's hunk matches {n} times, expected once ({CRATE} {VERSION} as published)",
                file.display()
            ),
        }
    }
}

/// Parses a unified diff: `+++ b/PATH` names the file, `@@` starts a hunk, and ` `, `-` and
/// `+` lines go to the old text, the new text or both.
fn parse_diff(diff: &str) -> anyhow::Result<Vec<Hunk>> {
    let (mut hunks, mut path) = (Vec::<Hunk>::new(), None::<String>);
    for (number, line) in diff.lines().enumerate() {
        if let Some(p) = line.strip_prefix("+++ b/") {
            path = Some(p.to_string());
            continue;
        }
        if line.starts_with("--- ") {
            continue;
        }
        if line.starts_with("@@") {
            let path = path.clone().with_context(|| {
                format!("diff line {}: a hunk before any `+++ b/` line", number + 1)
            })?;
            hunks.push(Hunk {
                path,
                old: String::new(),
                new: String::new(),
            });
            continue;
        }
        let hunk = hunks
            .last_mut()
            .with_context(|| format!("diff line {}: text outside a hunk", number + 1))?;
        let (kind, rest) = line.split_at(line.len().min(1));
        let (in_old, in_new) = match kind {
            " " | "" => (true, true),
            "-" => (true, false),
            "+" => (false, true),
            _ => bail!(
                "diff line {}: expected ' ', '-' or '+', found {line:?}",
                number + 1
            ),
        };
        for (text, wanted) in [(&mut hunk.old, in_old), (&mut hunk.new, in_new)] {
            if wanted {
                text.push_str(rest);
                text.push('\n');
            }
        }
    }
    if hunks.is_empty() {
        bail!("the diff has no hunk");
    }
    Ok(hunks)
}

/// Saves `Cargo.lock` to a copy in `target/` and writes it back from there when dropped; a
/// killed run leaves the copy behind, and the next run restores the lock from it.
struct LockGuard {
    lock: PathBuf,
    copy: PathBuf,
}

impl LockGuard {
    fn save(lock: &Path, target: &Path) -> anyhow::Result<Self> {
        let copy = target.join("multinode-Cargo.lock.saved");
        if copy.exists() {
            copy_atomically(&copy, lock)?;
            println!(
                "restored Cargo.lock from {} (an earlier run was stopped)",
                copy.display()
            );
        }
        std::fs::create_dir_all(target)?;
        copy_atomically(lock, &copy)?;
        Ok(Self {
            lock: lock.to_path_buf(),
            copy,
        })
    }
}

impl Drop for LockGuard {
    fn drop(&mut self) {
        match copy_atomically(&self.copy, &self.lock) {
            Ok(()) => drop(std::fs::remove_file(&self.copy)),
            Err(e) => eprintln!("{e:#}; Cargo.lock's saved copy is {}", self.copy.display()),
        }
    }
}

/// Copies `from` over `to` through a temporary file in `to`'s directory and a rename.
fn copy_atomically(from: &Path, to: &Path) -> anyhow::Result<()> {
    let tmp = to.with_extension("multinode-tmp");
    std::fs::copy(from, &tmp)
        .with_context(|| format!("cannot copy {} to {}", from.display(), tmp.display()))?;
    std::fs::rename(&tmp, to)
        .with_context(|| format!("cannot rename {} to {}", tmp.display(), to.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("xtask-multinode-{name}-{}", std::process::id()));
        drop(std::fs::remove_dir_all(&dir));
        std::fs::create_dir_all(&dir).expect("scratch dir");
        dir
    }

    #[test]
    fn the_barrier_fix_is_one_hunk_of_sync_rs_that_replaces_the_copied_list() {
        let hunks = parse_diff(BARRIER_FIX).expect("parses");
        assert_eq!(hunks.len(), 1);
        let hunk = &hunks[0];
        assert_eq!(hunk.path, "src/global/node/sync.rs");
        assert!(
            hunk.old
                .contains("self.syncing_peers.lock().unwrap().to_vec()")
        );
        assert!(!hunk.new.contains(".to_vec()"));
        assert!(hunk.new.contains("syncing_peers.remove(pos)"));
        assert!(
            hunk.old
                .starts_with("                .expect(\"Peer closed connection unexpectedly\");\n")
        );
    }

    #[test]
    fn a_hunk_applies_once_and_refuses_text_it_does_not_match_exactly_once() {
        let hunk = &parse_diff(BARRIER_FIX).expect("parses")[0];
        let published = format!("head\n{}tail\n", hunk.old);
        let file = Path::new("sync.rs");
        let fixed = hunk.apply(&published, file).expect("applies");
        assert_eq!(fixed, format!("head\n{}tail\n", hunk.new));
        let err = hunk.apply(&fixed, file).unwrap_err().to_string();
        assert!(
            err.contains("sync.rs") && err.contains("matches 0 times"),
            "{err}"
        );
        let twice = format!("{}{}", hunk.old, hunk.old);
        let err = hunk.apply(&twice, file).unwrap_err().to_string();
        assert!(err.contains("matches 2 times"), "{err}");
    }

    #[test]
    fn a_malformed_diff_is_refused_naming_the_line() {
        let err = parse_diff("@@ -1 +1 @@\n x\n").unwrap_err().to_string();
        assert!(
            err.contains("line 1") && err.contains("before any"),
            "{err}"
        );
        let err = parse_diff("+++ b/f\n@@ -1 +1 @@\n*x\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("line 3") && err.contains("'-' or '+'"),
            "{err}"
        );
        assert!(parse_diff("").unwrap_err().to_string().contains("no hunk"));
    }

    #[test]
    fn mirroring_patches_the_named_file_copies_the_rest_and_rewrites_nothing_unchanged() {
        let dir = scratch("mirror");
        let (from, to) = (dir.join("published"), dir.join("patched"));
        std::fs::create_dir_all(from.join("src")).expect("dirs");
        std::fs::write(from.join("src/a.rs"), "one\ntwo\nthree\n").expect("write");
        std::fs::write(from.join("Cargo.toml"), "[package]\n").expect("write");
        let hunks =
            parse_diff("--- a/src/a.rs\n+++ b/src/a.rs\n@@ -1,3 +1,3 @@\n one\n-two\n+2\n three\n")
                .expect("parses");
        assert_eq!(
            mirror(&from, &to, Path::new(""), &hunks).expect("mirrors"),
            1
        );
        assert_eq!(
            std::fs::read_to_string(to.join("src/a.rs")).expect("read"),
            "one\n2\nthree\n"
        );
        assert_eq!(
            std::fs::read_to_string(to.join("Cargo.toml")).expect("read"),
            "[package]\n"
        );
        let before = std::fs::metadata(to.join("src/a.rs"))
            .and_then(|m| m.modified())
            .expect("mtime");
        std::thread::sleep(std::time::Duration::from_millis(20));
        mirror(&from, &to, Path::new(""), &hunks).expect("mirrors again");
        let after = std::fs::metadata(to.join("src/a.rs"))
            .and_then(|m| m.modified())
            .expect("mtime");
        assert_eq!(
            before, after,
            "an unchanged file must not be rewritten (cargo would rebuild)"
        );
        let missing = parse_diff("+++ b/src/b.rs\n@@ -1 +1 @@\n-x\n+y\n").expect("parses");
        let err = mirror(&from, &to, Path::new(""), &missing)
            .unwrap_err()
            .to_string();
        assert!(err.contains("only 0 of the fix's 1 hunks"), "{err}");
        drop(std::fs::remove_dir_all(&dir));
    }

    #[test]
    fn the_lock_is_written_back_on_drop_and_a_stopped_runs_copy_restores_it() {
        let dir = scratch("lock");
        let (lock, target) = (dir.join("Cargo.lock"), dir.join("target"));
        std::fs::write(&lock, "original").expect("write");
        {
            let _guard = LockGuard::save(&lock, &target).expect("saves");
            std::fs::write(&lock, "rewritten by cargo").expect("write");
        }
        assert_eq!(std::fs::read_to_string(&lock).expect("read"), "original");
        assert!(!target.join("multinode-Cargo.lock.saved").exists());
        // A run killed while cargo had rewritten the lock leaves its copy behind.
        let guard = LockGuard::save(&lock, &target).expect("saves");
        std::fs::write(&lock, "rewritten by cargo").expect("write");
        std::mem::forget(guard);
        let _next = LockGuard::save(&lock, &target).expect("restores and saves");
        assert_eq!(std::fs::read_to_string(&lock).expect("read"), "original");
        drop(_next);
        drop(std::fs::remove_dir_all(&dir));
    }
}
