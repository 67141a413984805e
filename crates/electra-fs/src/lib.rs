//! Writing output so that a crash, a full disk or `kill -9` never leaves a half-written file
//! or directory where a complete one is expected.
//!
//! Every crate of electra-rs that writes something a user or a later run reads (shards,
//! manifests, tokenizers, run configs, metrics, checkpoints, exported models, GLUE reports)
//! writes it through this crate, so there is one rule and one set of tests:
//!
//! - **a file** ([`write_atomic`], [`AtomicFile`], [`write_atomic_with`]) is written to a
//!   hidden temporary sibling `.NAME.XXXXXX.tmp` in the same directory, flushed to disk
//!   (`fsync`), renamed over `NAME` and the directory entry is flushed too. A reader sees the
//!   old file or the new one, never a mixture; on an error the temporary file is removed, and
//!   after a crash the only trace is a hidden `.tmp` file that no reader of ours lists.
//! - **a directory** ([`StagingDir`]) is built under a hidden name, every file in it flushed,
//!   then renamed into place (or its entries moved into a directory that already holds other
//!   things). Dropped without being committed (an error), it removes itself.
//! - **an output directory** ([`Outputs`]) that already holds what a command writes is refused
//!   ([`OutputExists`]) unless the user asked to overwrite it; the new set is written into a
//!   [`staging_in`] directory and the old set removed whole before it moves into place.
//!
//! It also holds what keeps a run safe on a shared machine:
//!
//! - **one writer per directory** ([`DirLock`]): an operating-system lock on a hidden file in
//!   a run or shard directory, which a second process is refused with an error naming the
//!   holder, and which the kernel releases however the holder ends (`kill -9` included);
//! - **a full disk** ([`explain_out_of_space`]): every [`FsError`] for `ENOSPC` names the path,
//!   the free space of its filesystem and, where the writer knows, the bytes it needed;
//! - **inputs that could block** ([`open_regular`]): a FIFO, socket or device where a regular
//!   file is expected is refused at once instead of hanging the reader.
//!
//! The crate has no dependency on burn or the data libraries, so the lowest crates
//! (`electra-data`, `electra-model`) can use it.

mod error;
mod file;
mod input;
mod kill;
mod lock;
mod output;
mod space;
mod staging;
#[cfg(feature = "testing")]
pub mod testing;

pub use error::FsError;
pub use file::{AtomicFile, write_atomic, write_atomic_with};
pub use input::{open_regular, read_regular_to_string};
pub use kill::{KILL_AT_ENV, kill_point};
pub use lock::{DirLock, LOCK_FILE, LockError};
pub use output::{OutputExists, Outputs, hex, remove_entry, staging_in};
pub use space::{OutOfSpace, explain_out_of_space, free_bytes, human_bytes, is_out_of_space};
pub use staging::{StagingDir, sync_dir, sync_tree};
