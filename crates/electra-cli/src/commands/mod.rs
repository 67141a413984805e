//! One module per subcommand; each exposes its clap arguments and a function that runs it.

pub mod data_build;
pub mod data_inspect;
pub mod export;
pub mod finetune;
pub mod forward;
pub mod glue;
pub mod plot;
pub mod pretrain;
pub mod progress;
pub mod squad;
pub mod tokenizer_train;
pub mod tuning;

/// `electra data ...`.
#[derive(Debug, clap::Subcommand)]
pub enum DataCommand {
    /// Build Parquet shards of packed examples from a corpus (or the demo corpus).
    Build(data_build::BuildArgs),
    /// Print a shard directory's manifest and verify every shard.
    Inspect(data_inspect::InspectArgs),
}

/// `electra tokenizer ...`.
#[derive(Debug, clap::Subcommand)]
pub enum TokenizerCommand {
    /// Train a WordPiece vocabulary (BERT uncased rules) on a corpus.
    Train(tokenizer_train::TrainArgs),
}
