//! # electra-data: from text files to batches of token ids
//!
//! This crate is the first stage of the ELECTRA pipeline and knows nothing of tensors (it does
//! not depend on burn). It reads a corpus, tokenizes it, packs the tokens into pre-training
//! examples once, stores them as Parquet shards, and at training time streams them back as
//! plain CPU batches that the training crate turns into tensors.
//!
//! ## The path of the text
//!
//! 1. **Corpus** ([`corpus`]): files, directories or globs of plain text (one sentence or
//!    paragraph a line, a blank line between documents), WikiExtractor output, JSONL or Parquet,
//!    `.gz` read transparently. Readers stream lines and document boundaries with bounded
//!    memory; invalid UTF-8 is an error naming the file and byte offset unless `lossy`.
//! 2. **Tokenizer** ([`tokenizer`]): the `tokenizers` crate set up as BERT uncased WordPiece
//!    (lower-case, strip accents, punctuation split, `##` continuations), loaded from a BERT
//!    `vocab.txt` or a Hugging Face `tokenizer.json`, or trained on a corpus. The five special
//!    tokens are looked up once into [`SpecialTokens`]; a vocabulary without one is refused.
//! 3. **Packing** ([`packing`]): exactly the reference `build_pretraining_dataset.py`
//!    (spec section 4): lines of a document fill a buffer up to a target length, the buffer is
//!    split into `[CLS] A [SEP] B [SEP]` (10 % single-segment), 5 % of targets are drawn
//!    shorter; deterministic for a seed.
//! 4. **Shards** ([`build`], [`shards`], [`manifest`]): examples are written once as Parquet
//!    shards (in parallel on all cores, one slice per machine if wanted) with a manifest that
//!    records counts, settings, the tokenizer hash and every shard's SHA-256;
//!    [`inspect::inspect`] verifies a directory.
//! 5. **Loader** ([`loader`]): streams the shards in a seeded, shuffled order through a
//!    shuffle window, gives each data-parallel rank a disjoint slice, pads rows into a
//!    [`Batch`], prefetches on a background thread, and resumes exactly from the [`Cursor`]
//!    each batch carries.
//!
//! For runs with no input at all, [`demo`] generates a deterministic English-like corpus from a
//! small grammar and a lexicon of a few thousand words, with a matching WordPiece tokenizer
//! built in memory. It is a demo, never a benchmark.
//!
//! ## Parquet shard schema
//!
//! One row per example, unpadded, in files `shard-{i:05}-of-{n:05}.parquet`:
//!
//! | column | Arrow type | meaning |
//! |---|---|---|
//! | `input_ids` | `List<UInt16>` when the vocabulary has at most 65,536 ids, else `List<UInt32>` | `[CLS] A [SEP] (B [SEP])` |
//! | `segment_b_start` | `UInt16` | index of the first token of type 1; equals `length` for a single segment |
//! | `length` | `UInt16` | number of tokens |
//!
//! Token types are 0 before `segment_b_start` and 1 from it. The footer's key-value metadata
//! holds `electra.format = electra-shard-v1`, `electra.tokenizer_sha256` and
//! `electra.max_seq_len`. Row groups of 4,096 rows (configurable), Snappy compression.
//!
//! ## Manifest
//!
//! `manifest.json` (or `manifest.part-{i}-of-{n}.json` per slice of a cluster build, merged on
//! load) records `format` (`electra-shards-v1`), `created_by`, `tokenizer` (`sha256`,
//! `vocab_size`, `special` ids, `source`), `settings` (`max_seq_len`, `single_segment_prob`,
//! `short_seq_prob`, `seed`, `num_shards`, `slice`, `row_group_rows`, `inputs` or `demo`,
//! `reader`), `token_dtype`, `counts` (`files`, `documents`, `examples`, `tokens`,
//! `text_bytes`) and `shards` (per shard `file`, `rows`, `tokens`, `row_groups`, `bytes`,
//! `sha256`). See [`manifest`]. The build also saves its tokenizer (`tokenizer.json`,
//! `vocab.txt`) in the `tokenizer/` subdirectory, so a shard directory is self-contained.
//!
//! ## For the trainer
//!
//! ```no_run
//! use electra_data::{Cursor, DataLoader, DemoCorpus, Expectations, LoaderConfig, Tokenizer};
//! # fn main() -> Result<(), electra_data::DataError> {
//! // Shards built by `electra data build`, checked against the run's tokenizer and model.
//! let tokenizer = Tokenizer::from_path("vocab.txt".as_ref())?;
//! let expect = Expectations {
//!     tokenizer_sha256: Some(tokenizer.hash().to_string()),
//!     max_vocab_size: Some(30522),
//!     max_seq_len: Some(128),
//! };
//! let loader = DataLoader::from_shards("shards".as_ref(), LoaderConfig::new(128, 1), &expect, Cursor::default())?;
//! for batch in loader.take(2) {
//!     let batch = batch?; // input_ids [batch, seq] row-major, token_type_ids, attention_mask
//!     let _resume_here = batch.cursor; // store in the checkpoint
//! }
//! // No files at all: the demo corpus and tokenizer.
//! let (demo, demo_tokenizer) =
//!     DataLoader::demo(DemoCorpus::new(0, 2000), 128, LoaderConfig::new(32, 1), Cursor::default())?;
//! # let _ = (demo, demo_tokenizer);
//! # Ok(())
//! # }
//! ```

pub mod build;
pub mod build_request;
pub mod corpus;
pub mod demo;
pub mod error;
pub mod fsutil;
pub mod inspect;
pub mod loader;
pub mod manifest;
pub mod packing;
mod parquet_guard;
pub mod progress;
pub mod shards;
pub mod tokenizer;
pub mod vocab;

pub use build::{BuildConfig, BuildInput, build_shards};
pub use corpus::{CorpusEvent, CorpusFormat, CorpusReader, ReaderOptions, resolve_inputs};
pub use demo::{DemoCorpus, demo_tokenizer};
pub use error::{DataError, Result};
pub use loader::{Batch, Cursor, DataLoader, LoaderConfig, Padding};
pub use manifest::{Expectations, Manifest};
pub use packing::{Example, ExampleBuilder, PackingConfig};
pub use tokenizer::{SpecialTokens, Tokenizer, TokensWithOffsets};
