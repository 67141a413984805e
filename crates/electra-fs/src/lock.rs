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
//! The holder removes the lock file when it releases the lock (if it holds it alone), so a
//! directory is left as clean as before. A process that opened the file just before the
//! removal may then lock a file that is no longer there: after locking, each process checks
//! that the name still leads to the file it locked, and starts again if not. After `kill -9`
//! the file stays, naming a process that is gone; it does not block anyone.

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
    shared: bool,
}

/// Whether `path` still names the open `file` (not removed, or replaced, by a holder that
/// released it between our open and our lock). Always true where this cannot be asked.
fn still_named(file: &File, path: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        match (file.metadata(), std::fs::metadata(path)) {
            (Ok(open), Ok(named)) => open.dev() == named.dev() && open.ino() == named.ino(),
            _ => false,
        }
    }
    #[cfg(not(unix))]
    {
        let _ = (file, path);
        true
    }
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
        let mut file = loop {
            let mut file = OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .open(&path)
                .map_err(at(&path))?;
            Self::try_lock(&mut file, &path, dir, shared)?;
            // Locked, but the file may have been removed by a holder that just released it.
            if still_named(&file, &path) {
                break file;
            }
        };
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
        Ok(Self { file, path, shared })
    }

    /// Takes the lock on `file` without waiting; [`LockError::Held`] naming the holder when
    /// another process has it.
    fn try_lock(file: &mut File, path: &Path, dir: &Path, shared: bool) -> Result<(), LockError> {
        let locked = if shared {
            file.try_lock_shared()
        } else {
            file.try_lock()
        };
        match locked {
            Ok(()) => Ok(()),
            Err(TryLockError::WouldBlock) => {
                let mut text = String::new();
                // Only information for the message: an unreadable file says "another process".
                let _ = file.read_to_string(&mut text);
                let holder = text.trim();
                Err(LockError::Held {
                    dir: dir.to_path_buf(),
                    lock_file: path.to_path_buf(),
                    holder: if holder.is_empty() {
                        "another process".to_string()
                    } else {
                        holder.to_string()
                    },
                })
            }
            Err(TryLockError::Error(e)) => Err(FsError::new(path, e).into()),
        }
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for DirLock {
    fn drop(&mut self) {
        // The file is removed only by its sole holder: an exclusive one, or a shared one that
        // can turn its lock exclusive (Linux's `flock` converts a lock in place).
        let sole = !self.shared || (cfg!(target_os = "linux") && self.file.try_lock().is_ok());
        if sole && cfg!(unix) {
            let _ = std::fs::remove_file(&self.path);
        }
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
        assert!(
            !run.join(LOCK_FILE).exists(),
            "the released lock file stayed"
        );
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
        drop(a);
        assert!(
            dir.path().join(LOCK_FILE).exists(),
            "removed under a shared holder"
        );
        drop(b);
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
        assert!(
            text.contains("next run") && !text.contains("999999"),
            "{text}"
        );
    }

    #[cfg(unix)]
    #[test]
    fn a_lock_on_a_removed_file_is_not_taken_for_the_directory_s() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join(LOCK_FILE);
        // A file opened before its holder removed it: locking it locks nothing.
        let old = File::create(&path).expect("create");
        std::fs::remove_file(&path).expect("remove");
        assert!(!still_named(&old, &path));
        let lock = DirLock::acquire(dir.path(), "next").expect("lock");
        assert!(still_named(&lock.file, &path));
    }
}
