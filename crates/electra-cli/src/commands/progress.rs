//! What the commands that read a corpus share: the reader flags (the progress display is
//! `electra_data::progress::text_spinner`).

use electra_data::corpus::{CorpusFormat, ReaderOptions};

/// The corpus reader's flags.
#[derive(Debug, Clone, clap::Args)]
pub struct ReaderArgs {
    /// Corpus format: auto, text, wikiextractor, jsonl, parquet.
    #[arg(long, default_value = "auto")]
    pub format: CorpusFormat,
    /// JSON field / Parquet column holding the text.
    #[arg(long, default_value = "text")]
    pub text_field: String,
    /// Replace invalid UTF-8 with U+FFFD instead of failing.
    #[arg(long)]
    pub lossy: bool,
}

impl ReaderArgs {
    /// The reader options these flags ask for.
    pub fn options(&self) -> ReaderOptions {
        ReaderOptions {
            format: self.format,
            text_field: self.text_field.clone(),
            lossy: self.lossy,
        }
    }
}
