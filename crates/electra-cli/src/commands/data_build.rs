//! `electra data build`: corpus (or the demo corpus) to Parquet shards and a manifest.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;
use electra_data::build::{BuildConfig, build_shards};
use electra_data::build_request::{self, InputRequest};
use electra_data::manifest::Slice;

#[derive(Debug, clap::Args)]
pub struct BuildArgs {
    /// Corpus files, directories or globs (text, WikiExtractor, JSONL, Parquet; .gz too).
    /// Without it, the built-in demo corpus is used (a demo, not a benchmark).
    #[arg(long, num_args = 1..)]
    pub input: Vec<String>,
    /// Tokenizer: a BERT vocab.txt, a tokenizer.json, or a directory holding one. Required
    /// with --input; without --input the demo tokenizer is used.
    #[arg(long)]
    pub tokenizer: Option<PathBuf>,
    /// Maximum example length, [CLS] and [SEP]s included.
    #[arg(long, default_value_t = 128)]
    pub max_seq_len: usize,
    /// Output directory (shards and manifest). A directory that already holds shards is
    /// refused unless --overwrite is given.
    #[arg(long)]
    pub out: PathBuf,
    /// Replace the shard set already in --out: all its shards, manifests and tokenizer are
    /// removed once the new set is complete, so nothing of the earlier build remains.
    #[arg(long)]
    pub overwrite: bool,
    /// Number of shards of the whole build. Each input file goes whole into one shard
    /// (file i into shard i mod N), so use at least as many files as shards.
    #[arg(long, default_value_t = 8)]
    pub shards: usize,
    /// Seed of the packing randomness.
    #[arg(long, default_value_t = 12345)]
    pub seed: u64,
    /// Build only slice i of --num-shards slices (shards j with j % n == i).
    #[arg(long, requires = "num_shards")]
    pub shard_index: Option<usize>,
    /// Number of slices the build is split into (machines of a cluster).
    #[arg(long, requires = "shard_index")]
    pub num_shards: Option<usize>,
    /// Rows per Parquet row group.
    #[arg(long, default_value_t = 4096)]
    pub row_group_rows: usize,
    /// How the corpus is read.
    #[command(flatten)]
    pub reader: super::progress::ReaderArgs,
    /// Documents of the demo corpus (without --input).
    #[arg(long, default_value_t = 20_000)]
    pub demo_documents: usize,
    /// Seed of the demo corpus text.
    #[arg(long, default_value_t = 0)]
    pub demo_seed: u64,
}

/// Builds the shards.
pub fn run(args: &BuildArgs) -> anyhow::Result<()> {
    let resolved = InputRequest {
        inputs: args.input.clone(),
        tokenizer: args.tokenizer.clone(),
        demo_documents: args.demo_documents,
        demo_seed: args.demo_seed,
        shards: args.shards,
    }
    .resolve()?;
    for note in &resolved.notes {
        eprintln!("{note}");
    }
    let (input, tokenizer) = (resolved.input, resolved.tokenizer);
    let mut config = BuildConfig::new(args.max_seq_len, args.shards);
    config.seed = args.seed;
    config.row_group_rows = args.row_group_rows;
    config.slice = match (args.shard_index, args.num_shards) {
        (Some(index), Some(count)) => Some(Slice { index, count }),
        _ => None,
    };
    config.reader = args.reader.options();
    config.overwrite = args.overwrite;
    let bar = electra_data::progress::text_spinner(format!("into {} shard(s)", args.shards));
    let started = Instant::now();
    let manifest = build_shards(&input, &tokenizer, &config, &args.out, &|bytes| {
        bar.inc(bytes)
    })
    .with_context(|| format!("cannot build shards into {}", args.out.display()))?;
    bar.finish_and_clear();
    let secs = started.elapsed().as_secs_f64();
    println!("{}", build_request::describe(&manifest, &args.out, secs));
    Ok(())
}
