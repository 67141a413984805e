//! `electra pretrain`: ELECTRA pre-training. The flags become an
//! [`electra_train::launch::PretrainRequest`]; resolving it (config, run directory, resume,
//! multi-node setup from flags or `ELECTRA_*` variables), the run and completing the run
//! directory are `electra_train::launch`'s; this file prints the report.

use std::path::PathBuf;
use std::time::Duration;

use burn::backend::Autodiff;
use burn::tensor::backend::Backend;
use electra_backend::{DeviceSpec, MultiDeviceTask};
use electra_train::launch::{self, Launch, NodeFlags, PretrainRequest};
use electra_train::progress::Bar;

/// The flags of a new run conflict with `--resume` (a resumed run reads its own config).
const R: &str = "resume";

#[derive(Debug, clap::Args)]
pub struct PretrainArgs {
    /// Run preset: demo (default), tiny, small, base, large.
    #[arg(long, conflicts_with = R)]
    pub preset: Option<String>,
    /// A TOML run config (keys as in `config.toml` of a run; `preset = "..."` picks the base).
    #[arg(long, conflicts_with = R)]
    pub config: Option<PathBuf>,
    /// Directory of Parquet shards from `electra data build` (default: the demo corpus).
    #[arg(long, conflicts_with = R)]
    pub data: Option<PathBuf>,
    /// The tokenizer the shards were built with (vocab.txt or tokenizer.json; default: the
    /// `tokenizer/` folder that `electra data build` writes beside the shards).
    #[arg(long, conflicts_with = R)]
    pub tokenizer: Option<PathBuf>,
    /// Run directory (default: runs/<preset>, or runs/<preset>-N if that exists).
    #[arg(long, conflicts_with = R)]
    pub out: Option<PathBuf>,
    /// Optimizer steps (sets train.steps).
    #[arg(long, conflicts_with = R)]
    pub steps: Option<u64>,
    /// Override any config key, e.g. `--set objective.mask_prob=0.25` (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE", conflicts_with = R)]
    pub set: Vec<String>,
    /// Several devices of one backend for data-parallel training, e.g. `cuda:0,cuda:1`
    /// (replaces --device; each step's batch is split across them and the gradients are
    /// averaged with burn's collective all-reduce).
    #[arg(long, value_delimiter = ',')]
    pub devices: Vec<DeviceSpec>,
    /// Continue the run in this directory from its newest checkpoint.
    #[arg(long)]
    pub resume: Option<PathBuf>,
    /// Continue pre-training a released ELECTRA: its generator, a Hugging Face
    /// `ElectraForMaskedLM` directory (e.g. `electra-small-generator`). The model's sizes come
    /// from the two checkpoints; the optimizer and schedule start afresh.
    #[arg(long, value_name = "DIR", conflicts_with = R, requires = "init_discriminator")]
    pub init_generator: Option<PathBuf>,
    /// The released discriminator to continue, a Hugging Face `ElectraForPreTraining`
    /// directory (e.g. `electra-small-discriminator`); with --init-generator.
    #[arg(long, value_name = "DIR", conflicts_with = R, requires = "init_generator")]
    pub init_discriminator: Option<PathBuf>,
    /// Stop after this many steps of this invocation's run (for tests and benchmarks); the
    /// run stays resumable.
    #[arg(long, hide = true)]
    pub stop_after: Option<u64>,
    /// Multi-node training (docs/multi-node.md).
    #[command(flatten)]
    pub node: NodeArgs,
}

/// The multi-node flags; each falls back to its `ELECTRA_*` variable.
#[derive(Debug, clap::Args)]
#[command(next_help_heading = "Multi-node")]
pub struct NodeArgs {
    /// The number of nodes (processes, usually one per machine), each with its own --devices
    /// [env: ELECTRA_NNODES; default 1].
    #[arg(long)]
    pub nodes: Option<usize>,
    /// This node's rank, 0 to nodes − 1; node 0 runs the coordinator and writes the run
    /// directory [env: ELECTRA_NODE_RANK; default 0].
    #[arg(long)]
    pub node_rank: Option<usize>,
    /// HOST:PORT of the coordinator, which node 0 starts on PORT [env: ELECTRA_COORDINATOR;
    /// default 127.0.0.1:29500].
    #[arg(long, value_name = "HOST:PORT")]
    pub coordinator: Option<String>,
    /// HOST:PORT at which the other nodes reach this node; its tensor service listens on PORT
    /// [env: ELECTRA_NODE_ADDRESS; default: the coordinator's host, port + 1 + rank].
    #[arg(long, value_name = "HOST:PORT")]
    pub node_address: Option<String>,
    /// Seconds to wait for the coordinator and for every node to join.
    #[arg(long, default_value_t = 60, value_name = "SECS")]
    pub join_timeout: u64,
    /// Seconds one exchange between the nodes may take (longer than the slowest node's step
    /// plus node 0's evaluation and checkpoint writing) before the run stops with an error
    /// naming the nodes it waited for.
    #[arg(long, default_value_t = 300, value_name = "SECS")]
    pub collective_timeout: u64,
}

impl PretrainArgs {
    /// The request these flags make, resolved before any backend is chosen.
    pub fn resolve(self) -> anyhow::Result<Launch> {
        let request = PretrainRequest {
            preset: self.preset,
            config: self.config,
            data: self.data,
            tokenizer: self.tokenizer,
            out: self.out,
            steps: self.steps,
            set: self.set,
            resume: self.resume,
            init_generator: self.init_generator,
            init_discriminator: self.init_discriminator,
            stop_after: self.stop_after,
            node: NodeFlags {
                nodes: self.node.nodes,
                node_rank: self.node.node_rank,
                coordinator: self.node.coordinator,
                node_address: self.node.node_address,
                join_timeout: Duration::from_secs(self.node.join_timeout),
                collective_timeout: Duration::from_secs(self.node.collective_timeout),
            },
        };
        Ok(request.resolve()?)
    }
}

/// A resolved pre-training on the devices of one backend.
pub struct Pretrain(pub Launch);

impl MultiDeviceTask for Pretrain {
    type Output = anyhow::Result<()>;

    fn run<B: Backend>(self, devices: Vec<B::Device>) -> anyhow::Result<()> {
        let stop = launch::stop_on_signals()?;
        let finished =
            launch::pretrain::<Autodiff<B>>(self.0, &devices, stop, &mut Bar::default())?;
        println!("{}", finished.report());
        Ok(())
    }
}
