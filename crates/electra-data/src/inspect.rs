//! `data inspect`: verify a shard directory against its manifest.
//!
//! For every shard listed: the file exists, has the recorded size and SHA-256, is one of our
//! shards (format key, schema), records the manifest's tokenizer, and every row decodes to a
//! well-formed example (`[CLS]` first, a `[SEP]` before segment B and at the end, ids below
//! the vocabulary size, length at most `max_seq_len`) with the recorded row and token counts.
//! The first failure is an error naming the file.

use std::path::{Path, PathBuf};

use crate::error::{DataError, Result};
use crate::fsutil::sha256_file;
use crate::manifest::Manifest;
use crate::shards::{ShardInfo, ShardReader};

/// The result of a successful verification.
#[derive(Debug, Clone)]
pub struct InspectReport {
    /// The manifest (merged over slices if needed).
    pub manifest: Manifest,
    /// The manifest file read.
    pub manifest_path: PathBuf,
    /// Number of examples per length, index = length (up to the longest example).
    pub length_histogram: Vec<u64>,
    /// Examples with a segment B.
    pub two_segment_examples: u64,
    /// Parquet files in the directory that the manifest does not list.
    pub unlisted_files: Vec<String>,
}

/// Verifies the shards of `dir`; `on_shard` is called after each shard passes.
pub fn inspect(dir: &Path, on_shard: &mut dyn FnMut(&ShardInfo)) -> Result<InspectReport> {
    let (manifest, manifest_path) = Manifest::load(dir)?;
    let max_len = manifest.settings.max_seq_len;
    let vocab = manifest.tokenizer.vocab_size;
    let special = manifest.tokenizer.special;
    // Grown to the longest example seen: `max_seq_len` comes from the manifest, which may be
    // damaged (a huge value must not allocate a huge table).
    let mut histogram: Vec<u64> = Vec::new();
    let mut two_segment = 0u64;
    let (mut total_rows, mut total_tokens) = (0u64, 0u64);
    for info in &manifest.shards {
        let path = dir.join(&info.file);
        let meta = std::fs::metadata(&path).map_err(|e| DataError::io(&path, e))?;
        if meta.len() != info.bytes {
            return Err(DataError::shard(
                &path,
                format!(
                    "{} bytes, the manifest says {} (truncated or replaced)",
                    meta.len(),
                    info.bytes
                ),
            ));
        }
        let sha = sha256_file(&path)?;
        if sha != info.sha256 {
            return Err(DataError::shard(
                &path,
                format!(
                    "checksum mismatch: sha256 {sha}, the manifest says {} (corrupt or modified)",
                    info.sha256
                ),
            ));
        }
        let reader = ShardReader::open(&path)?;
        if reader.tokenizer_sha256() != Some(manifest.tokenizer.sha256.as_str()) {
            return Err(DataError::shard(
                &path,
                "built with another tokenizer than the manifest's",
            ));
        }
        if reader.dtype() != manifest.token_dtype {
            return Err(DataError::shard(
                &path,
                "token type differs from the manifest's",
            ));
        }
        let (mut rows, mut tokens) = (0u64, 0u64);
        for g in 0..reader.num_row_groups() {
            for (i, e) in reader.read_row_group(g)?.iter().enumerate() {
                let bad =
                    |what: &str| DataError::shard(&path, format!("row group {g}, row {i}: {what}"));
                if e.len() > max_len {
                    return Err(bad(&format!(
                        "{} tokens, max_seq_len is {max_len}",
                        e.len()
                    )));
                }
                if e.input_ids[0] != special.cls {
                    return Err(bad("does not start with [CLS]"));
                }
                if e.input_ids[e.segment_b_start - 1] != special.sep
                    || e.input_ids[e.len() - 1] != special.sep
                {
                    return Err(bad("[SEP] missing at a segment end"));
                }
                if let Some(id) = e.input_ids.iter().find(|&&id| id as usize >= vocab) {
                    return Err(bad(&format!("token id {id} >= vocabulary size {vocab}")));
                }
                if histogram.len() <= e.len() {
                    histogram.resize(e.len() + 1, 0);
                }
                histogram[e.len()] += 1;
                two_segment += u64::from(e.segment_b_start < e.len());
                rows += 1;
                tokens += e.len() as u64;
            }
        }
        if rows != info.rows || tokens != info.tokens {
            return Err(DataError::shard(
                &path,
                format!(
                    "{rows} rows / {tokens} tokens, the manifest says {} / {}",
                    info.rows, info.tokens
                ),
            ));
        }
        total_rows += rows;
        total_tokens += tokens;
        on_shard(info);
    }
    if total_rows != manifest.counts.examples || total_tokens != manifest.counts.tokens {
        return Err(DataError::manifest(
            &manifest_path,
            format!(
                "counts say {} examples / {} tokens, the shards hold {total_rows} / {total_tokens}",
                manifest.counts.examples, manifest.counts.tokens
            ),
        ));
    }
    let listed: std::collections::HashSet<&str> =
        manifest.shards.iter().map(|s| s.file.as_str()).collect();
    let mut unlisted: Vec<String> = std::fs::read_dir(dir)
        .map_err(|e| DataError::io(dir, e))?
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".parquet") && !listed.contains(n.as_str()))
        .collect();
    unlisted.sort();
    Ok(InspectReport {
        manifest,
        manifest_path,
        length_histogram: histogram,
        two_segment_examples: two_segment,
        unlisted_files: unlisted,
    })
}

impl InspectReport {
    /// The report as `electra data inspect` prints it after the shard lines: the manifest,
    /// the settings, the counts, the example lengths and any unlisted file.
    pub fn render(&self) -> String {
        let m = &self.manifest;
        let c = m.counts;
        let per_example = |n: f64| n / c.examples.max(1) as f64;
        let full = self.length_histogram.get(m.settings.max_seq_len).copied();
        let input = match &m.settings.demo {
            Some(d) => format!(
                "demo corpus (seed {}, {} documents)",
                d.seed, d.num_documents
            ),
            None => format!("{} file(s)", m.settings.inputs.len()),
        };
        let mut lines = vec![
            format!("manifest      {}", self.manifest_path.display()),
            format!("format        {} ({})", m.format, m.created_by),
            format!(
                "tokenizer     {} ids, sha256 {} (from {})",
                m.tokenizer.vocab_size, m.tokenizer.sha256, m.tokenizer.source
            ),
            format!(
                "settings      max_seq_len {}, seed {}, {} shard(s), token ids {:?}",
                m.settings.max_seq_len, m.settings.seed, m.settings.num_shards, m.token_dtype
            ),
            format!("input         {input}"),
            format!(
                "counts        {} documents, {} examples, {} tokens, {:.1} MB of text",
                c.documents,
                c.examples,
                c.tokens,
                c.text_bytes as f64 / 1e6
            ),
            format!(
                "examples      mean length {:.1}, {:.1}% at max length, {:.1}% with two segments",
                per_example(c.tokens as f64),
                100.0 * per_example(full.unwrap_or(0) as f64),
                100.0 * per_example(self.two_segment_examples as f64)
            ),
        ];
        for f in &self.unlisted_files {
            lines.push(format!("warning: {f} is not listed in the manifest"));
        }
        lines.push(format!("all {} shard(s) verified", m.shards.len()));
        lines.join("\n") + "\n"
    }
}
