//! `electra tokenizer train`: a WordPiece vocabulary (BERT uncased rules) from a corpus.

use std::path::PathBuf;

use anyhow::Context;
use electra_data::corpus::resolve_inputs;
use electra_data::tokenizer::TrainOptions;
use electra_data::vocab;

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

/// Trains and saves the tokenizer.
pub fn run(args: &TrainArgs) -> anyhow::Result<()> {
    vocab::check_output(&args.out, args.overwrite)?;
    let files = resolve_inputs(&args.input)?;
    let bar = electra_data::progress::text_spinner(format!("reading {} file(s)", files.len()));
    let options = TrainOptions {
        vocab_size: args.vocab_size,
        min_frequency: args.min_frequency,
        show_progress: false,
        ..TrainOptions::default()
    };
    let progress = |bytes: u64| match bytes {
        0 => bar.set_message("computing WordPiece merges"),
        n => bar.inc(n),
    };
    let trained = vocab::train_on_files(files, args.reader.options(), &options, &progress);
    bar.finish_and_clear();
    let tokenizer = trained.context("cannot train the tokenizer")?;
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
