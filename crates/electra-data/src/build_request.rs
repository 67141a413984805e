//! What `electra data build` reads, from its flags: corpus files (resolved from files,
//! directories and globs) with the tokenizer they must be given, or, with no input at all, the
//! built-in demo corpus with the demo tokenizer. Notes for the user (a demo is not a
//! benchmark; fewer files than shards leaves shards empty) come back with the input, and
//! [`describe`] says what a finished build wrote.

use std::path::{Path, PathBuf};

use crate::build::{BuildInput, TOKENIZER_DIR};
use crate::corpus::resolve_inputs;
use crate::demo::{DemoCorpus, demo_tokenizer};
use crate::error::{DataError, Result};
use crate::manifest::Manifest;
use crate::tokenizer::Tokenizer;

/// The input flags of a build.
#[derive(Clone, Debug, Default)]
pub struct InputRequest {
    /// Corpus files, directories or globs; empty: the demo corpus.
    pub inputs: Vec<String>,
    /// The tokenizer (required with inputs; refused without).
    pub tokenizer: Option<PathBuf>,
    /// Documents of the demo corpus.
    pub demo_documents: usize,
    /// Seed of the demo corpus text.
    pub demo_seed: u64,
    /// Shards of the build (to warn when files are fewer).
    pub shards: usize,
}

/// The resolved input, its tokenizer, and notes for the user.
pub struct ResolvedInput {
    /// What is read.
    pub input: BuildInput,
    /// The tokenizer the shards are built with.
    pub tokenizer: Tokenizer,
    /// Things the user should know.
    pub notes: Vec<String>,
}

impl InputRequest {
    /// The input and tokenizer this request names.
    pub fn resolve(&self) -> Result<ResolvedInput> {
        if self.inputs.is_empty() {
            if self.tokenizer.is_some() {
                return Err(DataError::Config {
                    name: "--tokenizer",
                    message: "needs --input (the demo corpus uses the demo tokenizer)".into(),
                });
            }
            return Ok(ResolvedInput {
                input: BuildInput::Demo(DemoCorpus::new(self.demo_seed, self.demo_documents)),
                tokenizer: demo_tokenizer()?,
                notes: vec![format!(
                    "no --input: building the built-in demo corpus ({} documents; a demo, not a \
                     benchmark)",
                    self.demo_documents
                )],
            });
        }
        let Some(path) = &self.tokenizer else {
            return Err(DataError::Config {
                name: "--tokenizer",
                message: "is required with --input (a vocab.txt or tokenizer.json)".into(),
            });
        };
        let tokenizer = Tokenizer::from_path(path)?;
        let files = resolve_inputs(&self.inputs)?;
        let mut notes = Vec::new();
        if files.len() < self.shards {
            notes.push(format!(
                "warning: {} input file(s) for {} shards: each file goes whole into one shard, so \
                 {} shard(s) will be empty",
                files.len(),
                self.shards,
                self.shards - files.len()
            ));
        }
        Ok(ResolvedInput {
            input: BuildInput::Files(files),
            tokenizer,
            notes,
        })
    }
}

/// What a build wrote into `out` and how fast it read, as `electra data build` prints it.
pub fn describe(manifest: &Manifest, out: &Path, seconds: f64) -> String {
    let c = manifest.counts;
    let megabytes = c.text_bytes as f64 / 1e6;
    format!(
        "wrote {} shard(s), {} and the tokenizer ({TOKENIZER_DIR}) to {}\n\
         {} files, {} documents, {} examples, {} tokens ({:.1} per example)\n\
         {megabytes:.1} MB of text in {seconds:.1} s: {:.2} MB/s",
        manifest.shards.len(),
        manifest.file_name(),
        out.display(),
        c.files,
        c.documents,
        c.examples,
        c.tokens,
        c.tokens as f64 / c.examples.max(1) as f64,
        megabytes / seconds.max(1e-9)
    )
}
