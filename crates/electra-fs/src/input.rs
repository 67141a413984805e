//! Opening an input that must be a regular file without ever blocking on it.
//!
//! `open` on a FIFO (named pipe) for reading waits until some process opens it for writing,
//! which may be never; a shard, a manifest or a checkpoint that has been replaced by a FIFO
//! (or a socket, or a device) would hang a run that reads it. [`open_regular`] opens with
//! `O_NONBLOCK` (which does not wait for a writer and changes nothing for a regular file) and
//! refuses anything that is not a regular file, with an error naming the path and what it is.

use std::fs::File;
use std::io::{Error, ErrorKind, Read};
use std::path::Path;

use crate::error::{FsError, at};

/// Opens `path` for reading; an error naming the path if it is not a regular file (after
/// following symlinks), without blocking on a FIFO.
pub fn open_regular(path: &Path) -> Result<File, FsError> {
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.custom_flags(rustix::fs::OFlags::NONBLOCK.bits() as i32);
    }
    let file = options.open(path).map_err(at(path))?;
    let kind = file.metadata().map_err(at(path))?.file_type();
    if !kind.is_file() {
        return Err(FsError::new(
            path,
            Error::new(
                ErrorKind::InvalidInput,
                format!(
                    "not a regular file but {}; reading it could wait forever, so it is refused",
                    describe(&kind)
                ),
            ),
        ));
    }
    Ok(file)
}

/// The whole of the regular file `path` as UTF-8 text (see [`open_regular`]).
pub fn read_regular_to_string(path: &Path) -> Result<String, FsError> {
    let mut text = String::new();
    open_regular(path)?
        .read_to_string(&mut text)
        .map_err(at(path))?;
    Ok(text)
}

fn describe(kind: &std::fs::FileType) -> &'static str {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if kind.is_fifo() {
            return "a FIFO (named pipe)";
        }
        if kind.is_socket() {
            return "a socket";
        }
        if kind.is_block_device() || kind.is_char_device() {
            return "a device";
        }
    }
    if kind.is_dir() {
        "a directory"
    } else {
        "a special file"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_regular_file_opens_and_a_directory_is_refused_by_name() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("manifest.json");
        std::fs::write(&file, "{}").expect("write");
        assert_eq!(read_regular_to_string(&file).expect("read"), "{}");
        let err = open_regular(dir.path()).expect_err("a directory");
        assert!(err.to_string().contains("a directory"), "{err}");
    }

    #[cfg(unix)]
    #[test]
    fn a_fifo_is_refused_at_once_instead_of_waiting_for_a_writer() {
        let dir = tempfile::tempdir().expect("tempdir");
        let fifo = dir.path().join("shard-00000-of-00001.parquet");
        let made = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .expect("mkfifo");
        assert!(made.success());
        let (tx, rx) = std::sync::mpsc::channel();
        let path = fifo.clone();
        std::thread::spawn(move || {
            let _ = tx.send(open_regular(&path).map(|_| ()));
        });
        let got = rx
            .recv_timeout(std::time::Duration::from_secs(10))
            .expect("open_regular blocked on a FIFO");
        let err = got.expect_err("a FIFO");
        let text = err.to_string();
        assert!(
            text.contains("FIFO") && text.contains("shard-00000"),
            "{text}"
        );
    }
}
