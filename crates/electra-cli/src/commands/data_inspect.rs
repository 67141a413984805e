//! `electra data inspect`: print a shard directory's manifest and verify every shard.

use std::path::PathBuf;

use anyhow::Context;
use electra_data::inspect::inspect;

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
    print!("{}", report.render());
    Ok(())
}
