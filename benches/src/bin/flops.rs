//! `flops`: the analytic training FLOPs of a run config, as one JSON object on stdout.
//!
//! The config is resolved exactly as `electra pretrain` resolves it (preset, then `--config`
//! file, then `--set` overrides), so a caller can size runs before starting them. `cargo xtask
//! experiment equal-compute` uses it to give every objective the FLOPs of the ELECTRA run:
//!
//! ```sh
//! cargo run --release -p electra-benches --bin flops -- --preset tiny --set objective.objective=mlm
//! ```
//!
//! Output fields: `objective`, `batch_size`, `max_seq_len`, `slots` (prediction slots per
//! sequence), `steps`, `forward_flops_per_sequence`, `train_flops_per_sequence` (three times the
//! forward), `train_flops_per_step` (× batch size) and `train_flops_total` (× steps). The
//! count is `electra_benches::flops::objective_forward`, the one behind the benchmarks' MFU.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use electra_benches::flops::objective_forward;
use electra_objective::masking::max_predictions;
use electra_train::config::RunConfig;
use serde_json::json;

#[derive(Debug, Parser)]
#[command(about = "Training FLOPs of a run config (resolved as `electra pretrain` does)")]
struct Args {
    /// Run preset (demo, tiny, small, base, large); default `small`, or the config file's.
    #[arg(long)]
    preset: Option<String>,
    /// A TOML run config.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Override any config key, e.g. `--set objective.objective=mlm` (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    set: Vec<String>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(&args) {
        Ok(json) => {
            println!("{json}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("flops: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: &Args) -> Result<String, String> {
    let config = RunConfig::resolve(args.preset.as_deref(), args.config.as_deref(), &args.set)
        .map_err(|e| e.to_string())?;
    let o = &config.objective;
    let generator = o
        .generator_config(&config.model)
        .map_err(|e| e.to_string())?;
    let seq = config.data.max_seq_len;
    let slots = max_predictions(o.mask_prob, seq);
    let forward = objective_forward(o.objective, &config.model, &generator, seq, slots);
    let per_step = 3.0 * forward * config.train.batch_size as f64;
    let report = json!({
        "objective": o.objective.name(),
        "batch_size": config.train.batch_size,
        "max_seq_len": seq,
        "slots": slots,
        "steps": config.train.steps,
        "forward_flops_per_sequence": forward,
        "train_flops_per_sequence": 3.0 * forward,
        "train_flops_per_step": per_step,
        "train_flops_total": per_step * config.train.steps as f64,
    });
    serde_json::to_string(&report).map_err(|e| e.to_string())
}
