//! One module per subcommand; each exposes its clap arguments and a function that runs it.

pub mod export;
pub mod forward;
pub mod plot;
pub mod pretrain;
