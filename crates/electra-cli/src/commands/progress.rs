//! What the commands that read a corpus share: the reader flags and the progress display.

use std::time::Duration;

use electra_data::corpus::{CorpusFormat, ReaderOptions};
use indicatif::{ProgressBar, ProgressStyle};

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

/// A spinner that shows the bytes of text read and the rate, with `message` after it. Advance
/// it with `set_position(bytes)`.
pub fn text_spinner(message: String) -> anyhow::Result<ProgressBar> {
    let bar = ProgressBar::new_spinner();
    bar.set_style(ProgressStyle::with_template(
        "{spinner} [{elapsed_precise}] {decimal_bytes} of text ({decimal_bytes_per_sec}) {msg}",
    )?);
    bar.enable_steady_tick(Duration::from_millis(200));
    bar.set_message(message);
    Ok(bar)
}
