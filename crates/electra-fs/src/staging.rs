//! Staged directories: built under a hidden name, flushed, then moved into place whole.

use std::fs::File;
use std::path::{Path, PathBuf};

use crate::error::{FsError, at};
use crate::file::parent_of;
use crate::output::remove_entry;

/// Flushes the directory entry list of `dir` to disk (after a rename into it). A no-op where
/// directories cannot be opened (Windows) or the filesystem does not support it.
pub fn sync_dir(dir: &Path) -> Result<(), FsError> {
    if cfg!(unix) {
        match File::open(dir).and_then(|f| f.sync_all()) {
            Ok(()) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::InvalidInput | std::io::ErrorKind::Unsupported
                ) => {}
            Err(e) => return Err(FsError::new(dir, e)),
        }
    }
    Ok(())
}

/// Flushes every file and directory under `root` (and `root` itself) to disk.
pub fn sync_tree(root: &Path) -> Result<(), FsError> {
    for entry in std::fs::read_dir(root).map_err(at(root))? {
        let path = entry.map_err(at(root))?.path();
        let kind = std::fs::symlink_metadata(&path).map_err(at(&path))?;
        if kind.is_dir() {
            sync_tree(&path)?;
        } else if kind.is_file() {
            File::open(&path)
                .and_then(|f| f.sync_all())
                .map_err(at(&path))?;
        }
    }
    sync_dir(root)
}

/// A directory written under a hidden temporary name and moved into place once complete.
///
/// [`create`](Self::create) makes it (removing a leftover of an interrupted earlier write of
/// the same name); the caller fills [`path`](Self::path); [`commit`](Self::commit) or
/// [`commit_entries_into`](Self::commit_entries_into) flush everything to disk and move it.
/// Dropped uncommitted (an error on the way), it removes itself; after `kill -9` it stays
/// under its hidden name, which the next `create` of the same name clears.
#[derive(Debug)]
pub struct StagingDir {
    path: PathBuf,
    done: bool,
}

impl StagingDir {
    /// Creates the staging directory `path` (and its parents). `path` should be hidden (a
    /// name starting with `.`, ending in `.tmp`) and on the filesystem of the destination.
    pub fn create(path: impl Into<PathBuf>) -> Result<Self, FsError> {
        let path = path.into();
        if std::fs::symlink_metadata(&path).is_ok() {
            remove_entry(&path)?;
        }
        std::fs::create_dir_all(&path).map_err(at(&path))?;
        Ok(Self { path, done: false })
    }

    /// The staging directory to write into.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Flushes the contents to disk and renames the staging directory to `dest`. An existing
    /// `dest` is replaced: it is first renamed to a hidden `.NAME.old.tmp` beside it and
    /// removed once the new one is in place.
    pub fn commit(mut self, dest: &Path) -> Result<(), FsError> {
        sync_tree(&self.path)?;
        let parent = parent_of(dest);
        let old = std::fs::symlink_metadata(dest).is_ok().then(|| {
            let name = dest.file_name().unwrap_or_default().to_string_lossy();
            parent.join(format!(".{name}.old.tmp"))
        });
        if let Some(old) = &old {
            if std::fs::symlink_metadata(old).is_ok() {
                remove_entry(old)?;
            }
            std::fs::rename(dest, old).map_err(at(dest))?;
        }
        std::fs::rename(&self.path, dest).map_err(at(dest))?;
        self.done = true;
        sync_dir(parent)?;
        if let Some(old) = &old {
            remove_entry(old)?;
        }
        Ok(())
    }

    /// Flushes the contents to disk and moves each entry of the staging directory into
    /// `dest_dir` (which must exist), replacing an entry of the same name; entries for which
    /// `last` is true (say, a manifest that lists the others) are moved after all others.
    /// Returns the moved paths in `dest_dir`. The empty staging directory is removed.
    pub fn commit_entries_into(
        mut self,
        dest_dir: &Path,
        last: impl Fn(&str) -> bool,
    ) -> Result<Vec<PathBuf>, FsError> {
        sync_tree(&self.path)?;
        let mut staged: Vec<PathBuf> = std::fs::read_dir(&self.path)
            .map_err(at(&self.path))?
            .map(|e| e.map(|e| e.path()).map_err(at(&self.path)))
            .collect::<Result<_, _>>()?;
        staged.sort_by_key(|p| {
            let name = p.file_name().unwrap_or_default().to_string_lossy();
            (last(&name), p.clone())
        });
        let mut moved = Vec::with_capacity(staged.len());
        for from in staged {
            let Some(name) = from.file_name() else {
                continue;
            };
            let to = dest_dir.join(name);
            if std::fs::symlink_metadata(&to).is_ok() {
                remove_entry(&to)?;
            }
            std::fs::rename(&from, &to).map_err(at(&to))?;
            moved.push(to);
        }
        sync_dir(dest_dir)?;
        self.done = true;
        std::fs::remove_dir(&self.path).map_err(at(&self.path))?;
        Ok(moved)
    }
}

impl Drop for StagingDir {
    fn drop(&mut self) {
        if !self.done {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}
