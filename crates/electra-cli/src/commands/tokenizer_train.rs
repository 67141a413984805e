//! `electra tokenizer train`: a WordPiece vocabulary (BERT uncased rules) from a corpus.

use std::path::PathBuf;
use std::sync::Mutex;

use anyhow::Context;
use electra_data::corpus::{CorpusReader, resolve_inputs};
use electra_data::tokenizer::{TrainOptions, train_wordpiece};

/// Arguments of `electra tokenizer train`.
#[derive(Debug, clap::Args)]
pub struct TrainArgs {
    /// Corpus files, directories or globs (text, WikiExtractor, JSONL, Parquet; .gz too).
    #[arg(long, required = true, num_args = 1..)]
    pub input: Vec<String>,
    /// Vocabulary size, the five special tokens included.
    #[arg(long, default_value_t = 30_522)]
    pub vocab_size: usize,
    /// Minimum pair count for a merge.
    #[arg(long, default_value_t = 2)]
    pub min_frequency: u64,
    /// Output directory: tokenizer.json and vocab.txt. A directory that already holds either
    /// is refused unless --overwrite is given.
    #[arg(long)]
    pub out: PathBuf,
    /// Replace the tokenizer.json and vocab.txt already in --out.
    #[arg(long)]
    pub overwrite: bool,
    /// How the corpus is read.
    #[command(flatten)]
    pub reader: super::progress::ReaderArgs,
}

/// What `--out` receives.
const TOKENIZER_FILES: [&str; 2] = ["tokenizer.json", "vocab.txt"];

/// Trains and saves the tokenizer.
pub fn run(args: &TrainArgs) -> anyhow::Result<()> {
    // Checked before the (long) training; both files are then written atomically, so with
    // --overwrite the pair is replaced and none of the old one remains.
    super::outdir::check(&args.out, &TOKENIZER_FILES, "a tokenizer", args.overwrite)?;
    let files = resolve_inputs(&args.input)?;
    let reader = CorpusReader::new(files.clone(), args.reader.options());
    let bar = super::progress::text_spinner(format!("reading {} file(s)", files.len()))?;
    let first_error = Mutex::new(None);
    let lines = reader
        .lines()
        .map_while(|line| match line {
            Ok(l) => Some(l),
            Err(e) => {
                if let Ok(mut slot) = first_error.lock() {
                    *slot = Some(e);
                }
                None
            }
        })
        .inspect(|l| bar.inc(l.len() as u64 + 1))
        .chain(std::iter::from_fn(|| {
            bar.set_message("computing WordPiece merges");
            None
        }));
    let options = TrainOptions {
        vocab_size: args.vocab_size,
        min_frequency: args.min_frequency,
        show_progress: false,
        ..TrainOptions::default()
    };
    let trained = train_wordpiece(lines, &options);
    bar.finish_and_clear();
    if let Some(e) = first_error.into_inner().ok().flatten() {
        return Err(e).context("cannot read the corpus");
    }
    let tokenizer = trained?;
    tokenizer
        .save(&args.out)
        .with_context(|| format!("cannot write the tokenizer to {}", args.out.display()))?;
    println!(
        "wrote {} and {} ({} tokens, sha256 {})",
        args.out.join("tokenizer.json").display(),
        args.out.join("vocab.txt").display(),
        tokenizer.vocab_size(),
        tokenizer.hash()
    );
    Ok(())
}
