//! `electra pretrain`: ELECTRA pre-training.
//!
//! The training loop, optimizer, data loader and demo corpus are not built yet (they are the
//! objective, data and training issues). Until then the command says so plainly and fails,
//! rather than pretending to train.

use anyhow::bail;

/// Arguments of `electra pretrain` (the full set arrives with the training loop).
#[derive(Debug, clap::Args)]
pub struct PretrainArgs {
    /// Model preset (tiny, small, base, large).
    #[arg(long, default_value = "small")]
    pub preset: String,
}

/// Runs pre-training.
pub fn run(args: &PretrainArgs) -> anyhow::Result<()> {
    let config = electra_model::ElectraConfig::preset(&args.preset)?;
    bail!(
        "pre-training is not implemented yet: the encoder ({} preset: {} layers, hidden {}) and \
         Hugging Face import exist, the objective, data pipeline and training loop do not. \
         See README.md, section Status.",
        args.preset,
        config.num_hidden_layers,
        config.hidden_size
    )
}
