//! The manifest of a shard directory: what was built, from what, with which tokenizer.
//!
//! `manifest.json` (pretty JSON) holds:
//!
//! - `format`: `electra-shards-v1`; `created_by`: crate name and version;
//! - `tokenizer`: `sha256` (see [`crate::Tokenizer::hash`]), `vocab_size`, `special` ids and
//!   `source` (the path given to the build);
//! - `settings`: `max_seq_len`, `single_segment_prob`, `short_seq_prob`, `seed`,
//!   `num_shards` (of the whole build), `slice` (`{index, count}` when this directory holds
//!   one slice of a cluster build), `row_group_rows`, `inputs` (the resolved files) or `demo`
//!   (`{seed, num_documents}`), `reader` (format, text field, lossy);
//! - `token_dtype`: `uint16` or `uint32`;
//! - `counts`: `files`, `documents`, `examples`, `tokens`, `text_bytes`;
//! - `shards`: per shard `file`, `rows`, `tokens`, `row_groups`, `bytes`, `sha256`.
//!
//! A slice build (`--shard-index i --num-shards n`) writes `manifest.part-{i}-of-{n}.json`
//! instead; [`Manifest::load`] merges all parts of a directory when `manifest.json` is absent
//! (all parts must be present and agree on tokenizer and settings).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::corpus::ReaderOptions;
use crate::error::{DataError, Result};
use crate::shards::{ShardInfo, TokenDtype};
use crate::tokenizer::{SpecialTokens, Tokenizer};

/// Value of the manifest's `format` field.
pub const MANIFEST_FORMAT: &str = "electra-shards-v1";
/// File name of a whole build's manifest.
pub const MANIFEST_FILE: &str = "manifest.json";

/// The tokenizer a build used.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenizerInfo {
    /// [`Tokenizer::hash`].
    pub sha256: String,
    /// Number of ids.
    pub vocab_size: usize,
    /// Special-token ids.
    pub special: SpecialTokens,
    /// Where it was loaded from.
    pub source: String,
}

impl TokenizerInfo {
    /// The record of `tokenizer`.
    pub fn of(tokenizer: &Tokenizer) -> Self {
        Self {
            sha256: tokenizer.hash().to_string(),
            vocab_size: tokenizer.vocab_size(),
            special: tokenizer.special_tokens(),
            source: tokenizer.source().display().to_string(),
        }
    }
}

/// One slice of a build split over machines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Slice {
    /// This slice (0-based).
    pub index: usize,
    /// Number of slices.
    pub count: usize,
}

/// The demo corpus settings of a demo build.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct DemoSettings {
    /// Text seed.
    pub seed: u64,
    /// Number of documents.
    pub num_documents: usize,
}

/// How the shards were built.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BuildSettings {
    /// Maximum example length.
    pub max_seq_len: usize,
    /// Probability of a single-segment example.
    pub single_segment_prob: f64,
    /// Probability of a short target length.
    pub short_seq_prob: f64,
    /// Packing seed.
    pub seed: u64,
    /// Shards of the whole build.
    pub num_shards: usize,
    /// The slice this directory holds, for cluster builds.
    pub slice: Option<Slice>,
    /// Rows per row group.
    pub row_group_rows: usize,
    /// Input files (empty for a demo build).
    pub inputs: Vec<String>,
    /// Demo corpus, for a demo build.
    pub demo: Option<DemoSettings>,
    /// Corpus reader settings.
    pub reader: ReaderOptions,
}

/// Totals of a build.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    /// Input files (or demo chunks).
    pub files: u64,
    /// Documents read.
    pub documents: u64,
    /// Examples written.
    pub examples: u64,
    /// Tokens written (`[CLS]`/`[SEP]` included).
    pub tokens: u64,
    /// Bytes of text read (decompressed).
    pub text_bytes: u64,
}

impl Counts {
    /// Adds `other` into `self`.
    pub fn add(&mut self, other: &Counts) {
        self.files += other.files;
        self.documents += other.documents;
        self.examples += other.examples;
        self.tokens += other.tokens;
        self.text_bytes += other.text_bytes;
    }
}

/// The manifest (see the module docs for the JSON layout).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// `electra-shards-v1`.
    pub format: String,
    /// Producer and version.
    pub created_by: String,
    /// The tokenizer.
    pub tokenizer: TokenizerInfo,
    /// Build settings.
    pub settings: BuildSettings,
    /// Token id storage type.
    pub token_dtype: TokenDtype,
    /// Totals.
    pub counts: Counts,
    /// The shards, in global index order.
    pub shards: Vec<ShardInfo>,
}

/// What a training run expects of the shards it reads.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Expectations {
    /// The run's tokenizer hash: shards built with another tokenizer are refused.
    pub tokenizer_sha256: Option<String>,
    /// The model's vocabulary size: shards with a larger vocabulary are refused.
    pub max_vocab_size: Option<usize>,
    /// The model's maximum length: shards with longer examples are refused.
    pub max_seq_len: Option<usize>,
}

impl Manifest {
    /// The file name of this manifest: `manifest.json`, or the part name for a slice.
    pub fn file_name(&self) -> String {
        match self.settings.slice {
            Some(s) => format!("manifest.part-{:05}-of-{:05}.json", s.index, s.count),
            None => MANIFEST_FILE.to_string(),
        }
    }

    /// Writes the manifest into `dir` atomically; returns its path.
    pub fn save(&self, dir: &Path) -> Result<PathBuf> {
        let path = dir.join(self.file_name());
        let json = serde_json::to_string_pretty(self)
            .map_err(|e| DataError::manifest(&path, e.to_string()))?;
        electra_fs::write_atomic(&path, json.as_bytes())?;
        Ok(path)
    }

    /// Reads one manifest file.
    pub fn read(path: &Path) -> Result<Self> {
        let text = electra_fs::read_regular_to_string(path)?;
        let manifest: Manifest = serde_json::from_str(&text)
            .map_err(|e| DataError::manifest(path, format!("not a valid manifest ({e})")))?;
        if manifest.format != MANIFEST_FORMAT {
            return Err(DataError::manifest(
                path,
                format!("format `{}`, expected `{MANIFEST_FORMAT}`", manifest.format),
            ));
        }
        Ok(manifest)
    }

    /// Loads the manifest of shard directory `dir` (merging slice parts if needed); returns
    /// it with the path to name in errors.
    pub fn load(dir: &Path) -> Result<(Self, PathBuf)> {
        let whole = dir.join(MANIFEST_FILE);
        // Anything under the name (a FIFO too) is read, and refused if not a regular file.
        if std::fs::symlink_metadata(&whole).is_ok() {
            return Ok((Self::read(&whole)?, whole));
        }
        if !dir.is_dir() {
            return Err(DataError::manifest(
                &whole,
                "missing: the shard directory does not exist",
            ));
        }
        let mut parts: Vec<PathBuf> = std::fs::read_dir(dir)
            .map_err(|e| DataError::io(dir, e))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                p.file_name()
                    .map(|n| n.to_string_lossy())
                    .is_some_and(|n| n.starts_with("manifest.part-") && n.ends_with(".json"))
            })
            .collect();
        parts.sort();
        let Some(first_path) = parts.first().cloned() else {
            return Err(DataError::manifest(
                &whole,
                "missing: not a shard directory (build one with `electra data build`)",
            ));
        };
        let mut merged = Self::read(&first_path)?;
        let count = merged.settings.slice.map_or(1, |s| s.count);
        if parts.len() != count {
            return Err(DataError::manifest(
                &first_path,
                format!(
                    "{} of {count} slice manifests present in {}",
                    parts.len(),
                    dir.display()
                ),
            ));
        }
        for part in &parts[1..] {
            let m = Self::read(part)?;
            if m.tokenizer != merged.tokenizer {
                return Err(DataError::manifest(
                    part,
                    format!("built with another tokenizer than {}", first_path.display()),
                ));
            }
            let mut a = m.settings.clone();
            let mut b = merged.settings.clone();
            a.slice = None;
            b.slice = None;
            if a != b || m.token_dtype != merged.token_dtype {
                return Err(DataError::manifest(
                    part,
                    format!("settings differ from {}", first_path.display()),
                ));
            }
            merged.counts.add(&m.counts);
            merged.shards.extend(m.shards);
        }
        merged.shards.sort_by(|a, b| a.file.cmp(&b.file));
        merged.settings.slice = None;
        Ok((merged, first_path))
    }

    /// Checks the manifest against a run's expectations; errors name `path`.
    pub fn check(&self, path: &Path, expect: &Expectations) -> Result<()> {
        if let Some(hash) = &expect.tokenizer_sha256
            && *hash != self.tokenizer.sha256
        {
            return Err(DataError::manifest(
                path,
                format!(
                    "shards were built with tokenizer {} (sha256 {}), this run uses a different \
                     tokenizer (sha256 {hash}); rebuild the shards or use the same tokenizer",
                    self.tokenizer.source, self.tokenizer.sha256
                ),
            ));
        }
        if let Some(max) = expect.max_vocab_size
            && self.tokenizer.vocab_size > max
        {
            return Err(DataError::manifest(
                path,
                format!(
                    "the shards' vocabulary has {} ids but the model's has only {max}",
                    self.tokenizer.vocab_size
                ),
            ));
        }
        if let Some(max) = expect.max_seq_len
            && self.settings.max_seq_len > max
        {
            return Err(DataError::manifest(
                path,
                format!(
                    "the shards hold examples of up to {} tokens but the model takes at most {max}",
                    self.settings.max_seq_len
                ),
            ));
        }
        Ok(())
    }
}
