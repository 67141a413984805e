//! From a pre-training request to a finished run directory: what `electra pretrain` asks for
//! ([`PretrainRequest`], the flags as values) is resolved before any backend is chosen into a
//! [`Launch`] (the full config, the run directory, this node's place), and [`pretrain`] runs it
//! on the devices and completes the run directory.
//!
//! The rules:
//! - **A new run** takes its config from a preset (`demo` when neither a preset nor a config
//!   file is named), a TOML file and `KEY=VALUE` overrides, in that order. `data` sets
//!   `data.shards`; the tokenizer defaults to the `tokenizer/` folder that `electra data build`
//!   writes beside the shards; `init_*` name a released Hugging Face pair to continue.
//! - **Its run directory** is the one asked for, refused if it already holds a run (resume it
//!   instead); by default `runs/<preset>`, or the first free `runs/<preset>-N`, so a default
//!   run never overwrites an earlier one. A multi-node run needs one named directory.
//! - **A resumed run** reads the `config.toml` of its directory, and nothing else.
//! - **Node setup**: each multi-node value comes from its flag, else its `ELECTRA_*`
//!   environment variable, else the one-node default.
//! - **After training**, node 0 saves the tokenizer into the run directory and draws
//!   `curves.svg`, so every run directory can be exported and fine-tuned from, whoever called
//!   the library.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use burn::tensor::backend::AutodiffBackend;

use crate::config::RunConfig;
use crate::distributed::{ENV_COORDINATOR, ENV_NODE_ADDRESS, ENV_NODE_RANK, ENV_NODES, NodeSetup};
use crate::error::TrainError;
use crate::observer::TrainObserver;
use crate::trainer::{self, BatchSource, RunOptions, Summary};
use crate::{metrics, source};

/// What a pre-training asks for: the `electra pretrain` flags as values (`None`: not given).
#[derive(Clone, Debug, Default)]
pub struct PretrainRequest {
    /// A run preset (demo, tiny, small, base, large).
    pub preset: Option<String>,
    /// A TOML run config.
    pub config: Option<PathBuf>,
    /// A shard directory from `electra data build`.
    pub data: Option<PathBuf>,
    /// The tokenizer of the shards.
    pub tokenizer: Option<PathBuf>,
    /// The run directory of a new run.
    pub out: Option<PathBuf>,
    /// Optimizer steps (`train.steps`).
    pub steps: Option<u64>,
    /// `KEY=VALUE` config overrides.
    pub set: Vec<String>,
    /// A run directory to continue.
    pub resume: Option<PathBuf>,
    /// A released generator to continue (`init.generator`).
    pub init_generator: Option<PathBuf>,
    /// A released discriminator to continue (`init.discriminator`).
    pub init_discriminator: Option<PathBuf>,
    /// Stop after this many steps of this invocation (the run stays resumable).
    pub stop_after: Option<u64>,
    /// The multi-node values given as flags.
    pub node: NodeFlags,
}

/// The multi-node values given as flags; each missing one falls back to its `ELECTRA_*`
/// variable, then to [`NodeSetup::default`] (whose timeouts are the default ones).
#[derive(Clone, Debug)]
pub struct NodeFlags {
    /// Number of nodes (`ELECTRA_NNODES`).
    pub nodes: Option<usize>,
    /// This node's rank (`ELECTRA_NODE_RANK`).
    pub node_rank: Option<usize>,
    /// The coordinator's `HOST:PORT` (`ELECTRA_COORDINATOR`).
    pub coordinator: Option<String>,
    /// This node's `HOST:PORT` (`ELECTRA_NODE_ADDRESS`).
    pub node_address: Option<String>,
    /// How long to wait for the coordinator and every node to join.
    pub join_timeout: Duration,
    /// How long one exchange between the nodes may take.
    pub collective_timeout: Duration,
}

impl Default for NodeFlags {
    fn default() -> Self {
        let setup = NodeSetup::default();
        Self {
            nodes: None,
            node_rank: None,
            coordinator: None,
            node_address: None,
            join_timeout: setup.join_timeout,
            collective_timeout: setup.collective_timeout,
        }
    }
}

/// A resolved pre-training, ready to run on a backend.
#[derive(Clone, Debug)]
pub struct Launch {
    /// The full run config (saved as `config.toml`).
    pub config: RunConfig,
    /// The run directory.
    pub run_dir: PathBuf,
    /// Stop after this many steps of this invocation.
    pub stop_after: Option<u64>,
    /// This process's place among the nodes.
    pub node: NodeSetup,
}

/// What [`pretrain`] did.
#[derive(Clone, Debug)]
pub struct Finished {
    /// The loop's summary.
    pub summary: Summary,
    /// The config the run trained with.
    pub config: RunConfig,
    /// The run directory.
    pub run_dir: PathBuf,
    /// This node wrote the run directory (node 0): its tokenizer, metrics and `curves.svg`.
    pub writer: bool,
    /// The number of nodes and this node's rank.
    pub nodes: (usize, usize),
}

impl Finished {
    /// The training curves drawn after the run (node 0).
    pub fn plot(&self) -> PathBuf {
        self.run_dir.join("curves.svg")
    }
}

impl NodeFlags {
    /// The node setup, each value from its flag, its variable or the default; checked.
    pub fn resolve(&self) -> Result<NodeSetup, TrainError> {
        let defaults = NodeSetup::default();
        let setup = NodeSetup {
            nodes: flag_or_env(self.nodes, ENV_NODES)?.unwrap_or(defaults.nodes),
            node_rank: flag_or_env(self.node_rank, ENV_NODE_RANK)?.unwrap_or(defaults.node_rank),
            coordinator: flag_or_env(self.coordinator.clone(), ENV_COORDINATOR)?
                .unwrap_or(defaults.coordinator),
            node_address: flag_or_env(self.node_address.clone(), ENV_NODE_ADDRESS)?,
            join_timeout: self.join_timeout,
            collective_timeout: self.collective_timeout,
        };
        setup.validate()?;
        Ok(setup)
    }
}

/// A flag's value, or else the environment variable's, parsed; `None` if neither is set.
fn flag_or_env<T: std::str::FromStr>(flag: Option<T>, var: &str) -> Result<Option<T>, TrainError> {
    if flag.is_some() {
        return Ok(flag);
    }
    match std::env::var(var) {
        Ok(text) => text.trim().parse().map(Some).map_err(|_| {
            TrainError::Request(format!(
                "{var}={text:?} cannot be read: expected a value like its flag's"
            ))
        }),
        Err(std::env::VarError::NotPresent) => Ok(None),
        Err(e) => Err(TrainError::Request(format!("{var}: {e}"))),
    }
}

impl PretrainRequest {
    /// The config, run directory and node setup this request asks for (module docs).
    pub fn resolve(self) -> Result<Launch, TrainError> {
        let node = self.node.resolve()?;
        if let Some(run_dir) = self.resume {
            return Ok(Launch {
                config: resumed_config(&run_dir)?,
                run_dir,
                stop_after: self.stop_after,
                node,
            });
        }
        let config = self.new_config()?;
        let run_dir = match self.out {
            // Node 0 writes config.toml; the other nodes may find it already there.
            Some(dir) if node.node_rank == 0 && dir.join("config.toml").exists() => {
                return Err(TrainError::Request(format!(
                    "{} already holds a run; continue it with `electra pretrain --resume {}` \
                     or choose another --out",
                    dir.display(),
                    dir.display()
                )));
            }
            Some(dir) => dir,
            None if node.is_multi() => {
                return Err(TrainError::Request(
                    "a multi-node run needs --out DIR, the same directory on every node (node 0 \
                     writes it; the others resume from it)"
                        .to_string(),
                ));
            }
            None => free_run_dir(Path::new("runs"), &config.preset),
        };
        Ok(Launch {
            config,
            run_dir,
            stop_after: self.stop_after,
            node,
        })
    }

    /// A new run's config: preset, file and overrides, the released pair's sizes, the
    /// tokenizer's special ids; validated.
    fn new_config(&self) -> Result<RunConfig, TrainError> {
        let mut overrides = Vec::new();
        let mut path_key = |key: &str, path: &Path| {
            let value = toml::Value::String(path.display().to_string());
            overrides.push(format!("{key}={value}"));
        };
        if let Some(dir) = &self.data {
            path_key("data.shards", dir);
        }
        if let Some(path) = self
            .tokenizer
            .clone()
            .or_else(|| self.tokenizer_beside_data())
        {
            path_key("data.tokenizer", &path);
        }
        for (key, dir) in [
            ("init.generator", &self.init_generator),
            ("init.discriminator", &self.init_discriminator),
        ] {
            if let Some(dir) = dir {
                path_key(key, dir);
            }
        }
        if let Some(steps) = self.steps {
            overrides.push(format!("train.steps={steps}"));
        }
        overrides.extend(self.set.iter().cloned());
        let preset = match (&self.preset, &self.config) {
            (Some(p), _) => Some(p.as_str()),
            (None, None) => Some("demo"),
            (None, Some(_)) => None,
        };
        let mut config = RunConfig::resolve(preset, self.config.as_deref(), &overrides)?;
        electra_run::init::adopt_hf_pair(&mut config)?;
        source::align_to_tokenizer(&mut config)?;
        config.validate()?;
        Ok(config)
    }

    /// `electra data build` saves its tokenizer beside the shards; it is the default (the run
    /// still checks the shards' manifest against it).
    fn tokenizer_beside_data(&self) -> Option<PathBuf> {
        let beside = self.data.as_ref()?.join(electra_data::build::TOKENIZER_DIR);
        beside.is_dir().then_some(beside)
    }
}

/// The config saved in a run directory to resume.
fn resumed_config(run_dir: &Path) -> Result<RunConfig, TrainError> {
    let file = run_dir.join("config.toml");
    if !file.is_file() {
        return Err(TrainError::Request(format!(
            "--resume {}: no config.toml there (not a run directory)",
            run_dir.display()
        )));
    }
    Ok(RunConfig::resolve(None, Some(&file), &[])?)
}

/// `root/name`, or the first `root/name-N` that does not exist yet.
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

/// A flag that Ctrl-C (SIGINT) and SIGTERM set: the loop stops after the step in progress and
/// writes a checkpoint; a second signal only says so (it does not abort the write).
pub fn stop_on_signals() -> Result<Arc<AtomicBool>, TrainError> {
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
    .map_err(|e| TrainError::Request(format!("cannot install the Ctrl-C handler: {e}")))?;
    Ok(stop)
}

/// Runs `launch` on `devices` until it finishes or `stop` is set, then (node 0) saves the
/// tokenizer into the run directory and draws `curves.svg`.
pub fn pretrain<B: AutodiffBackend>(
    launch: Launch,
    devices: &[B::Device],
    stop: Arc<AtomicBool>,
    observer: &mut dyn TrainObserver,
) -> Result<Finished, TrainError> {
    let Launch {
        config,
        run_dir,
        stop_after,
        node,
    } = launch;
    let data = source::open_node(&config, node.node_rank, node.nodes)?;
    let (mut train, mut eval) = (data.train, data.eval);
    let writer = node.node_rank == 0;
    let nodes = (node.nodes, node.node_rank);
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
    let options = RunOptions {
        run_dir: run_dir.clone(),
        stop,
        stop_after,
        node,
    };
    let summary = trainer::run_observed::<B>(
        &config,
        &mut train,
        eval.as_mut().map(|e| e as &mut dyn BatchSource),
        devices,
        &options,
        observer,
    )?;
    let finished = Finished {
        summary,
        config,
        run_dir,
        writer,
        nodes,
    };
    if writer {
        data.tokenizer.save(&finished.run_dir)?;
        let records = metrics::read(&finished.run_dir.join("metrics.jsonl"))?;
        metrics::plot(&records, &finished.plot())?;
    }
    Ok(finished)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_default_run_directory_never_reuses_an_existing_one() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let root = tmp.path();
        assert_eq!(free_run_dir(root, "demo"), root.join("demo"));
        std::fs::create_dir(root.join("demo")).expect("mkdir");
        std::fs::create_dir(root.join("demo-2")).expect("mkdir");
        assert_eq!(free_run_dir(root, "demo"), root.join("demo-3"));
    }

    #[test]
    fn a_new_run_is_refused_in_a_run_directory_and_a_resume_needs_one() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().join("run");
        std::fs::create_dir(&dir).expect("mkdir");
        let resume = PretrainRequest {
            resume: Some(dir.clone()),
            ..PretrainRequest::default()
        };
        let err = resume.clone().resolve().expect_err("no config.toml");
        assert!(err.to_string().contains("not a run directory"), "{err}");
        std::fs::write(dir.join("config.toml"), "preset = \"tiny\"\n").expect("write");
        let launch = resume.resolve().expect("resumes");
        assert_eq!(launch.config.preset, "tiny");
        let again = PretrainRequest {
            preset: Some("tiny".into()),
            out: Some(dir.clone()),
            ..PretrainRequest::default()
        };
        let err = again.resolve().expect_err("refused");
        assert!(err.to_string().contains("already holds a run"), "{err}");
    }

    #[test]
    fn the_tokenizer_beside_the_shards_is_the_default() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let request = PretrainRequest {
            data: Some(tmp.path().to_path_buf()),
            ..PretrainRequest::default()
        };
        assert_eq!(request.tokenizer_beside_data(), None);
        let beside = tmp.path().join(electra_data::build::TOKENIZER_DIR);
        std::fs::create_dir(&beside).expect("mkdir");
        assert_eq!(request.tokenizer_beside_data(), Some(beside));
    }
}
