//! The training-time loader: packed examples (shards or memory) to padded CPU batches.
//!
//! Order. Each epoch visits the shards in an order shuffled with `(seed, epoch)`. A shard's
//! rows are read in windows of `shuffle_buffer` rows (whole row groups are read, one at a
//! time, so memory stays at about one window); each window is permuted with
//! `(seed, epoch, shard, window)`. This is a shuffle buffer whose state is a pure function of
//! the position, which makes the order deterministic and resuming exact and cheap.
//!
//! Ranks. With `world_size` R, rank r takes the rows at positions `p % R == r` of every
//! shard's shuffled stream: the ranks' slices are disjoint and together cover every row once
//! per epoch.
//!
//! Cursor. A [`Cursor`] `(epoch, shard, row)` says where the next batch starts: `shard` is the
//! position in the epoch's shard order and `row` the number of positions of that shard's
//! stream already passed. Every [`Batch`] carries the cursor *after* it; a trainer stores it in
//! its checkpoint and passes it back as `start` to continue with exactly the next batch.
//!
//! Changing the number of ranks. A cursor belongs to its rank's slice. To continue with another
//! world size, every new rank starts from the earliest of the old ranks' cursors (the smallest
//! [`Cursor`]) and takes its own positions from there. No row is skipped: before the earliest
//! cursor every old rank had read its whole slice. Rows that faster ranks had already read
//! past that cursor are read again. Ranks in lockstep (the same rows per step) differ by fewer
//! than R positions inside a shard, plus about one row per shard end passed (a shard's rows
//! rarely divide evenly by R), so this is a handful of rows. From one rank to several it is
//! exact: nothing is read twice.
//!
//! Batches are padded to the longest row (or a fixed length) with `[PAD]`; batches run across
//! epoch boundaries (no remainder is dropped), and the iterator is endless unless `epochs` is
//! set. With `prefetch > 0` batches are assembled on a background thread.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::thread::JoinHandle;

use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::build::mix_seed;
use crate::demo::{DemoCorpus, demo_tokenizer};
use crate::error::{DataError, Result};
use crate::manifest::{Expectations, Manifest};
use crate::packing::{Example, PackingConfig};
use crate::shards::ShardReader;

/// Where the loader is: the next batch starts here. Serialisable for checkpoints.
///
/// Cursors are ordered by position in the stream (epoch, then shard position, then row), so
/// the smallest of several ranks' cursors is the earliest: every rank has read everything of
/// its own slice before it. A run that resumes with another number of ranks starts every rank
/// there (see the module doc, "Changing the number of ranks").
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct Cursor {
    /// Epoch (0-based).
    pub epoch: u64,
    /// Position in the epoch's shuffled shard order.
    pub shard: usize,
    /// Positions of that shard's shuffled stream already passed (all ranks).
    pub row: u64,
}

/// How rows are padded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Padding {
    /// To the longest row of the batch.
    Longest,
    /// To this fixed length (a longer row is an error).
    Fixed(usize),
}

/// Loader settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoaderConfig {
    /// Rows per batch.
    pub batch_size: usize,
    /// Seed of the order.
    pub seed: u64,
    /// Shuffle shards and rows (false: shards and rows in stored order).
    pub shuffle: bool,
    /// Rows per shuffle window.
    pub shuffle_buffer: usize,
    /// Padding rule.
    pub padding: Padding,
    /// This rank (0-based).
    pub rank: usize,
    /// Number of data-parallel ranks.
    pub world_size: usize,
    /// Batches prepared ahead on a background thread (0: none, same thread).
    pub prefetch: usize,
    /// Stop after this many epochs (`None`: endless).
    pub epochs: Option<u64>,
    /// Check every shard's SHA-256 against the manifest when opening (reads every byte once;
    /// footers, row counts and tokenizer hashes are always checked).
    pub verify_checksums: bool,
}

impl LoaderConfig {
    /// Shuffled, padded to the longest row, one rank, 4 batches prefetched, endless.
    pub fn new(batch_size: usize, seed: u64) -> Self {
        Self {
            batch_size,
            seed,
            shuffle: true,
            shuffle_buffer: 8192,
            padding: Padding::Longest,
            rank: 0,
            world_size: 1,
            prefetch: 4,
            epochs: None,
            verify_checksums: false,
        }
    }

    fn validate(&self) -> Result<()> {
        let bad = |name, message: String| Err(DataError::Config { name, message });
        if self.batch_size == 0 {
            return bad("batch-size", "must be at least 1".into());
        }
        if self.shuffle_buffer == 0 {
            return bad("shuffle-buffer", "must be at least 1".into());
        }
        if self.world_size == 0 || self.rank >= self.world_size {
            return bad(
                "rank",
                format!(
                    "rank {} is not below world size {}",
                    self.rank, self.world_size
                ),
            );
        }
        Ok(())
    }
}

/// A padded CPU batch, row-major.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Batch {
    /// Rows.
    pub batch_size: usize,
    /// Padded length of every row.
    pub seq_len: usize,
    /// Token ids `[batch_size, seq_len]`, `[PAD]` after each row's length.
    pub input_ids: Vec<u32>,
    /// Token types `[batch_size, seq_len]`: 0 for `[CLS]` A `[SEP]`, 1 for B `[SEP]`, 0 on pads.
    pub token_type_ids: Vec<u8>,
    /// Attention mask `[batch_size, seq_len]`: 1 on real tokens, 0 on pads.
    pub attention_mask: Vec<u8>,
    /// Real length of each row.
    pub lengths: Vec<usize>,
    /// Where the next batch starts (store it to resume).
    pub cursor: Cursor,
}

impl Batch {
    /// Pads `rows` (see [`Padding`]).
    pub fn from_examples(
        rows: &[Example],
        padding: Padding,
        pad_id: u32,
        cursor: Cursor,
    ) -> Result<Self> {
        let longest = rows.iter().map(Example::len).max().unwrap_or(0);
        let seq_len = match padding {
            Padding::Longest => longest,
            Padding::Fixed(n) => {
                if longest > n {
                    return Err(DataError::Config {
                        name: "pad-to",
                        message: format!(
                            "fixed length {n} is shorter than a row of {longest} tokens"
                        ),
                    });
                }
                n
            }
        };
        let n = rows.len() * seq_len;
        let mut input_ids = vec![pad_id; n];
        let mut token_type_ids = vec![0u8; n];
        let mut attention_mask = vec![0u8; n];
        for (r, e) in rows.iter().enumerate() {
            let base = r * seq_len;
            input_ids[base..base + e.len()].copy_from_slice(&e.input_ids);
            for t in e.segment_b_start..e.len() {
                token_type_ids[base + t] = 1;
            }
            attention_mask[base..base + e.len()].fill(1);
        }
        Ok(Self {
            batch_size: rows.len(),
            seq_len,
            input_ids,
            token_type_ids,
            attention_mask,
            lengths: rows.iter().map(Example::len).collect(),
            cursor,
        })
    }

    /// Row `r`'s real token ids.
    pub fn row_ids(&self, r: usize) -> &[u32] {
        let base = r * self.seq_len;
        &self.input_ids[base..base + self.lengths[r]]
    }
}

/// Where rows come from: shards on disk or examples in memory.
enum Source {
    Memory(Arc<Vec<Example>>),
    Shards {
        paths: Vec<PathBuf>,
        rows: Vec<u64>,
        open: Option<(usize, ShardReader)>,
        cached_group: Option<(usize, usize, Vec<Example>)>,
    },
}

impl Source {
    fn num_shards(&self) -> usize {
        match self {
            Source::Memory(_) => 1,
            Source::Shards { paths, .. } => paths.len(),
        }
    }

    fn shard_rows(&self, s: usize) -> u64 {
        match self {
            Source::Memory(v) => v.len() as u64,
            Source::Shards { rows, .. } => rows[s],
        }
    }

    /// Rows `[start, end)` of shard `s` in stored order.
    fn read(&mut self, s: usize, start: u64, end: u64) -> Result<Vec<Example>> {
        match self {
            Source::Memory(v) => Ok(v[start as usize..end as usize].to_vec()),
            Source::Shards {
                paths,
                rows,
                open,
                cached_group,
            } => {
                if open.as_ref().is_none_or(|(i, _)| *i != s) {
                    let reader = ShardReader::open(&paths[s])?;
                    if reader.num_rows() != rows[s] {
                        return Err(DataError::shard(
                            &paths[s],
                            format!("{} rows, the manifest says {}", reader.num_rows(), rows[s]),
                        ));
                    }
                    *open = Some((s, reader));
                }
                let Some((_, reader)) = open.as_ref() else {
                    return Err(DataError::Loader("no open shard".into()));
                };
                let mut out = Vec::with_capacity((end - start) as usize);
                let mut row = start;
                while row < end {
                    let g = reader.row_group_of(row);
                    let g_start = reader.row_group_start(g);
                    if cached_group
                        .as_ref()
                        .is_none_or(|(cs, cg, _)| (*cs, *cg) != (s, g))
                    {
                        *cached_group = Some((s, g, reader.read_row_group(g)?));
                    }
                    let Some((_, _, group)) = cached_group.as_ref() else {
                        return Err(DataError::Loader("no cached row group".into()));
                    };
                    let from = (row - g_start) as usize;
                    let to = ((end - g_start) as usize).min(group.len());
                    if from >= to {
                        return Err(DataError::shard(&paths[s], format!("row {row} missing")));
                    }
                    out.extend_from_slice(&group[from..to]);
                    row = g_start + to as u64;
                }
                Ok(out)
            }
        }
    }
}

/// The synchronous core: rows in order for one rank, then batches.
struct Stream {
    source: Source,
    config: LoaderConfig,
    pad_id: u32,
    cursor: Cursor,
    order: Vec<usize>,
    order_epoch: Option<u64>,
    window: Option<(u64, usize, u64, Vec<Example>)>,
    finished: bool,
}

impl Stream {
    fn shard_order(&mut self) -> &[usize] {
        if self.order_epoch != Some(self.cursor.epoch) {
            let mut order: Vec<usize> = (0..self.source.num_shards()).collect();
            if self.config.shuffle {
                let mut rng =
                    ChaCha8Rng::seed_from_u64(mix_seed(self.config.seed, self.cursor.epoch));
                order.shuffle(&mut rng);
            }
            self.order = order;
            self.order_epoch = Some(self.cursor.epoch);
        }
        &self.order
    }

    fn next_row(&mut self) -> Result<Option<Example>> {
        let (rank, world) = (self.config.rank as u64, self.config.world_size as u64);
        let window_rows = self.config.shuffle_buffer as u64;
        loop {
            if self.config.epochs.is_some_and(|e| self.cursor.epoch >= e) {
                return Ok(None);
            }
            let num_shards = self.source.num_shards();
            if self.cursor.shard >= num_shards {
                self.cursor = Cursor {
                    epoch: self.cursor.epoch + 1,
                    shard: 0,
                    row: 0,
                };
                continue;
            }
            let pos = self.cursor.shard;
            let s = self.shard_order()[pos];
            let n = self.source.shard_rows(s);
            let row = self.cursor.row;
            let p = row + (rank + world - row % world) % world;
            if p >= n {
                self.cursor.shard += 1;
                self.cursor.row = 0;
                continue;
            }
            let w = p / window_rows;
            let key = (self.cursor.epoch, s, w);
            if self
                .window
                .as_ref()
                .is_none_or(|(e, ws, ww, _)| (*e, *ws, *ww) != key)
            {
                let start = w * window_rows;
                let end = (start + window_rows).min(n);
                let mut rows = self.source.read(s, start, end)?;
                if self.config.shuffle {
                    let seed = mix_seed(
                        mix_seed(self.config.seed, self.cursor.epoch),
                        ((s as u64) << 32) ^ w,
                    );
                    rows.shuffle(&mut ChaCha8Rng::seed_from_u64(seed));
                }
                self.window = Some((key.0, key.1, key.2, rows));
            }
            let Some((_, _, _, rows)) = self.window.as_ref() else {
                return Err(DataError::Loader("no window".into()));
            };
            let example = rows[(p - w * window_rows) as usize].clone();
            self.cursor.row = p + 1;
            return Ok(Some(example));
        }
    }

    fn next_batch(&mut self) -> Option<Result<Batch>> {
        if self.finished {
            return None;
        }
        let mut rows = Vec::with_capacity(self.config.batch_size);
        while rows.len() < self.config.batch_size {
            match self.next_row() {
                Ok(Some(e)) => rows.push(e),
                Ok(None) => break,
                Err(e) => {
                    self.finished = true;
                    return Some(Err(e));
                }
            }
        }
        if rows.is_empty() {
            self.finished = true;
            return None;
        }
        let batch = Batch::from_examples(&rows, self.config.padding, self.pad_id, self.cursor);
        if batch.is_err() {
            self.finished = true;
        }
        Some(batch)
    }
}

enum Mode {
    Inline(Box<Stream>),
    Prefetch {
        rx: Option<Receiver<Result<Batch>>>,
        handle: Option<JoinHandle<()>>,
    },
}

/// Streams [`Batch`]es from shards or memory; an `Iterator<Item = Result<Batch>>`.
pub struct DataLoader {
    mode: Mode,
    manifest: Option<Manifest>,
    rows_per_epoch: u64,
}

impl std::fmt::Debug for DataLoader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DataLoader")
            .field("rows_per_epoch", &self.rows_per_epoch)
            .finish()
    }
}

impl DataLoader {
    /// A loader over the shards of `dir`, checked against `expect` (tokenizer hash, model
    /// vocabulary and length), starting at `start` (`Cursor::default()` for the beginning).
    pub fn from_shards(
        dir: &Path,
        config: LoaderConfig,
        expect: &Expectations,
        start: Cursor,
    ) -> Result<Self> {
        let (manifest, manifest_path) = Manifest::load(dir)?;
        manifest.check(&manifest_path, expect)?;
        let mut paths = Vec::new();
        let mut rows = Vec::new();
        for info in &manifest.shards {
            let path = dir.join(&info.file);
            if config.verify_checksums {
                let sha = crate::fsutil::sha256_file(&path)?;
                if sha != info.sha256 {
                    return Err(DataError::shard(
                        &path,
                        format!(
                            "checksum mismatch: sha256 {sha}, the manifest says {} (corrupt or \
                             modified)",
                            info.sha256
                        ),
                    ));
                }
            }
            // Opening reads and checks the footer: truncated or foreign files fail here.
            let reader = ShardReader::open(&path)?;
            if reader.num_rows() != info.rows {
                return Err(DataError::shard(
                    &path,
                    format!(
                        "{} rows, the manifest says {}",
                        reader.num_rows(),
                        info.rows
                    ),
                ));
            }
            if reader.tokenizer_sha256() != Some(manifest.tokenizer.sha256.as_str()) {
                return Err(DataError::shard(
                    &path,
                    "tokenizer hash differs from the manifest's (file from another build?)",
                ));
            }
            paths.push(path);
            rows.push(info.rows);
        }
        let pad_id = manifest.tokenizer.special.pad;
        let source = Source::Shards {
            paths,
            rows,
            open: None,
            cached_group: None,
        };
        Self::start(
            source,
            pad_id,
            config,
            start,
            Some(manifest),
            &manifest_path,
        )
    }

    /// A loader over examples in memory (one "shard"), padding with `pad_id`.
    pub fn from_examples(
        examples: Vec<Example>,
        pad_id: u32,
        config: LoaderConfig,
        start: Cursor,
    ) -> Result<Self> {
        Self::start(
            Source::Memory(Arc::new(examples)),
            pad_id,
            config,
            start,
            None,
            Path::new("<memory>"),
        )
    }

    /// A loader over the demo corpus packed in memory with the demo tokenizer: pre-training
    /// with no files. Returns the tokenizer too (its vocabulary sizes the model).
    pub fn demo(
        corpus: DemoCorpus,
        max_seq_len: usize,
        config: LoaderConfig,
        start: Cursor,
    ) -> Result<(Self, crate::Tokenizer)> {
        let tokenizer = demo_tokenizer()?;
        let examples = corpus.examples(&tokenizer, PackingConfig::new(max_seq_len), corpus.seed)?;
        let pad = tokenizer.special_tokens().pad;
        Ok((
            Self::from_examples(examples, pad, config, start)?,
            tokenizer,
        ))
    }

    fn start(
        source: Source,
        pad_id: u32,
        config: LoaderConfig,
        start: Cursor,
        manifest: Option<Manifest>,
        name: &Path,
    ) -> Result<Self> {
        config.validate()?;
        let (rank, world) = (config.rank as u64, config.world_size as u64);
        let rows_per_epoch: u64 = (0..source.num_shards())
            .map(|s| {
                let n = source.shard_rows(s);
                if n > rank {
                    (n - rank).div_ceil(world)
                } else {
                    0
                }
            })
            .sum();
        if rows_per_epoch == 0 {
            return Err(DataError::EmptyCorpus(format!(
                "{}: no rows for rank {} of {}",
                name.display(),
                config.rank,
                config.world_size
            )));
        }
        if start.shard > source.num_shards() {
            return Err(DataError::Config {
                name: "cursor",
                message: format!(
                    "shard position {} is past the {} shards",
                    start.shard,
                    source.num_shards()
                ),
            });
        }
        let prefetch = config.prefetch;
        let stream = Box::new(Stream {
            source,
            config,
            pad_id,
            cursor: start,
            order: Vec::new(),
            order_epoch: None,
            window: None,
            finished: false,
        });
        let mode = if prefetch == 0 {
            Mode::Inline(stream)
        } else {
            let (tx, rx) = sync_channel(prefetch);
            let handle = std::thread::Builder::new()
                .name("electra-data-prefetch".to_string())
                .spawn(move || prefetch_loop(stream, tx))
                .map_err(|e| DataError::Loader(format!("cannot start prefetch thread: {e}")))?;
            Mode::Prefetch {
                rx: Some(rx),
                handle: Some(handle),
            }
        };
        Ok(Self {
            mode,
            manifest,
            rows_per_epoch,
        })
    }

    /// The shards' manifest (None for in-memory data).
    pub fn manifest(&self) -> Option<&Manifest> {
        self.manifest.as_ref()
    }

    /// Rows this rank sees per epoch.
    pub fn rows_per_epoch(&self) -> u64 {
        self.rows_per_epoch
    }
}

fn prefetch_loop(mut stream: Box<Stream>, tx: SyncSender<Result<Batch>>) {
    while let Some(item) = stream.next_batch() {
        if tx.send(item).is_err() {
            return;
        }
    }
}

impl Iterator for DataLoader {
    type Item = Result<Batch>;

    fn next(&mut self) -> Option<Self::Item> {
        match &mut self.mode {
            Mode::Inline(stream) => stream.next_batch(),
            Mode::Prefetch { rx, handle } => {
                let item = rx.as_ref()?.recv().ok();
                if item.is_none() {
                    // The thread ended: normally (no more batches) or by a panic.
                    if let Some(h) = handle.take()
                        && h.join().is_err()
                    {
                        return Some(Err(DataError::Loader("prefetch thread panicked".into())));
                    }
                }
                item
            }
        }
    }
}

impl Drop for DataLoader {
    fn drop(&mut self) {
        if let Mode::Prefetch { rx, handle } = &mut self.mode {
            drop(rx.take());
            if let Some(h) = handle.take() {
                let _ = h.join();
            }
        }
    }
}
