//! The run directory around the loop: `config.toml` written for a new run and checked for a
//! resumed one, the state a run starts from (fresh, a released pair, or the newest intact
//! checkpoint with the data cursor moved to it), and checkpoints written (on several nodes,
//! with every node's data cursor).

use std::path::{Path, PathBuf};

use burn::tensor::backend::AutodiffBackend;
use electra_objective::ElectraPretrainingModel;
use serde_json::json;

use crate::checkpoint::{self, list_checkpoints};
use crate::config::RunConfig;
use crate::distributed::Resolved;
use crate::error::TrainError;
use crate::exchange::gather_cursors;
use crate::optim::ElectraAdam;
use crate::parallel::Peers;
use crate::step::State;
use crate::trainer::BatchSource;

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> TrainError + '_ {
    move |source| TrainError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Creates the run directory and writes `config.toml` for a new run; for a run with
/// checkpoints, checks that its saved config equals `config`. A node other than node 0
/// (`writer = false`) writes nothing and only checks a run it finds.
pub(crate) fn prepare_run_dir(
    config: &RunConfig,
    run_dir: &Path,
    writer: bool,
) -> Result<(), TrainError> {
    if writer {
        std::fs::create_dir_all(run_dir).map_err(io(run_dir))?;
    }
    let config_path = run_dir.join("config.toml");
    let text = config.to_toml()?;
    if list_checkpoints(run_dir)?.is_empty() {
        if writer {
            electra_fs::write_atomic(&config_path, text.as_bytes())?;
        }
        return Ok(());
    }
    let saved = std::fs::read_to_string(&config_path).map_err(io(&config_path))?;
    // Compared as configs, not as text: a config written by an older build (another key
    // order, `tie_embeddings` for `embedding_sharing`) resumes when it says the same.
    if saved != text
        && RunConfig::resolve(None, Some(&config_path), &[])
            .ok()
            .as_ref()
            != Some(config)
    {
        return Err(TrainError::InvalidConfig(format!(
            "{} holds a run with a different config; resume it with its own config \
             (`--resume {}`) or choose another output directory",
            config_path.display(),
            run_dir.display()
        )));
    }
    Ok(())
}

/// A freshly initialised model and optimizer, or those of the newest intact checkpoint
/// (with `train` moved to its cursor); a new run with `[init]` starts from the released
/// Hugging Face pair it names (`electra_run::init`) with a fresh optimizer.
pub(crate) fn init_or_resume<'a, B: AutodiffBackend>(
    config: &'a RunConfig,
    run_dir: &'a Path,
    device: &B::Device,
    train: &mut dyn BatchSource,
    world: Option<&Resolved>,
) -> Result<State<'a, B>, TrainError> {
    let mut objective = config.objective.clone();
    objective.seed = config.objective_seed();
    B::seed(device, config.derived_seed("init"));
    let mut model = ElectraPretrainingModel::<B>::new(&config.model, &objective, device)?;
    let mut optimizer = ElectraAdam::<B>::new(config.optimizer.clone())?;
    let mut step = 0u64;
    // The newest intact checkpoint: a damaged newer one is skipped with a warning (its
    // directory stays; training past its step writes a good one in its place).
    let resumed = checkpoint::newest_intact(run_dir, |_, dir| {
        let loaded = checkpoint::load(dir)?;
        let mut candidate = model.clone();
        checkpoint::load_model(dir, &mut candidate)?;
        Ok((loaded, candidate))
    })?;
    if let Some((saved_step, dir, (loaded, candidate))) = resumed {
        model = candidate;
        optimizer.load_state(loaded.optimizer, device);
        let cursor = node_cursor(&loaded.state, &dir, world, &*train)?;
        train.seek(&cursor)?;
        step = saved_step;
        tracing::info!(step, checkpoint = %dir.display(), "resuming");
    } else if let Some((released, report)) = electra_run::init::load_hf_pair::<B>(config, device)? {
        // A new run continuing a released pair: its weights, a fresh optimizer and schedule.
        model = released;
        for line in electra_run::init::describe(&report) {
            if report.differences.is_empty() {
                tracing::info!("{line}");
            } else {
                tracing::warn!("{line}");
            }
        }
    }
    Ok(State {
        config,
        run_dir,
        model,
        optimizer,
        step,
    })
}

/// A checkpoint of `state`'s step, with `train`'s cursor. On several nodes (`peers` with a
/// world) every node takes part (each node's data cursor is gathered) and node 0 alone
/// writes; the others return the directory node 0 writes.
pub(crate) fn save<B: AutodiffBackend>(
    state: &State<'_, B>,
    train: &dyn BatchSource,
    peers: Option<&Peers<B>>,
) -> Result<PathBuf, TrainError> {
    let cursor = train.cursor();
    let mut saved = json!({
        "step": state.step,
        "cursor": cursor,
        "config": state.config,
    });
    if let Some(peers) = peers
        && let Some(world) = peers.world()
    {
        saved["cursors"] = serde_json::Value::Array(gather_cursors(peers, &cursor)?);
        if world.rank != 0 {
            let name = checkpoint::checkpoint_name(state.step);
            return Ok(state.run_dir.join("checkpoints").join(name));
        }
    }
    let keep = state.config.train.keep_checkpoints;
    let optimizer = state.optimizer.state();
    let dir = checkpoint::save(
        state.run_dir,
        state.step,
        &state.model,
        &optimizer,
        &saved,
        keep,
    )?;
    tracing::debug!(step = state.step, dir = %dir.display(), "checkpoint written");
    Ok(dir)
}

/// The data cursor this node resumes from: `cursor` on one node; on several, this node's
/// entry of `cursors` (each node reads its own slice of the data). On another number of nodes
/// than wrote the checkpoint, the source regroups the writers' cursors
/// ([`BatchSource::regroup`]: the loader starts every node at the earliest of them).
fn node_cursor(
    state: &serde_json::Value,
    dir: &Path,
    world: Option<&Resolved>,
    train: &dyn BatchSource,
) -> Result<serde_json::Value, TrainError> {
    let written = match state["cursors"].as_array() {
        Some(cursors) => cursors.clone(),
        None => vec![state["cursor"].clone()],
    };
    let nodes = world.map_or(1, |w| w.nodes);
    if written.len() == nodes {
        return Ok(written[world.map_or(0, |w| w.rank)].clone());
    }
    let cursor = train.regroup(&written).map_err(|e| {
        TrainError::Distributed(format!(
            "{} was written by {} node(s), resumed on {nodes}: {e}",
            dir.display(),
            written.len()
        ))
    })?;
    tracing::warn!(
        written_by = written.len(),
        nodes,
        %cursor,
        "resuming on another number of nodes: every node starts at the earliest data cursor \
         of the nodes that wrote the checkpoint (no row is skipped; a few rows may be read \
         twice)"
    );
    Ok(cursor)
}

#[cfg(test)]
mod tests {
    use electra_objective::HostBatch;

    use super::*;
    use crate::distributed::NodeSetup;

    /// A source whose cursors are numbers and which regroups to the smallest.
    struct Numbers;

    impl BatchSource for Numbers {
        fn next_batch(&mut self, _: usize) -> Result<HostBatch, TrainError> {
            Err(TrainError::InvalidConfig("not read".into()))
        }
        fn cursor(&self) -> serde_json::Value {
            json!(0)
        }
        fn seek(&mut self, _: &serde_json::Value) -> Result<(), TrainError> {
            Ok(())
        }
        fn regroup(&self, cursors: &[serde_json::Value]) -> Result<serde_json::Value, TrainError> {
            Ok(json!(
                cursors.iter().filter_map(|c| c["row"].as_u64()).min()
            ))
        }
    }

    /// The default [`BatchSource::regroup`].
    struct Fixed;

    impl BatchSource for Fixed {
        fn next_batch(&mut self, _: usize) -> Result<HostBatch, TrainError> {
            Err(TrainError::InvalidConfig("not read".into()))
        }
        fn cursor(&self) -> serde_json::Value {
            json!(0)
        }
        fn seek(&mut self, _: &serde_json::Value) -> Result<(), TrainError> {
            Ok(())
        }
    }

    #[test]
    fn a_checkpoint_resumes_on_its_node_count_by_rank_and_on_another_through_the_source() {
        let two = json!({ "cursor": { "row": 7 }, "cursors": [{ "row": 7 }, { "row": 4 }] });
        let one = json!({ "cursor": { "row": 5 } });
        let dir = Path::new("run/checkpoints/step-00000002");
        let node = |nodes, node_rank| {
            NodeSetup {
                nodes,
                node_rank,
                ..NodeSetup::default()
            }
            .validate()
            .expect("valid")
        };
        let cursor = node_cursor(&two, dir, Some(&node(2, 1)), &Numbers).expect("node 1 of 2");
        assert_eq!(
            cursor,
            json!({ "row": 4 }),
            "each node resumes its own slice"
        );
        let cursor = node_cursor(&one, dir, None, &Numbers).expect("one node");
        assert_eq!(cursor, json!({ "row": 5 }));
        // Another node count: the source regroups every writer's cursor.
        assert_eq!(
            node_cursor(&two, dir, None, &Numbers).expect("2 -> 1"),
            json!(4)
        );
        assert_eq!(
            node_cursor(&two, dir, Some(&node(3, 2)), &Numbers).expect("2 -> 3"),
            json!(4)
        );
        assert_eq!(
            node_cursor(&one, dir, Some(&node(2, 1)), &Numbers).expect("1 -> 2"),
            json!(5)
        );
        // A source that cannot regroup is refused, naming the checkpoint and both counts.
        let err = node_cursor(&two, dir, None, &Fixed).expect_err("no regrouping");
        let err = err.to_string();
        assert!(
            err.contains("step-00000002 was written by 2 node(s), resumed on 1")
                && err.contains("cannot resume on another number of nodes"),
            "{err}"
        );
    }
}
