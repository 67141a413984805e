//! `electra data inspect`: print a shard directory's manifest and verify every shard.

use std::path::PathBuf;

use anyhow::Context;
use electra_data::inspect::inspect;

/// Arguments of `electra data inspect`.
#[derive(Debug, clap::Args)]
pub struct InspectArgs {
    /// The shard directory (holding manifest.json or slice manifests).
    pub dir: PathBuf,
}

/// Verifies the directory; fails naming the first bad file.
pub fn run(args: &InspectArgs) -> anyhow::Result<()> {
    let report = inspect(&args.dir, &mut |shard| {
        println!(
            "ok  {}  {} rows  {} tokens  {} row groups  {} bytes  sha256 {}",
            shard.file, shard.rows, shard.tokens, shard.row_groups, shard.bytes, shard.sha256
        );
    })
    .with_context(|| format!("{} failed verification", args.dir.display()))?;
    let m = &report.manifest;
    let c = m.counts;
    println!("manifest      {}", report.manifest_path.display());
    println!("format        {} ({})", m.format, m.created_by);
    println!(
        "tokenizer     {} ids, sha256 {} (from {})",
        m.tokenizer.vocab_size, m.tokenizer.sha256, m.tokenizer.source
    );
    println!(
        "settings      max_seq_len {}, seed {}, {} shard(s), token ids {:?}",
        m.settings.max_seq_len, m.settings.seed, m.settings.num_shards, m.token_dtype
    );
    match &m.settings.demo {
        Some(d) => println!(
            "input         demo corpus (seed {}, {} documents)",
            d.seed, d.num_documents
        ),
        None => println!("input         {} file(s)", m.settings.inputs.len()),
    }
    println!(
        "counts        {} documents, {} examples, {} tokens, {:.1} MB of text",
        c.documents,
        c.examples,
        c.tokens,
        c.text_bytes as f64 / 1e6
    );
    let full = report
        .length_histogram
        .get(m.settings.max_seq_len)
        .copied()
        .unwrap_or(0);
    println!(
        "examples      mean length {:.1}, {:.1}% at max length, {:.1}% with two segments",
        c.tokens as f64 / c.examples.max(1) as f64,
        100.0 * full as f64 / c.examples.max(1) as f64,
        100.0 * report.two_segment_examples as f64 / c.examples.max(1) as f64
    );
    for f in &report.unlisted_files {
        println!("warning: {f} is not listed in the manifest");
    }
    println!("all {} shard(s) verified", m.shards.len());
    Ok(())
}
