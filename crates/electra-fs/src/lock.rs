//! One writer per directory: an operating-system lock on a hidden file inside it.
//!
//! Two `electra pretrain` processes on one run directory (or two `data build`s into one
//! output) would interleave checkpoints, metrics and shards. The first process to take a
//! [`DirLock`] holds it until it exits; a second one is refused at once with
//! [`LockError::Held`], which names the holder. The lock is the kernel's (`flock` on Unix,
//! `LockFileEx` on Windows, through [`std::fs::File::try_lock`]): it is released when the
//! holding process ends however it ends, `kill -9` included, so a lock can never go stale the
//! way a PID file does. The holder's process id and purpose are written into the lock file
//! only so that the refusal can name them; nothing reads them as the lock itself.
//!
//! A shared lock ([`DirLock::acquire_shared`]) lets several processes that write disjoint
//! parts of a directory (the slices of a cluster `data build`) run at once while still
//! excluding an exclusive holder (a whole build into the same directory).
//!
//! The lock file stays in the directory after the holder ends (removing it would race with a
//! process that has just opened it); it is hidden, and the readers of run and shard
//! directories skip hidden names.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use crate::error::{FsError, at};

/// The lock file of a directory held with [`DirLock::acquire`].
pub const LOCK_FILE: &str = ".electra.lock";

/// Why a directory could not be locked.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// Another process holds the directory.
    #[error(
        "{} is in use by {holder} (it holds the lock {}); two writers would mix their output. \
         Wait for it to finish or stop it, then run this again",
        dir.display(),
        lock_file.display()
    )]
    Held {
        /// The directory.
        dir: PathBuf,
        /// The lock file.
        lock_file: PathBuf,
        /// Who holds it: `process N (purpose)` from the lock file, or `another process`.
        holder: String,
    },

    /// The directory or its lock file could not be created or locked.
    #[error(transparent)]
    Fs(#[from] FsError),
}

/// An exclusive (or shared) lock on a directory, held until dropped or the process ends.
#[derive(Debug)]
pub struct DirLock {
    file: File,
    path: PathBuf,
}

impl DirLock {
    /// Locks `dir` (created if needed) for this process alone, through [`LOCK_FILE`] inside
    /// it; `purpose` (say `electra pretrain`) is recorded for the error another process gets.
    /// Refused at once with [`LockError::Held`] if another process holds any lock on it.
    pub fn acquire(dir: &Path, purpose: &str) -> Result<Self, LockError> {
        Self::acquire_named(dir, LOCK_FILE, purpose, false)
    }

    /// A shared lock on `dir`: other shared holders are allowed, an exclusive one is not
    /// (and excludes this one).
    pub fn acquire_shared(dir: &Path, purpose: &str) -> Result<Self, LockError> {
        Self::acquire_named(dir, LOCK_FILE, purpose, true)
    }

    /// Locks `dir` through the hidden file `name` (so that independent writers of one
    /// directory, like the slices of a build, can each hold a lock of their own).
    pub fn acquire_named(
        dir: &Path,
        name: &str,
        purpose: &str,
        shared: bool,
    ) -> Result<Self, LockError> {
        std::fs::create_dir_all(dir).map_err(at(dir))?;
        let path = dir.join(name);
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(at(&path))?;
        let locked = if shared {
            file.try_lock_shared()
        } else {
            file.try_lock()
        };
        match locked {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let mut text = String::new();
                // Only information for the message: an unreadable file says "another process".
                let _ = file.read_to_string(&mut text);
                let holder = text.trim();
                return Err(LockError::Held {
                    dir: dir.to_path_buf(),
                    lock_file: path,
                    holder: if holder.is_empty() {
                        "another process".to_string()
                    } else {
                        holder.to_string()
                    },
                });
            }
            Err(TryLockError::Error(e)) => return Err(FsError::new(&path, e).into()),
        }
        let me = format!("process {} ({purpose})", std::process::id());
        // Shared holders append themselves; an exclusive holder replaces what a dead one left.
        if !shared {
            file.set_len(0).map_err(at(&path))?;
        }
        file.seek(SeekFrom::End(0)).map_err(at(&path))?;
        let line = if shared && file.metadata().map_err(at(&path))?.len() > 0 {
            format!(", {me}")
        } else {
            me
        };
        file.write_all(line.as_bytes()).map_err(at(&path))?;
        Ok(Self { file, path })
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for DirLock {
    fn drop(&mut self) {
        // Closing the file releases the lock; unlock first so the release does not wait for
        // other handles of the file this process may have duplicated.
        let _ = self.file.unlock();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_exclusive_lock_is_refused_naming_the_holder_and_freed_on_drop() {
        let dir = tempfile::tempdir().expect("tempdir");
        let run = dir.path().join("run");
        let first = DirLock::acquire(&run, "electra pretrain").expect("first");
        // flock locks belong to open files, so a second open in this process conflicts too.
        let err = DirLock::acquire(&run, "electra pretrain").expect_err("second");
        let text = err.to_string();
        let me = format!("process {} (electra pretrain)", std::process::id());
        assert!(text.contains(&me), "{text}");
        assert!(text.contains(run.to_str().expect("utf8")), "{text}");
        assert!(matches!(err, LockError::Held { .. }));
        drop(first);
        let again = DirLock::acquire(&run, "electra pretrain").expect("free again");
        assert_eq!(again.path(), run.join(LOCK_FILE));
    }

    #[test]
    fn shared_locks_coexist_and_exclude_an_exclusive_one() {
        let dir = tempfile::tempdir().expect("tempdir");
        let a = DirLock::acquire_shared(dir.path(), "slice 0").expect("a");
        let b = DirLock::acquire_shared(dir.path(), "slice 1").expect("b");
        let err = DirLock::acquire(dir.path(), "whole build").expect_err("exclusive");
        assert!(err.to_string().contains("slice 0"), "{err}");
        drop((a, b));
        let whole = DirLock::acquire(dir.path(), "whole build").expect("exclusive");
        assert!(DirLock::acquire_shared(dir.path(), "slice 0").is_err());
        drop(whole);
    }

    #[test]
    fn a_stale_holder_line_does_not_block() {
        let dir = tempfile::tempdir().expect("tempdir");
        // What a process killed with -9 leaves: the file with its line, but no lock.
        std::fs::write(dir.path().join(LOCK_FILE), "process 999999 (killed)").expect("write");
        let lock = DirLock::acquire(dir.path(), "next run").expect("not blocked");
        let text = std::fs::read_to_string(lock.path()).expect("read");
        assert!(text.contains("next run") && !text.contains("999999"), "{text}");
    }
}
