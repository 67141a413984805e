//! Parquet shards of packed examples: the writer, the reader, and their schema checks.
//!
//! Schema (one row per example, unpadded):
//!
//! | column | Arrow type | meaning |
//! |---|---|---|
//! | `input_ids` | `List<UInt16>` (vocab ≤ 65,536) or `List<UInt32>` | `[CLS] A [SEP] (B [SEP])` token ids |
//! | `segment_b_start` | `UInt16` | index of the first token of type 1 (= `length` when single-segment) |
//! | `length` | `UInt16` | number of tokens (= list length) |
//!
//! The file's key-value metadata holds `electra.format` = `electra-shard-v1`,
//! `electra.tokenizer_sha256` and `electra.max_seq_len`; a Parquet file without them, or with
//! other columns or types, is refused as foreign. Row groups hold `row_group_rows` rows
//! (default 4096, about 1–2 MB at length 128) so the loader can stream a shard one row group
//! at a time. Compression: Snappy.

use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::builder::{ListBuilder, UInt16Builder, UInt32Builder};
use arrow_array::{Array, ArrayRef, ListArray, RecordBatch, UInt16Array, UInt32Array};
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_reader::{
    ArrowReaderMetadata, ArrowReaderOptions, ParquetRecordBatchReaderBuilder,
};
use parquet::basic::Compression;
use parquet::file::metadata::KeyValue;
use parquet::file::properties::WriterProperties;
use serde::{Deserialize, Serialize};

use crate::error::{DataError, Result};
use crate::fsutil::HashingWriter;
use crate::packing::Example;
use electra_fs::AtomicFile;

/// Value of the `electra.format` key of every shard.
pub const SHARD_FORMAT: &str = "electra-shard-v1";
/// Default rows per row group.
pub const DEFAULT_ROW_GROUP_ROWS: usize = 4096;

/// Storage type of token ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TokenDtype {
    /// `UInt16`: vocabularies of at most 65,536 ids.
    Uint16,
    /// `UInt32`: larger vocabularies.
    Uint32,
}

impl TokenDtype {
    /// The smallest type that holds ids `< vocab_size`.
    pub fn for_vocab(vocab_size: usize) -> Self {
        if vocab_size <= 1 << 16 {
            Self::Uint16
        } else {
            Self::Uint32
        }
    }

    fn arrow(self) -> DataType {
        match self {
            Self::Uint16 => DataType::UInt16,
            Self::Uint32 => DataType::UInt32,
        }
    }
}

/// The Arrow schema of a shard.
pub fn shard_schema(dtype: TokenDtype) -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new(
            "input_ids",
            DataType::List(Arc::new(Field::new("item", dtype.arrow(), true))),
            false,
        ),
        Field::new("segment_b_start", DataType::UInt16, false),
        Field::new("length", DataType::UInt16, false),
    ]))
}

/// What the manifest records about one shard.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardInfo {
    /// File name, relative to the shard directory.
    pub file: String,
    /// Number of rows (examples).
    pub rows: u64,
    /// Number of tokens (sum of lengths).
    pub tokens: u64,
    /// Number of row groups.
    pub row_groups: usize,
    /// File size in bytes.
    pub bytes: u64,
    /// SHA-256 (hex) of the file.
    pub sha256: String,
}

/// Writes one shard; the file appears under its final name only when [`Self::finish`] succeeds.
pub struct ShardWriter {
    path: PathBuf,
    writer: ArrowWriter<HashingWriter<BufWriter<AtomicFile>>>,
    schema: SchemaRef,
    dtype: TokenDtype,
    buffer: Vec<Example>,
    row_group_rows: usize,
    rows: u64,
    tokens: u64,
    row_groups: usize,
}

/// A failed Parquet write of `path`: a full disk (found among the error's causes) as an I/O
/// error naming the free space, anything else as a shard error starting with `what`.
fn write_failed(path: &Path, what: &str, e: &parquet::errors::ParquetError) -> DataError {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(c) = cause {
        if let Some(io) = c.downcast_ref::<std::io::Error>()
            && electra_fs::is_out_of_space(io)
        {
            let again = io.raw_os_error().map_or_else(
                || std::io::Error::from(io.kind()),
                std::io::Error::from_raw_os_error,
            );
            return DataError::io(path, again);
        }
        cause = c.source();
    }
    DataError::shard(path, format!("{what}: {e}"))
}

impl ShardWriter {
    /// Creates `path` (written to a hidden temporary sibling until finished).
    pub fn create(
        path: &Path,
        dtype: TokenDtype,
        tokenizer_sha256: &str,
        max_seq_len: usize,
        row_group_rows: usize,
    ) -> Result<Self> {
        let file = AtomicFile::create(path)?;
        let schema = shard_schema(dtype);
        let props = WriterProperties::builder()
            .set_compression(Compression::SNAPPY)
            .set_max_row_group_row_count(Some(row_group_rows.max(1)))
            .set_key_value_metadata(Some(vec![
                KeyValue::new("electra.format".to_string(), SHARD_FORMAT.to_string()),
                KeyValue::new(
                    "electra.tokenizer_sha256".to_string(),
                    tokenizer_sha256.to_string(),
                ),
                KeyValue::new("electra.max_seq_len".to_string(), max_seq_len.to_string()),
            ]))
            .build();
        let writer = ArrowWriter::try_new(
            HashingWriter::new(BufWriter::with_capacity(1 << 20, file)),
            schema.clone(),
            Some(props),
        )
        .map_err(|e| DataError::shard(path, format!("cannot start writing: {e}")))?;
        Ok(Self {
            path: path.to_path_buf(),
            writer,
            schema,
            dtype,
            buffer: Vec::with_capacity(row_group_rows),
            row_group_rows: row_group_rows.max(1),
            rows: 0,
            tokens: 0,
            row_groups: 0,
        })
    }

    /// Appends one example.
    pub fn write(&mut self, example: Example) -> Result<()> {
        self.rows += 1;
        self.tokens += example.len() as u64;
        self.buffer.push(example);
        if self.buffer.len() >= self.row_group_rows {
            self.flush_row_group()?;
        }
        Ok(())
    }

    fn flush_row_group(&mut self) -> Result<()> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        let batch = to_record_batch(&self.buffer, self.dtype, &self.schema)
            .map_err(|e| DataError::shard(&self.path, e))?;
        self.buffer.clear();
        self.writer
            .write(&batch)
            .and_then(|()| self.writer.flush())
            .map_err(|e| write_failed(&self.path, "write failed", &e))?;
        self.row_groups += 1;
        Ok(())
    }

    /// Writes the footer, syncs, renames into place and returns the shard's record.
    pub fn finish(mut self) -> Result<ShardInfo> {
        self.flush_row_group()?;
        // `into_inner` writes the footer and flushes.
        let hashing = self
            .writer
            .into_inner()
            .map_err(|e| write_failed(&self.path, "cannot finish", &e))?;
        let (sha256, bytes, buffered) = hashing.finish();
        let file = buffered
            .into_inner()
            .map_err(|e| DataError::io(&self.path, e.into_error()))?;
        file.commit()?;
        Ok(ShardInfo {
            file: self
                .path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            rows: self.rows,
            tokens: self.tokens,
            row_groups: self.row_groups,
            bytes,
            sha256,
        })
    }
}

fn to_record_batch(
    examples: &[Example],
    dtype: TokenDtype,
    schema: &SchemaRef,
) -> std::result::Result<RecordBatch, String> {
    let ids: ArrayRef = match dtype {
        TokenDtype::Uint16 => {
            let total = examples.iter().map(Example::len).sum();
            let mut b =
                ListBuilder::with_capacity(UInt16Builder::with_capacity(total), examples.len());
            for e in examples {
                for &id in &e.input_ids {
                    let id = u16::try_from(id)
                        .map_err(|_| format!("token id {id} does not fit uint16"))?;
                    b.values().append_value(id);
                }
                b.append(true);
            }
            Arc::new(b.finish())
        }
        TokenDtype::Uint32 => {
            let total = examples.iter().map(Example::len).sum();
            let mut b =
                ListBuilder::with_capacity(UInt32Builder::with_capacity(total), examples.len());
            for e in examples {
                b.values().append_slice(&e.input_ids);
                b.append(true);
            }
            Arc::new(b.finish())
        }
    };
    let to_u16 = |v: usize, what: &str| {
        u16::try_from(v).map_err(|_| format!("{what} {v} does not fit uint16"))
    };
    let starts = examples
        .iter()
        .map(|e| to_u16(e.segment_b_start, "segment_b_start"))
        .collect::<std::result::Result<Vec<u16>, String>>()?;
    let lengths = examples
        .iter()
        .map(|e| to_u16(e.len(), "length"))
        .collect::<std::result::Result<Vec<u16>, String>>()?;
    RecordBatch::try_new(
        schema.clone(),
        vec![
            ids,
            Arc::new(UInt16Array::from(starts)),
            Arc::new(UInt16Array::from(lengths)),
        ],
    )
    .map_err(|e| e.to_string())
}

/// Reads a shard row group by row group, after checking that it is one of ours.
pub struct ShardReader {
    path: PathBuf,
    file: File,
    metadata: ArrowReaderMetadata,
    dtype: TokenDtype,
    row_group_starts: Vec<u64>,
    num_rows: u64,
    tokenizer_sha256: Option<String>,
}

impl std::fmt::Debug for ShardReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShardReader")
            .field("path", &self.path)
            .field("rows", &self.num_rows)
            .finish()
    }
}

impl ShardReader {
    /// Opens `path`, reads its footer and checks the schema and the `electra.format` key.
    pub fn open(path: &Path) -> Result<Self> {
        // Not `File::open`: a FIFO in place of a shard would block forever.
        let file = electra_fs::open_regular(path)?;
        let metadata =
            ArrowReaderMetadata::load(&file, ArrowReaderOptions::new()).map_err(|e| {
                DataError::shard(
                    path,
                    format!("not a readable Parquet file (truncated or corrupt?): {e}"),
                )
            })?;
        let file_len = file.metadata().map_err(|e| DataError::io(path, e))?.len();
        crate::parquet_guard::check_chunk_ranges(metadata.metadata(), file_len)
            .map_err(|m| DataError::shard(path, m))?;
        let kv = metadata.metadata().file_metadata().key_value_metadata();
        let get = |key: &str| {
            kv.and_then(|kv| kv.iter().find(|k| k.key == key))
                .and_then(|k| k.value.clone())
        };
        match get("electra.format") {
            Some(f) if f == SHARD_FORMAT => {}
            Some(f) => {
                return Err(DataError::shard(
                    path,
                    format!("format `{f}`, expected `{SHARD_FORMAT}`"),
                ));
            }
            None => {
                return Err(DataError::shard(
                    path,
                    format!(
                        "foreign Parquet file: no `electra.format` key (expected \
                         `{SHARD_FORMAT}`); build shards with `electra data build`"
                    ),
                ));
            }
        }
        let schema = metadata.schema();
        let dtype = [TokenDtype::Uint16, TokenDtype::Uint32]
            .into_iter()
            .find(|d| shard_schema(*d).fields() == schema.fields())
            .ok_or_else(|| {
                let found: Vec<String> = schema
                    .fields()
                    .iter()
                    .map(|f| format!("{}: {}", f.name(), f.data_type()))
                    .collect();
                DataError::shard(
                    path,
                    format!(
                        "unexpected schema [{}], expected input_ids: List<UInt16|UInt32>, \
                         segment_b_start: UInt16, length: UInt16",
                        found.join(", ")
                    ),
                )
            })?;
        let mut row_group_starts = Vec::new();
        let mut num_rows = 0u64;
        for rg in metadata.metadata().row_groups() {
            row_group_starts.push(num_rows);
            num_rows += rg.num_rows().max(0) as u64;
        }
        let tokenizer_sha256 = get("electra.tokenizer_sha256");
        Ok(Self {
            path: path.to_path_buf(),
            file,
            metadata,
            dtype,
            row_group_starts,
            num_rows,
            tokenizer_sha256,
        })
    }

    /// The shard file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Rows in the shard.
    pub fn num_rows(&self) -> u64 {
        self.num_rows
    }

    /// Number of row groups.
    pub fn num_row_groups(&self) -> usize {
        self.row_group_starts.len()
    }

    /// First row of row group `i`.
    pub fn row_group_start(&self, i: usize) -> u64 {
        self.row_group_starts
            .get(i)
            .copied()
            .unwrap_or(self.num_rows)
    }

    /// The row group holding `row`.
    pub fn row_group_of(&self, row: u64) -> usize {
        self.row_group_starts
            .partition_point(|&s| s <= row)
            .saturating_sub(1)
    }

    /// Token id storage type.
    pub fn dtype(&self) -> TokenDtype {
        self.dtype
    }

    /// The tokenizer hash recorded in the file.
    pub fn tokenizer_sha256(&self) -> Option<&str> {
        self.tokenizer_sha256.as_deref()
    }

    /// Reads and checks row group `i`.
    pub fn read_row_group(&self, i: usize) -> Result<Vec<Example>> {
        let file = self
            .file
            .try_clone()
            .map_err(|e| DataError::io(&self.path, e))?;
        let expected = self.metadata.metadata().row_group(i).num_rows().max(0) as usize;
        let mut reader =
            ParquetRecordBatchReaderBuilder::new_with_metadata(file, self.metadata.clone())
                .with_row_groups(vec![i])
                .with_batch_size(expected.max(1))
                .build()
                .map_err(|e| DataError::shard(&self.path, format!("row group {i}: {e}")))?;
        let mut out = Vec::with_capacity(expected);
        let in_group = |m: String| DataError::shard(&self.path, format!("row group {i}: {m}"));
        while let Some(batch) = crate::parquet_guard::decode(|| reader.next()).map_err(in_group)? {
            let batch = batch.map_err(|e| {
                DataError::shard(&self.path, format!("row group {i}: corrupt data: {e}"))
            })?;
            self.decode(&batch, &mut out)
                .map_err(|m| DataError::shard(&self.path, format!("row group {i}: {m}")))?;
        }
        if out.len() != expected {
            return Err(DataError::shard(
                &self.path,
                format!("row group {i}: {} rows, footer says {expected}", out.len()),
            ));
        }
        Ok(out)
    }

    fn decode(
        &self,
        batch: &RecordBatch,
        out: &mut Vec<Example>,
    ) -> std::result::Result<(), String> {
        let col = |name: &str| {
            batch
                .column_by_name(name)
                .ok_or(format!("no column {name}"))
        };
        let lists = col("input_ids")?
            .as_any()
            .downcast_ref::<ListArray>()
            .ok_or("input_ids is not a list")?;
        let starts = col("segment_b_start")?
            .as_any()
            .downcast_ref::<UInt16Array>()
            .ok_or("segment_b_start is not uint16")?;
        let lengths = col("length")?
            .as_any()
            .downcast_ref::<UInt16Array>()
            .ok_or("length is not uint16")?;
        let offsets = lists.value_offsets();
        let values = lists.values();
        let flat: Vec<u32> = match self.dtype {
            TokenDtype::Uint16 => values
                .as_any()
                .downcast_ref::<UInt16Array>()
                .ok_or("input_ids items are not uint16")?
                .values()
                .iter()
                .map(|&v| u32::from(v))
                .collect(),
            TokenDtype::Uint32 => values
                .as_any()
                .downcast_ref::<UInt32Array>()
                .ok_or("input_ids items are not uint32")?
                .values()
                .to_vec(),
        };
        let base = offsets.first().copied().unwrap_or(0) as usize;
        for row in 0..batch.num_rows() {
            let (a, b) = (
                offsets[row] as usize - base,
                offsets[row + 1] as usize - base,
            );
            let ids = flat.get(a..b).ok_or("list offsets out of range")?;
            let length = lengths.value(row) as usize;
            let start = starts.value(row) as usize;
            // Segment B starts after `[CLS]` at the earliest (`length` when there is none).
            if ids.len() != length
                || start == 0
                || start > length
                || length < 2
                || lists.is_null(row)
            {
                return Err(format!(
                    "row {row}: inconsistent example (length {length}, {} ids, segment_b_start \
                     {start})",
                    ids.len()
                ));
            }
            out.push(Example {
                input_ids: ids.to_vec(),
                segment_b_start: start,
            });
        }
        Ok(())
    }
}

/// The file name of global shard `index` of `count`.
pub fn shard_file_name(index: usize, count: usize) -> String {
    format!("shard-{index:05}-of-{count:05}.parquet")
}
