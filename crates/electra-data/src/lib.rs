//! # electra-data: from text files to batches of token ids
//!
//! This crate owns the first stage of the pipeline and knows nothing of tensors. It turns a
//! corpus (plain text with blank lines between documents, WikiExtractor output, JSONL, Parquet;
//! `.gz` transparently) into documents and sentences, tokenizes them with a WordPiece tokenizer
//! (the `tokenizers` crate, BERT uncased by default), packs them into ELECTRA examples
//! `[CLS] A [SEP] B [SEP]` with segment ids (spec section 4), writes them once as Parquet shards
//! with a manifest, and at training time streams the shards back in a seeded, shuffled,
//! resumable order as plain CPU batches (ids, token types, attention mask, lengths and the
//! cursor needed to resume).
//!
//! Status: not built yet. The data issue fills this crate; until then the workspace compiles it
//! as an empty library so that the crate graph is in place.
