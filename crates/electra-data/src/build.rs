//! `data build`: corpus files (or the demo corpus) to Parquet shards and a manifest.
//!
//! The work is split into units (one per input file; the demo corpus is cut into one range of
//! documents per shard). Unit `u` goes to global shard `u % num_shards`; each shard is built by
//! one task that reads its units in order, tokenizes lines in batches (the `tokenizers` crate,
//! in parallel) and packs them with an [`ExampleBuilder`] seeded from the build seed and the
//! unit index. Shards are built in parallel on all cores. The output is therefore the same
//! whatever the number of threads, and a unit's examples do not depend on the number of
//! shards. An example never spans two files (the reference flushes at the end of each file).
//! Memory: one batch of lines and one row group per running task.

use std::path::{Path, PathBuf};

use rayon::prelude::*;

use crate::corpus::{CorpusEvent, FileReader, ReaderOptions};
use crate::demo::DemoCorpus;
use crate::error::{DataError, Result};
use crate::manifest::{
    BuildSettings, Counts, DemoSettings, MANIFEST_FORMAT, Manifest, Slice, TokenizerInfo,
};
use crate::packing::{ExampleBuilder, PackingConfig};
use crate::shards::{DEFAULT_ROW_GROUP_ROWS, ShardWriter, TokenDtype, shard_file_name};
use crate::tokenizer::Tokenizer;

/// Subdirectory of a shard directory holding the build's tokenizer (`tokenizer.json`,
/// `vocab.txt`).
pub const TOKENIZER_DIR: &str = "tokenizer";

/// What to build from.
#[derive(Debug, Clone)]
pub enum BuildInput {
    /// Corpus files (see [`crate::corpus::resolve_inputs`]).
    Files(Vec<PathBuf>),
    /// The built-in demo corpus.
    Demo(DemoCorpus),
}

/// Build settings.
#[derive(Debug, Clone)]
pub struct BuildConfig {
    /// Packing (max length and the reference probabilities).
    pub packing: PackingConfig,
    /// Seed of the packing randomness.
    pub seed: u64,
    /// Shards of the whole build.
    pub num_shards: usize,
    /// Build only this slice: shards `j` with `j % count == index`.
    pub slice: Option<Slice>,
    /// Rows per Parquet row group.
    pub row_group_rows: usize,
    /// Corpus reader settings.
    pub reader: ReaderOptions,
    /// Lines tokenized per `encode_batch` call.
    pub encode_batch_lines: usize,
    /// Replace a shard set already in the output directory (`--overwrite`). Without it such a
    /// directory is refused; with it the old set is removed whole, so no shard of an earlier,
    /// larger build stays behind.
    pub overwrite: bool,
}

impl BuildConfig {
    /// Reference packing for `max_seq_len`, seed 12345, `num_shards` shards.
    pub fn new(max_seq_len: usize, num_shards: usize) -> Self {
        Self {
            packing: PackingConfig::new(max_seq_len),
            seed: 12345,
            num_shards,
            slice: None,
            row_group_rows: DEFAULT_ROW_GROUP_ROWS,
            reader: ReaderOptions::default(),
            encode_batch_lines: 4096,
            overwrite: false,
        }
    }

    fn validate(&self) -> Result<()> {
        self.packing.validate()?;
        if self.num_shards == 0 {
            return Err(DataError::Config {
                name: "shards",
                message: "must be at least 1".to_string(),
            });
        }
        if let Some(s) = self.slice
            && (s.count == 0 || s.index >= s.count)
        {
            return Err(DataError::Config {
                name: "shard-index",
                message: format!("{} is not below --num-shards {}", s.index, s.count),
            });
        }
        if self.row_group_rows == 0 {
            return Err(DataError::Config {
                name: "row-group-rows",
                message: "must be at least 1".to_string(),
            });
        }
        Ok(())
    }
}

/// SplitMix64: derives independent seeds from (seed, index). The workspace's mixer is
/// `electra_model::seed::mix`; electra-data depends on no other crate of ours, so its one
/// use keeps this copy of the finaliser (bit-identical; the pipeline tests pin the shards).
pub(crate) fn mix_seed(seed: u64, index: u64) -> u64 {
    let mut z = seed ^ index.wrapping_add(1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Builds the shards into `out_dir` (created if needed), saves the tokenizer into
/// `out_dir/tokenizer` and writes the manifest.
/// `progress` is called with the number of text bytes just processed (from several threads).
///
/// Existing work is never replaced silently: if `out_dir` already holds shards, a manifest or
/// a tokenizer that this build would replace or leave stale (see [`conflicting_entries`]),
/// the build is refused with [`DataError::OutputExists`] unless `config.overwrite` is set.
/// The set is first built into a hidden staging directory inside `out_dir` and moved into
/// place only when complete, so a failed or interrupted build leaves the old set as it was,
/// and with `overwrite` the old set is removed whole (no shard of a larger earlier build
/// remains).
pub fn build_shards(
    input: &BuildInput,
    tokenizer: &Tokenizer,
    config: &BuildConfig,
    out_dir: &Path,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<Manifest> {
    config.validate()?;
    std::fs::create_dir_all(out_dir).map_err(|e| DataError::io(out_dir, e))?;
    let _locks = lock_output(out_dir, config.slice)?;
    let conflicts = electra_fs::Outputs::from_paths(out_dir, conflicting_entries(out_dir, config)?)
        .refuse_unless(config.overwrite, "a shard set")
        .map_err(|e| DataError::OutputExists {
            dir: e.dir,
            found: e.found,
        })?;
    // Dropped on an error, the staging directory removes itself; a leftover of a killed build
    // is hidden, so later builds and Parquet readers (they skip names starting with `.`)
    // ignore it.
    let staging = electra_fs::staging_in(out_dir, "build")?;
    let manifest = build_into(input, tokenizer, config, staging.path(), progress)?;
    commit_staged(staging, out_dir, &conflicts)?;
    Ok(manifest)
}

/// One build per output directory at a time ([`electra_fs::DirLock`], released when the build
/// ends however it ends): a whole build holds the directory alone, so a second build into it
/// is refused at once naming the first; the slices of a cluster build share the directory,
/// each holding a lock of its own slice (`.electra-slice-I-of-N.lock`), so that only the same
/// slice built twice at once is refused.
pub fn lock_output(out_dir: &Path, slice: Option<Slice>) -> Result<Vec<electra_fs::DirLock>> {
    let Some(s) = slice else {
        return Ok(vec![electra_fs::DirLock::acquire(
            out_dir,
            "electra data build",
        )?]);
    };
    let purpose = format!("electra data build, slice {} of {}", s.index, s.count);
    Ok(vec![
        electra_fs::DirLock::acquire_shared(out_dir, &purpose)?,
        electra_fs::DirLock::acquire_named(
            out_dir,
            &format!(".electra-slice-{}-of-{}.lock", s.index, s.count),
            &purpose,
            false,
        )?,
    ])
}

/// The entries of `out_dir` a build with `config` would replace or leave stale: for a whole
/// build every shard (`shard-*.parquet`), manifest (`manifest.json`, `manifest.part-*.json`)
/// and the `tokenizer` directory; for a slice build (`--shard-index i --num-shards n`) the
/// same except the files of the *other* slices of the same build and the shared `tokenizer`
/// directory, so the slices of a cluster build can write into one shared directory. Hidden
/// entries (staging directories, temporary files) are not counted. Sorted by name.
pub fn conflicting_entries(out_dir: &Path, config: &BuildConfig) -> Result<Vec<PathBuf>> {
    let mut found = Vec::new();
    let entries = match std::fs::read_dir(out_dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(found),
        Err(e) => return Err(DataError::io(out_dir, e)),
    };
    for entry in entries {
        let entry = entry.map_err(|e| DataError::io(out_dir, e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let is_shard = name.starts_with("shard-") && name.ends_with(".parquet");
        let is_manifest = name == crate::manifest::MANIFEST_FILE
            || (name.starts_with("manifest.part-") && name.ends_with(".json"));
        let is_tokenizer = name == TOKENIZER_DIR;
        if !(is_shard || is_manifest || is_tokenizer) {
            continue;
        }
        if let Some(slice) = config.slice
            && (is_tokenizer || belongs_to_other_slice(&name, slice, config.num_shards))
        {
            continue;
        }
        found.push(entry.path());
    }
    found.sort();
    Ok(found)
}

/// Whether `name` is a shard or part manifest of another slice of the same sliced build.
fn belongs_to_other_slice(name: &str, slice: Slice, num_shards: usize) -> bool {
    (0..num_shards)
        .any(|j| j % slice.count != slice.index && name == shard_file_name(j, num_shards))
        || (0..slice.count).any(|k| {
            k != slice.index && name == format!("manifest.part-{k:05}-of-{:05}.json", slice.count)
        })
}

/// Removes `old` (the set being replaced) from `out_dir` and moves everything in `staging`
/// into `out_dir`. The manifest moves last, so a reader never finds a manifest naming shards
/// that are not there yet.
fn commit_staged(
    staging: electra_fs::StagingDir,
    out_dir: &Path,
    old: &electra_fs::Outputs,
) -> Result<()> {
    old.remove()?;
    // Manifests last: they list the shards. A same-named entry (only the shared `tokenizer`
    // directory of a slice build) is replaced.
    staging.commit_entries_into(out_dir, |name| name.starts_with("manifest"))?;
    Ok(())
}

/// [`build_shards`] without the checks and the staging: writes straight into `out_dir`.
fn build_into(
    input: &BuildInput,
    tokenizer: &Tokenizer,
    config: &BuildConfig,
    out_dir: &Path,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<Manifest> {
    let num_units = match input {
        BuildInput::Files(files) => {
            if files.is_empty() {
                return Err(DataError::EmptyCorpus("no input files".to_string()));
            }
            files.len()
        }
        BuildInput::Demo(demo) => {
            if demo.num_documents == 0 {
                return Err(DataError::EmptyCorpus(
                    "the demo corpus has 0 documents".into(),
                ));
            }
            config.num_shards.min(demo.num_documents)
        }
    };
    let dtype = TokenDtype::for_vocab(tokenizer.vocab_size());
    let jobs: Vec<usize> = (0..config.num_shards)
        .filter(|j| config.slice.is_none_or(|s| j % s.count == s.index))
        .collect();
    let results: Vec<(crate::shards::ShardInfo, Counts)> = jobs
        .par_iter()
        .map(|&j| {
            let path = out_dir.join(shard_file_name(j, config.num_shards));
            let mut writer = ShardWriter::create(
                &path,
                dtype,
                tokenizer.hash(),
                config.packing.max_seq_len,
                config.row_group_rows,
            )?;
            let mut counts = Counts::default();
            for unit in (j..num_units).step_by(config.num_shards) {
                let mut builder = ExampleBuilder::new(
                    config.packing,
                    tokenizer.special_tokens(),
                    mix_seed(config.seed, unit as u64),
                );
                counts.files += 1;
                match input {
                    BuildInput::Files(files) => {
                        let reader = FileReader::open(&files[unit], &config.reader)?;
                        pack_stream(
                            reader,
                            tokenizer,
                            config,
                            &mut builder,
                            &mut writer,
                            &mut counts,
                            progress,
                        )?;
                    }
                    BuildInput::Demo(demo) => {
                        let lo = unit * demo.num_documents / num_units;
                        let hi = (unit + 1) * demo.num_documents / num_units;
                        let events = (lo..hi).flat_map(|d| {
                            demo.document(d)
                                .into_iter()
                                .map(|l| Ok(CorpusEvent::Line(l)))
                                .chain(std::iter::once(Ok(CorpusEvent::EndOfDocument)))
                        });
                        pack_stream(
                            events,
                            tokenizer,
                            config,
                            &mut builder,
                            &mut writer,
                            &mut counts,
                            progress,
                        )?;
                    }
                }
            }
            let info = writer.finish()?;
            counts.examples = info.rows;
            counts.tokens = info.tokens;
            Ok((info, counts))
        })
        .collect::<Result<_>>()?;
    let mut counts = Counts::default();
    let mut shards = Vec::with_capacity(results.len());
    for (info, c) in results {
        counts.add(&c);
        shards.push(info);
    }
    if counts.examples == 0 {
        let what = match input {
            BuildInput::Files(files) => format!(
                "{} input file(s) ({}{}) hold no text",
                files.len(),
                files[0].display(),
                if files.len() > 1 { ", ..." } else { "" }
            ),
            BuildInput::Demo(_) => "the demo corpus produced no examples".to_string(),
        };
        return Err(DataError::EmptyCorpus(what));
    }
    let (inputs, demo) = match input {
        BuildInput::Files(files) => (
            files.iter().map(|p| p.display().to_string()).collect(),
            None,
        ),
        BuildInput::Demo(d) => (
            Vec::new(),
            Some(DemoSettings {
                seed: d.seed,
                num_documents: d.num_documents,
            }),
        ),
    };
    let manifest = Manifest {
        format: MANIFEST_FORMAT.to_string(),
        created_by: format!("{} {}", env!("CARGO_PKG_NAME"), env!("CARGO_PKG_VERSION")),
        tokenizer: TokenizerInfo::of(tokenizer),
        settings: BuildSettings {
            max_seq_len: config.packing.max_seq_len,
            single_segment_prob: config.packing.single_segment_prob,
            short_seq_prob: config.packing.short_seq_prob,
            seed: config.seed,
            num_shards: config.num_shards,
            slice: config.slice,
            row_group_rows: config.row_group_rows,
            inputs,
            demo,
            reader: config.reader.clone(),
        },
        token_dtype: dtype,
        counts,
        shards,
    };
    // The tokenizer travels with its shards: `out_dir/tokenizer` loads with
    // `Tokenizer::from_path` and has the manifest's hash (also for the demo tokenizer).
    tokenizer.save(&out_dir.join(TOKENIZER_DIR))?;
    manifest.save(out_dir)?;
    Ok(manifest)
}

/// Tokenizes a stream of events in batches of lines and packs them into `writer`.
fn pack_stream<I>(
    events: I,
    tokenizer: &Tokenizer,
    config: &BuildConfig,
    builder: &mut ExampleBuilder,
    writer: &mut ShardWriter,
    counts: &mut Counts,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<()>
where
    I: Iterator<Item = Result<CorpusEvent>>,
{
    let mut events = events.peekable();
    let mut lines: Vec<String> = Vec::with_capacity(config.encode_batch_lines);
    // Document ends, as "after this many lines of the batch".
    let mut ends: Vec<usize> = Vec::new();
    let mut doc_has_lines = false;
    while events.peek().is_some() {
        lines.clear();
        ends.clear();
        let mut bytes = 0u64;
        while lines.len() < config.encode_batch_lines {
            match events.next() {
                None => break,
                Some(Err(e)) => return Err(e),
                Some(Ok(CorpusEvent::Line(l))) => {
                    bytes += l.len() as u64 + 1;
                    doc_has_lines = true;
                    lines.push(l);
                }
                Some(Ok(CorpusEvent::EndOfDocument)) => {
                    if doc_has_lines {
                        counts.documents += 1;
                        doc_has_lines = false;
                    }
                    bytes += 1;
                    ends.push(lines.len());
                }
            }
        }
        let ids = tokenizer.encode_batch(&lines)?;
        let mut next_end = 0;
        for (i, sentence) in ids.into_iter().enumerate() {
            while next_end < ends.len() && ends[next_end] == i {
                if let Some(e) = builder.end_document() {
                    writer.write(e)?;
                }
                next_end += 1;
            }
            if let Some(e) = builder.add_sentence(sentence) {
                writer.write(e)?;
            }
        }
        for _ in next_end..ends.len() {
            if let Some(e) = builder.end_document() {
                writer.write(e)?;
            }
        }
        counts.text_bytes += bytes;
        progress(bytes);
    }
    if doc_has_lines {
        counts.documents += 1;
    }
    if let Some(e) = builder.end_document() {
        writer.write(e)?;
    }
    Ok(())
}
