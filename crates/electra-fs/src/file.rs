//! Atomic file writes: a hidden temporary sibling, `fsync`, rename, `fsync` of the directory.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::{FsError, at};
use crate::staging::sync_dir;

/// Distinguishes the temporary files of one process.
static COUNTER: AtomicU64 = AtomicU64::new(0);

/// The directory `path` lives in (`.` for a bare file name).
pub(crate) fn parent_of(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// A file being written atomically to `path`: writes go to a new hidden temporary sibling
/// `.NAME.PID-N.tmp`; [`commit`](Self::commit) flushes it to disk and renames it over `path`.
/// Dropped without a commit (an error on the way), the temporary file is removed and `path`
/// is as it was.
#[derive(Debug)]
pub struct AtomicFile {
    path: PathBuf,
    temp: PathBuf,
    file: Option<File>,
}

impl AtomicFile {
    /// Starts writing `path`; its directory must exist.
    pub fn create(path: &Path) -> Result<Self, FsError> {
        let name = path
            .file_name()
            .ok_or_else(|| {
                FsError::new(
                    path,
                    std::io::Error::new(std::io::ErrorKind::InvalidInput, "not a file name"),
                )
            })?
            .to_string_lossy()
            .into_owned();
        let dir = parent_of(path);
        loop {
            let n = COUNTER.fetch_add(1, Ordering::Relaxed);
            let temp = dir.join(format!(".{name}.{}-{n}.tmp", std::process::id()));
            match OpenOptions::new().write(true).create_new(true).open(&temp) {
                Ok(file) => {
                    return Ok(Self {
                        path: path.to_path_buf(),
                        temp,
                        file: Some(file),
                    });
                }
                // A leftover of an earlier process with the same id: take the next name.
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(FsError::new(path, e)),
            }
        }
    }

    /// The file this will become.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The temporary file written until the commit (for writers that take a path).
    pub fn temp_path(&self) -> &Path {
        &self.temp
    }

    /// Flushes the temporary file to disk, renames it over [`path`](Self::path) and flushes
    /// the directory entry.
    pub fn commit(mut self) -> Result<(), FsError> {
        if let Some(mut file) = self.file.take() {
            file.flush().map_err(at(&self.temp))?;
        }
        // Reopened by name: a writer given `temp_path` may have recreated the file.
        File::open(&self.temp)
            .and_then(|f| f.sync_all())
            .map_err(at(&self.temp))?;
        std::fs::rename(&self.temp, &self.path).map_err(at(&self.path))?;
        // Renamed: nothing left for `drop` to remove.
        self.temp = PathBuf::new();
        sync_dir(parent_of(&self.path))
    }
}

impl Write for AtomicFile {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match &mut self.file {
            Some(file) => file.write(buf),
            None => Err(std::io::Error::other("atomic file already committed")),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match &mut self.file {
            Some(file) => file.flush(),
            None => Ok(()),
        }
    }
}

impl Drop for AtomicFile {
    fn drop(&mut self) {
        self.file = None;
        if !self.temp.as_os_str().is_empty() {
            let _ = std::fs::remove_file(&self.temp);
        }
    }
}

/// Writes `bytes` to `path` atomically (see [`AtomicFile`]); the error names `path`.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), FsError> {
    let needed = bytes.len() as u64;
    let mut file = AtomicFile::create(path).map_err(|e| e.needing(needed))?;
    file.write_all(bytes)
        .map_err(|e| FsError::new(path, e).needing(needed))?;
    file.commit().map_err(|e| e.needing(needed))
}

/// Writes `path` atomically with a writer that takes a path: `write` receives the temporary
/// path to create (unique to this call, and not existing yet, for writers that refuse to
/// overwrite); once it returns `Ok`, the file is flushed and renamed over `path`. On an error
/// the temporary file is removed and `path` is untouched.
pub fn write_atomic_with<T, E: From<FsError>>(
    path: &Path,
    write: impl FnOnce(&Path) -> Result<T, E>,
) -> Result<T, E> {
    let mut file = AtomicFile::create(path)?;
    // The name stays reserved by its pid and counter; the file itself is the writer's to make.
    file.file = None;
    std::fs::remove_file(file.temp_path()).map_err(at(file.temp_path()))?;
    let value = write(file.temp_path())?;
    file.commit()?;
    Ok(value)
}
