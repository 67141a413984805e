//! # electra: the command line
//!
//! A thin binary over the electra-rs crates: it parses flags, chooses the burn backend once
//! from `--device` (the device strings, the backends and the dispatch are
//! [`electra_backend`]'s; commands are its `BackendTask`s with `anyhow` results), calls one
//! library function per subcommand and prints. No model code, file format or policy lives
//! here.

mod commands;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use electra_backend::DeviceSpec;

/// ELECTRA pre-training, fine-tuning and checkpoint tools on burn.
#[derive(Debug, Parser)]
#[command(name = "electra", version, about)]
struct Cli {
    /// Device to run on: flex (CPU), ndarray, wgpu, wgpu:N, wgpu:cpu, cuda, cuda:N.
    #[arg(long, global = true, default_value = "flex")]
    device: DeviceSpec,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a Hugging Face ELECTRA checkpoint on token ids from a JSON file.
    Forward(commands::forward::ForwardArgs),
    /// Pre-train a generator and discriminator (default: the demo preset on the built-in corpus).
    Pretrain(commands::pretrain::PretrainArgs),
    /// Draw a run's training curves (metrics.jsonl) as SVG.
    Plot(commands::plot::PlotArgs),
    /// Write a run's newest checkpoint as Hugging Face discriminator and generator checkpoints.
    Export(commands::export::ExportArgs),
    /// Fine-tune a pre-trained discriminator on one GLUE task over several seeds.
    Finetune(commands::finetune::FinetuneArgs),
    /// Fine-tune and evaluate on GLUE tasks (results table, test-server files); `glue score`
    /// scores a prediction file.
    Glue(commands::glue::GlueArgs),
    /// Fine-tune and evaluate on SQuAD 1.1 or 2.0 (resumable); `squad predict` answers
    /// questions, `squad score` scores predictions as the official scripts do.
    Squad(commands::squad::SquadArgs),
    /// Pre-training data: build and inspect Parquet shards.
    #[command(subcommand)]
    Data(commands::DataCommand),
    /// Tokenizers: train a WordPiece vocabulary.
    #[command(subcommand)]
    Tokenizer(commands::TokenizerCommand),
}

/// Runs the command. A user error (an `Err` from a command: a bad flag value, a missing or
/// damaged file) is printed as its message and causes, without a backtrace even when
/// `RUST_BACKTRACE` is set (`anyhow` would capture and print one), and exits with status 1.
/// Panics, which are bugs, keep Rust's usual report and backtrace.
fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("{}", render_error(&error));
            ExitCode::FAILURE
        }
    }
}

/// `Error: message`, then the chain of causes, as `anyhow` prints it but never with a
/// backtrace.
fn render_error(error: &anyhow::Error) -> String {
    let mut text = format!("Error: {error}");
    let causes: Vec<String> = error.chain().skip(1).map(|c| c.to_string()).collect();
    if !causes.is_empty() {
        text.push_str("\n\nCaused by:");
        for (i, cause) in causes.iter().enumerate() {
            text.push_str(&format!("\n    {i}: {cause}"));
        }
    }
    text
}

fn run() -> anyhow::Result<()> {
    // burn's collective logs every tensor transfer at `info`.
    electra_backend::logging::init("info,burn_collective=warn,burn_communication=warn");
    let cli = Cli::parse();
    let device = cli.device;
    match cli.command {
        Command::Forward(args) => on(device, args),
        Command::Pretrain(args) => {
            let mut devices = args.devices.clone();
            if devices.is_empty() {
                devices.push(device);
            }
            let task = commands::pretrain::Pretrain(args.resolve()?);
            electra_backend::dispatch_devices(&devices, task)?
        }
        Command::Plot(args) => commands::plot::run(&args),
        Command::Export(args) => on(device, args),
        Command::Finetune(args) => on(device, args.into_run()?).map(drop),
        Command::Glue(args) => match args.command {
            Some(commands::glue::GlueCommand::Score(score)) => commands::glue::score(&score),
            None => on(device, args.into_run()?).map(drop),
        },
        Command::Squad(args) => match args.command {
            Some(commands::squad::SquadCommand::Score(score)) => commands::squad::score(&score),
            Some(commands::squad::SquadCommand::Predict(predict)) => on(device, predict),
            None => on(device, args.tune).map(drop),
        },
        Command::Data(commands::DataCommand::Build(args)) => commands::data_build::run(&args),
        Command::Data(commands::DataCommand::Inspect(args)) => commands::data_inspect::run(&args),
        Command::Tokenizer(commands::TokenizerCommand::Train(args)) => {
            commands::tokenizer_train::run(&args)
        }
    }
}

/// Runs `task` on the backend and device `spec` names: the task's own error and a backend
/// error (a backend left out of the build, a missing driver) both reach the caller.
fn on<T, O>(spec: DeviceSpec, task: T) -> anyhow::Result<O>
where
    T: electra_backend::BackendTask<Output = anyhow::Result<O>>,
{
    electra_backend::dispatch(spec, task)?
}
