//! `electra plot RUN_DIR`: the training curves of a run as an SVG file.

use std::path::PathBuf;

use anyhow::Context;
use electra_train::metrics;

#[derive(Debug, clap::Args)]
pub struct PlotArgs {
    /// The run directory (holds metrics.jsonl).
    pub run_dir: PathBuf,
    /// Output file (default RUN_DIR/curves.svg).
    #[arg(long)]
    pub out: Option<PathBuf>,
}

/// Draws the curves.
pub fn run(args: &PlotArgs) -> anyhow::Result<()> {
    let path = args.run_dir.join("metrics.jsonl");
    let records =
        metrics::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| args.run_dir.join("curves.svg"));
    let panels = metrics::plot(&records, &out)?;
    println!(
        "wrote {} ({panels} panels, {} records)",
        out.display(),
        records.len()
    );
    Ok(())
}
