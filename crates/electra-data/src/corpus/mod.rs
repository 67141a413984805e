//! Corpus readers: files, directories and globs of plain text, WikiExtractor output, JSONL or
//! Parquet, `.gz` decompressed transparently, streamed as lines and document boundaries.
//!
//! Every reader streams: it holds one line (one JSON record, one Parquet record batch) at a
//! time, so memory stays bounded whatever the corpus size. Text must be UTF-8; an invalid
//! byte is an error naming the file, line and byte offset (in the decompressed stream for
//! `.gz`), unless `lossy` replaces it with U+FFFD.
//!
//! Formats (`CorpusFormat::Auto` picks by extension, then by content):
//! - **text**: one sentence or paragraph a line, a blank line between documents;
//! - **wikiextractor**: `<doc id=... title=...>` lines open a document, `</doc>` closes it;
//!   the first line inside (the article title) is skipped, blank lines are ignored;
//! - **jsonl** (`.jsonl`, `.json`, `.ndjson`): one JSON object a line, its text field (default
//!   `text`) is one document whose lines are its sentences;
//! - **parquet** (`.parquet`): one row a document, from a string column (default `text`).

mod files;
mod formats;

pub use files::resolve_inputs;
pub use formats::{CorpusReader, FileReader};

use serde::{Deserialize, Serialize};

/// What a corpus reader yields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CorpusEvent {
    /// One non-empty line (a sentence or paragraph), whitespace-trimmed.
    Line(String),
    /// The end of a document (also sent at the end of every file).
    EndOfDocument,
}

/// Input format of a corpus file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CorpusFormat {
    /// By extension (`.jsonl`/`.json`/`.ndjson`, `.parquet`), else WikiExtractor if the first
    /// non-blank line starts with `<doc`, else plain text.
    #[default]
    Auto,
    /// Plain text, blank lines between documents.
    Text,
    /// WikiExtractor output.
    Wikiextractor,
    /// JSON lines with a text field.
    Jsonl,
    /// Parquet with a text column.
    Parquet,
}

impl std::str::FromStr for CorpusFormat {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "auto" => Ok(Self::Auto),
            "text" | "txt" => Ok(Self::Text),
            "wikiextractor" | "wiki" => Ok(Self::Wikiextractor),
            "jsonl" | "json" => Ok(Self::Jsonl),
            "parquet" => Ok(Self::Parquet),
            other => Err(format!(
                "unknown corpus format `{other}` (expected auto, text, wikiextractor, jsonl or \
                 parquet)"
            )),
        }
    }
}

/// How to read corpus files.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReaderOptions {
    /// The format (default: auto).
    pub format: CorpusFormat,
    /// JSON field / Parquet column with the text (default `text`).
    pub text_field: String,
    /// Replace invalid UTF-8 with U+FFFD instead of failing.
    pub lossy: bool,
}

impl Default for ReaderOptions {
    fn default() -> Self {
        Self {
            format: CorpusFormat::Auto,
            text_field: "text".to_string(),
            lossy: false,
        }
    }
}

#[cfg(test)]
mod tests;
