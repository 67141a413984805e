//! Training a WordPiece vocabulary on corpus files (`electra tokenizer train`): the files are
//! read as a stream of lines by the corpus readers and fed to [`train_wordpiece`]; the first
//! read error stops the stream and is the result (a corpus is never trained on in part
//! silently). The output directory keeps an earlier tokenizer unless asked to replace it.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::corpus::{CorpusReader, ReaderOptions};
use crate::error::{DataError, Result};
use crate::tokenizer::{Tokenizer, TrainOptions, train_wordpiece};

/// What a trained tokenizer directory holds.
pub const TOKENIZER_FILES: [&str; 2] = ["tokenizer.json", "vocab.txt"];

/// Trains on the lines of `files`; `progress` hears the bytes of every line read (and a final
/// 0 once the merges are being computed).
pub fn train_on_files(
    files: Vec<PathBuf>,
    reader: ReaderOptions,
    options: &TrainOptions,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<Tokenizer> {
    let first_error = Mutex::new(None);
    let lines = CorpusReader::new(files, reader)
        .lines()
        .map_while(|line| match line {
            Ok(l) => Some(l),
            Err(e) => {
                if let Ok(mut slot) = first_error.lock() {
                    *slot = Some(e);
                }
                None
            }
        })
        .inspect(|l| progress(l.len() as u64 + 1))
        .chain(std::iter::from_fn(|| {
            progress(0);
            None
        }));
    let trained = train_wordpiece(lines, options);
    if let Some(e) = first_error.into_inner().ok().flatten() {
        return Err(e);
    }
    trained
}

/// Refuses an `out` that already holds a tokenizer unless `overwrite` (checked before the long
/// training; [`Tokenizer::save`] then writes both files atomically, so the pair is replaced).
pub fn check_output(out: &Path, overwrite: bool) -> Result<()> {
    electra_fs::Outputs::find(out, &TOKENIZER_FILES)
        .refuse_unless(overwrite, "a tokenizer")
        .map(drop)
        .map_err(|e| DataError::Config {
            name: "--out",
            message: e.to_string(),
        })
}
