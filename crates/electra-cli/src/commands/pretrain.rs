//! `electra pretrain`: ELECTRA pre-training.
//!
//! With no arguments it runs the `demo` preset on the built-in demo corpus into `runs/demo`
//! (or `runs/demo-2`, ... if that exists). `--resume RUN_DIR` continues a run from its newest
//! checkpoint with the config saved in it.
//!
//! `--nodes N --node-rank R --coordinator HOST:PORT` makes this process one node of a
//! multi-node run (or the `ELECTRA_*` variables, see [`node_setup`] and `docs/multi-node.md`);
//! the logic is `electra_train::distributed`, this file only reads the flags.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::{Context, bail};
use burn::backend::Autodiff;
use burn::tensor::backend::Backend;
use electra_train::config::RunConfig;
use electra_train::distributed::{
    ENV_COORDINATOR, ENV_NODE_ADDRESS, ENV_NODE_RANK, ENV_NODES, NodeSetup,
};
use electra_train::metrics;
use electra_train::observer::{LoggedMetrics, TrainObserver};
use electra_train::source;
use electra_train::trainer::{self, BatchSource, RunOptions, Summary};
use indicatif::{ProgressBar, ProgressStyle};

use crate::backend::{DeviceSpec, MultiDeviceTask};

/// Arguments of `electra pretrain`.
#[derive(Debug, clap::Args)]
pub struct PretrainArgs {
    /// Run preset: demo (default), tiny, small, base, large.
    #[arg(long, conflicts_with = "resume")]
    pub preset: Option<String>,
    /// A TOML run config (keys as in `config.toml` of a run; `preset = "..."` picks the base).
    #[arg(long, conflicts_with = "resume")]
    pub config: Option<PathBuf>,
    /// Directory of Parquet shards from `electra data build` (default: the demo corpus).
    #[arg(long, conflicts_with = "resume")]
    pub data: Option<PathBuf>,
    /// The tokenizer the shards were built with (vocab.txt or tokenizer.json; default: the
    /// `tokenizer/` folder that `electra data build` writes beside the shards).
    #[arg(long, conflicts_with = "resume")]
    pub tokenizer: Option<PathBuf>,
    /// Run directory (default: runs/<preset>, or runs/<preset>-N if that exists).
    #[arg(long, conflicts_with = "resume")]
    pub out: Option<PathBuf>,
    /// Optimizer steps (sets train.steps).
    #[arg(long, conflicts_with = "resume")]
    pub steps: Option<u64>,
    /// Override any config key, e.g. `--set objective.mask_prob=0.25` (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE", conflicts_with = "resume")]
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
    #[arg(
        long,
        value_name = "DIR",
        conflicts_with = "resume",
        requires = "init_discriminator"
    )]
    pub init_generator: Option<PathBuf>,
    /// The released discriminator to continue, a Hugging Face `ElectraForPreTraining`
    /// directory (e.g. `electra-small-discriminator`); with --init-generator.
    #[arg(
        long,
        value_name = "DIR",
        conflicts_with = "resume",
        requires = "init_generator"
    )]
    pub init_discriminator: Option<PathBuf>,
    /// Stop after this many steps of this invocation's run (for tests and benchmarks); the
    /// run stays resumable.
    #[arg(long, hide = true)]
    pub stop_after: Option<u64>,
    /// Multi-node training: the number of nodes (processes, usually one per machine), each
    /// with its own --devices [env: ELECTRA_NNODES; default 1]. See docs/multi-node.md.
    #[arg(long, help_heading = "Multi-node")]
    pub nodes: Option<usize>,
    /// This node's rank, 0 to nodes − 1; node 0 runs the coordinator and writes the run
    /// directory [env: ELECTRA_NODE_RANK; default 0].
    #[arg(long, help_heading = "Multi-node")]
    pub node_rank: Option<usize>,
    /// HOST:PORT of the coordinator, which node 0 starts on PORT [env: ELECTRA_COORDINATOR;
    /// default 127.0.0.1:29500].
    #[arg(long, value_name = "HOST:PORT", help_heading = "Multi-node")]
    pub coordinator: Option<String>,
    /// HOST:PORT at which the other nodes reach this node; its tensor service listens on PORT
    /// [env: ELECTRA_NODE_ADDRESS; default: the coordinator's host, port + 1 + rank].
    #[arg(long, value_name = "HOST:PORT", help_heading = "Multi-node")]
    pub node_address: Option<String>,
    /// Seconds to wait for the coordinator and for every node to join.
    #[arg(
        long,
        default_value_t = 60,
        value_name = "SECS",
        help_heading = "Multi-node"
    )]
    pub join_timeout: u64,
    /// Seconds one exchange between the nodes may take (longer than the slowest node's step
    /// plus node 0's evaluation and checkpoint writing) before the run stops with an error
    /// naming the nodes it waited for.
    #[arg(
        long,
        default_value_t = 300,
        value_name = "SECS",
        help_heading = "Multi-node"
    )]
    pub collective_timeout: u64,
}

/// A flag's value, or else the environment variable's, parsed; `None` if neither is set.
fn flag_or_env<T: std::str::FromStr>(flag: Option<T>, var: &str) -> anyhow::Result<Option<T>> {
    if flag.is_some() {
        return Ok(flag);
    }
    match std::env::var(var) {
        Ok(text) => text.trim().parse().map(Some).map_err(|_| {
            anyhow::anyhow!("{var}={text:?} cannot be read: expected a value like its flag's")
        }),
        Err(std::env::VarError::NotPresent) => Ok(None),
        Err(e) => bail!("{var}: {e}"),
    }
}

/// The node setup from the multi-node flags, falling back to `ELECTRA_NNODES`,
/// `ELECTRA_NODE_RANK`, `ELECTRA_COORDINATOR` and `ELECTRA_NODE_ADDRESS`, then to
/// [`NodeSetup::default`] (one node). Checked by `electra_train` (ranks, addresses).
pub fn node_setup(args: &PretrainArgs) -> anyhow::Result<NodeSetup> {
    let defaults = NodeSetup::default();
    let setup = NodeSetup {
        nodes: flag_or_env(args.nodes, ENV_NODES)?.unwrap_or(defaults.nodes),
        node_rank: flag_or_env(args.node_rank, ENV_NODE_RANK)?.unwrap_or(defaults.node_rank),
        coordinator: flag_or_env(args.coordinator.clone(), ENV_COORDINATOR)?
            .unwrap_or(defaults.coordinator),
        node_address: flag_or_env(args.node_address.clone(), ENV_NODE_ADDRESS)?,
        join_timeout: Duration::from_secs(args.join_timeout),
        collective_timeout: Duration::from_secs(args.collective_timeout),
    };
    setup.validate()?;
    Ok(setup)
}

/// The resolved job: config and run directory.
#[derive(Debug)]
pub struct Pretrain {
    config: RunConfig,
    run_dir: PathBuf,
    stop_after: Option<u64>,
    node: NodeSetup,
}

impl PretrainArgs {
    /// Resolves the config and run directory, before any backend is chosen.
    pub fn resolve(self) -> anyhow::Result<Pretrain> {
        let node = node_setup(&self)?;
        if let Some(run_dir) = self.resume {
            let file = run_dir.join("config.toml");
            if !file.is_file() {
                bail!(
                    "--resume {}: no config.toml there (not a run directory)",
                    run_dir.display()
                );
            }
            let config = RunConfig::resolve(None, Some(&file), &[])
                .with_context(|| format!("cannot read {}", file.display()))?;
            return Ok(Pretrain {
                config,
                run_dir,
                stop_after: self.stop_after,
                node,
            });
        }
        let mut overrides = Vec::new();
        if let Some(dir) = &self.data {
            overrides.push(format!("data.shards={}", toml_string(dir)));
        }
        // `electra data build` saves its tokenizer beside the shards; use it unless told
        // otherwise (the run still checks the shards' manifest against it).
        let tokenizer = self.tokenizer.clone().or_else(|| {
            let beside = self.data.as_ref()?.join("tokenizer");
            beside.is_dir().then_some(beside)
        });
        if let Some(path) = &tokenizer {
            overrides.push(format!("data.tokenizer={}", toml_string(path)));
        }
        if let Some(steps) = self.steps {
            overrides.push(format!("train.steps={steps}"));
        }
        for (key, dir) in [
            ("init.generator", &self.init_generator),
            ("init.discriminator", &self.init_discriminator),
        ] {
            if let Some(dir) = dir {
                overrides.push(format!("{key}={}", toml_string(dir)));
            }
        }
        overrides.extend(self.set);
        let preset = match (&self.preset, &self.config) {
            (Some(p), _) => Some(p.as_str()),
            (None, None) => Some("demo"),
            (None, Some(_)) => None,
        };
        let mut config = RunConfig::resolve(preset, self.config.as_deref(), &overrides)?;
        electra_train::init::adopt_hf_pair(&mut config)?;
        source::align_to_tokenizer(&mut config)?;
        config.validate()?;
        let run_dir = match self.out {
            // Node 0 writes config.toml; the other nodes may find it already there.
            Some(dir) => {
                if node.node_rank == 0 && dir.join("config.toml").exists() {
                    bail!(
                        "{} already holds a run; continue it with `electra pretrain --resume {}` \
                         or choose another --out",
                        dir.display(),
                        dir.display()
                    );
                }
                dir
            }
            None if node.is_multi() => bail!(
                "a multi-node run needs --out DIR, the same directory on every node (node 0 \
                 writes it; the others resume from it)"
            ),
            None => free_run_dir(Path::new("runs"), &config.preset),
        };
        Ok(Pretrain {
            config,
            run_dir,
            stop_after: self.stop_after,
            node,
        })
    }
}

fn toml_string(path: &Path) -> String {
    toml::Value::String(path.display().to_string()).to_string()
}

/// `runs/<name>`, or the first `runs/<name>-N` that does not exist yet: a default run never
/// overwrites an earlier one.
fn free_run_dir(root: &Path, name: &str) -> PathBuf {
    let first = root.join(name);
    if !first.exists() {
        return first;
    }
    (2..)
        .map(|n| root.join(format!("{name}-{n}")))
        .find(|p| !p.exists())
        .unwrap_or(first)
}

impl MultiDeviceTask for Pretrain {
    type Output = ();

    fn run<B: Backend>(self, devices: Vec<B::Device>) -> anyhow::Result<()> {
        let Pretrain {
            config,
            run_dir,
            stop_after,
            node,
        } = self;
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        ctrlc::set_handler(move || {
            if flag.swap(true, Ordering::SeqCst) {
                eprintln!("\nstill stopping: writing the checkpoint");
            } else {
                eprintln!(
                    "\nstopping after this step; writing a checkpoint (Ctrl-C again does not abort)"
                );
            }
        })
        .context("cannot install the Ctrl-C handler")?;

        let data = source::open_node(&config, node.node_rank, node.nodes)?;
        let writer = node.node_rank == 0;
        let mut train = data.train;
        let mut eval = data.eval;
        tracing::info!(
            run_dir = %run_dir.display(),
            preset = %config.preset,
            steps = config.train.steps,
            batch = config.train.batch_size,
            devices = devices.len(),
            nodes = node.nodes,
            node_rank = node.node_rank,
            seq = config.data.max_seq_len,
            data = %config.data.shards.as_ref().map_or("built-in demo corpus".to_string(), |p| p.display().to_string()),
            "pre-training"
        );
        let (nodes, rank) = (node.nodes, node.node_rank);
        let options = RunOptions {
            run_dir: run_dir.clone(),
            stop,
            stop_after,
            node,
        };
        let summary = trainer::run_observed::<Autodiff<B>>(
            &config,
            &mut train,
            eval.as_mut().map(|e| e as &mut dyn BatchSource),
            &devices,
            &options,
            &mut Bar::default(),
        )?;
        if !writer {
            println!(
                "node {rank} of {nodes}: pre-training {}: steps {}..{}; node 0 wrote the \
                 checkpoint and metrics into {}",
                if summary.interrupted {
                    "stopped early"
                } else {
                    "finished"
                },
                summary.start_step,
                summary.final_step,
                run_dir.display()
            );
            return Ok(());
        }
        data.tokenizer
            .save(&run_dir)
            .with_context(|| format!("cannot save the tokenizer into {}", run_dir.display()))?;
        let records = metrics::read(&run_dir.join("metrics.jsonl"))?;
        let plot = run_dir.join("curves.svg");
        metrics::plot(&records, &plot)?;
        print_summary(&config, &summary, &run_dir, &plot);
        Ok(())
    }
}

/// The terminal progress bar of a training run.
#[derive(Default)]
struct Bar {
    bar: Option<ProgressBar>,
}

impl TrainObserver for Bar {
    fn started(&mut self, start_step: u64, end_step: u64) {
        let bar = ProgressBar::new(end_step);
        bar.set_style(
            ProgressStyle::with_template(
                "{elapsed_precise} [{bar:30}] {pos}/{len} steps {msg} (eta {eta})",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        bar.set_position(start_step);
        self.bar = Some(bar);
    }

    fn stepped(&mut self, step: u64) {
        if let Some(bar) = &self.bar {
            bar.set_position(step);
        }
    }

    fn logged(&mut self, m: &LoggedMetrics) {
        if let Some(bar) = &self.bar {
            bar.set_message(format!(
                "loss {:.3} mlm {:.3} rtd {:.4} {:.0} tok/s",
                m.objective.loss,
                m.objective.mlm_loss,
                m.objective.rtd_loss.unwrap_or(f64::NAN),
                m.tokens_per_sec.unwrap_or(0.0)
            ));
        }
    }

    fn finished(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
    }
}

fn print_summary(config: &RunConfig, s: &Summary, run_dir: &Path, plot: &Path) {
    let nan = f64::NAN;
    let state = if s.interrupted {
        "stopped early"
    } else {
        "finished"
    };
    println!();
    println!(
        "pre-training {state}: steps {}..{} in {:.1} s, {:.0} tokens/s",
        s.start_step, s.final_step, s.seconds, s.tokens_per_sec
    );
    let last = &s.last.objective;
    println!(
        "  train (mean of the last {} steps): loss {:.4}, generator MLM loss {:.4}, MLM accuracy {:.3}",
        config.train.log_every, last.loss, last.mlm_loss, last.mlm_accuracy
    );
    if let Some(rtd_loss) = last.rtd_loss {
        // Share of replaced tokens among all real ones: masked share × samples that differ.
        let replaced_rate =
            config.objective.mask_prob * (1.0 - last.sampled_equals_original.unwrap_or(nan));
        println!(
            "  discriminator: RTD loss {rtd_loss:.4}, accuracy {:.3} (always answering 'original' scores {:.3})",
            last.disc_accuracy.unwrap_or(nan),
            1.0 - replaced_rate
        );
        println!(
            "  replaced tokens: recall {:.3} (chance: {:.3}), precision {:.3}, F1 {:.3}; ROC AUC {:.3} (chance: 0.5)",
            last.disc_recall.unwrap_or(nan),
            replaced_rate,
            last.disc_precision.unwrap_or(nan),
            last.disc_f1.unwrap_or(nan),
            last.disc_auc.unwrap_or(nan)
        );
    }
    if let Some(e) = &s.last_eval {
        let e = &e.objective;
        println!(
            "  held-out: MLM loss {:.4}, MLM accuracy {:.3}, RTD loss {:.4}, replaced recall {:.3}, F1 {:.3}, AUC {:.3}",
            e.mlm_loss,
            e.mlm_accuracy,
            e.rtd_loss.unwrap_or(nan),
            e.disc_recall.unwrap_or(nan),
            e.disc_f1.unwrap_or(nan),
            e.disc_auc.unwrap_or(nan)
        );
    }
    println!("  run directory: {}", run_dir.display());
    println!("  checkpoint:    {}", s.checkpoint.display());
    println!(
        "  metrics:       {}",
        run_dir.join("metrics.jsonl").display()
    );
    println!("  plot:          {}", plot.display());
    if s.interrupted {
        println!(
            "  continue with: electra pretrain --resume {}",
            run_dir.display()
        );
    }
}
