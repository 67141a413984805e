//! Checkpoints: everything needed to continue a run exactly, written atomically.
//!
//! A checkpoint is a directory `RUN_DIR/checkpoints/step-NNNNNNNN/` holding
//! - `model.safetensors`: every parameter of the pre-training model under its module path
//!   (burn-store, f32, exact);
//! - `optimizer.safetensors`: the Adam moments, `m.<path>` and `v.<path>`;
//! - `state.json`: the step, the data cursor and the full resolved run configuration.
//!
//! The directory is first written as `.step-NNNNNNNN.tmp` (an [`electra_fs::StagingDir`]),
//! flushed to disk and renamed into place, so a crash, `kill -9` or Ctrl-C mid-write leaves
//! the previous checkpoints intact and no half-written one that looks complete. Only the
//! newest `keep` checkpoints are kept; hidden leftovers of interrupted writes are removed by
//! the next successful save.
//!
//! What `kill -9` leaves at each point of [`save`] (each a [`electra_fs::kill_point`] named
//! `checkpoint.POINT@STEP`, killed in electra-cli's
//! `pretrain::kill_9_inside_a_checkpoint_write_resumes_from_the_newest_complete_one`):
//! - `model-written`, `optimizer-written`, `state-written`: a hidden `.step-N.tmp/` holding
//!   some of the files; never listed, removed by the next save;
//! - `renamed`: the new `step-N/` complete, the checkpoints beyond `keep` not yet removed;
//!   the next save removes them.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use burn::prelude::*;
use burn::tensor::DType;
use burn_store::{ModuleSnapshot, SafetensorsStore};
use safetensors::tensor::{Dtype, TensorView};

use crate::error::RunError;

/// Adam moments by parameter path (see [`electra_optim::ElectraAdam::state`]).
pub type OptimizerState = BTreeMap<String, (TensorData, TensorData)>;

const MODEL: &str = "model.safetensors";
const OPTIMIZER: &str = "optimizer.safetensors";
const STATE: &str = "state.json";

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> RunError + '_ {
    move |source| electra_fs::FsError::new(path, source).into()
}

/// A write of a checkpoint file that failed: an I/O error (a full disk names the free space
/// and the `needed` bytes of the whole checkpoint) or a checkpoint error.
fn write_failed(path: &Path, e: burn_store::SafetensorsStoreError, needed: u64) -> RunError {
    match electra_model::hf::into_io_error(e) {
        Ok(source) => electra_fs::FsError::new(path, source)
            .needing(needed)
            .into(),
        Err(other) => corrupt(path, other),
    }
}

/// About the bytes a checkpoint of a model with `params` parameters takes: the f32 weights
/// and the two f32 Adam moments of each (headers and `state.json` are small beside them).
pub fn checkpoint_bytes(params: usize) -> u64 {
    (params as u64).saturating_mul(3 * 4)
}

fn corrupt(path: &Path, message: impl std::fmt::Display) -> RunError {
    RunError::Checkpoint {
        path: path.to_path_buf(),
        message: message.to_string(),
    }
}

/// The directory name of the checkpoint taken after `step` updates.
pub fn checkpoint_name(step: u64) -> String {
    format!("step-{step:08}")
}

/// The checkpoints under `run_dir/checkpoints`, oldest first, as `(step, dir)`.
pub fn list_checkpoints(run_dir: &Path) -> Result<Vec<(u64, PathBuf)>, RunError> {
    let root = run_dir.join("checkpoints");
    if !root.is_dir() {
        return Ok(Vec::new());
    }
    let mut found = Vec::new();
    for entry in std::fs::read_dir(&root).map_err(io(&root))? {
        let entry = entry.map_err(io(&root))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if let Some(step) = name
            .strip_prefix("step-")
            .and_then(|s| s.parse::<u64>().ok())
            && entry.path().join(STATE).is_file()
        {
            found.push((step, entry.path()));
        }
    }
    found.sort();
    Ok(found)
}

/// The newest checkpoint of `run_dir` that `open` accepts, as `(step, dir, what open
/// returned)`; `None` when the run has no checkpoint.
///
/// Checkpoints are tried newest first. One that `open` rejects (a truncated or corrupt file,
/// a missing tensor) is skipped with a warning naming it and the reason, and the next older
/// one is tried: `keep_checkpoints` keeps older checkpoints for exactly this. When every
/// checkpoint is rejected, the error lists each one and why. For loading a run *directory*
/// (`--resume`, `electra export`, fine-tuning from a run); an explicitly named checkpoint is
/// loaded with [`load`] / [`load_model`] and fails on its own error.
pub fn newest_intact<T>(
    run_dir: &Path,
    mut open: impl FnMut(u64, &Path) -> Result<T, RunError>,
) -> Result<Option<(u64, PathBuf, T)>, RunError> {
    let all = list_checkpoints(run_dir)?;
    let mut rejected = Vec::new();
    for (step, dir) in all.into_iter().rev() {
        match open(step, &dir) {
            Ok(value) => return Ok(Some((step, dir, value))),
            Err(e) => {
                tracing::warn!(
                    "skipping damaged checkpoint {}: {e}; trying an older one",
                    dir.display()
                );
                rejected.push(format!("{}: {e}", dir.display()));
            }
        }
    }
    if rejected.is_empty() {
        return Ok(None);
    }
    Err(RunError::Checkpoint {
        path: run_dir.join("checkpoints"),
        message: format!(
            "no intact checkpoint ({} tried, newest first):\n{}",
            rejected.len(),
            rejected.join("\n")
        ),
    })
}

/// Writes a checkpoint of `model`, the optimizer moments and `state` (JSON) after `step`
/// updates, then removes all but the newest `keep` checkpoints. Returns its directory.
pub fn save<B: Backend, M: ModuleSnapshot<B>>(
    run_dir: &Path,
    step: u64,
    model: &M,
    optimizer: &OptimizerState,
    state: &serde_json::Value,
    keep: usize,
) -> Result<PathBuf, RunError> {
    let root = run_dir.join("checkpoints");
    let name = checkpoint_name(step);
    let dir = root.join(&name);
    let kill_point = |point: &str| electra_fs::kill_point(&format!("checkpoint.{point}@{step}"));
    // The files inside need no atomic writes of their own: the directory is renamed into
    // place only after all of them are complete and flushed.
    let staging = electra_fs::StagingDir::create(root.join(format!(".{name}.tmp")))?;

    // A full disk names the space the whole checkpoint needs.
    let needed = checkpoint_bytes(model.num_params());
    let model_path = staging.path().join(MODEL);
    let mut store = SafetensorsStore::from_file(&model_path);
    model
        .save_into(&mut store)
        .map_err(|e| write_failed(&model_path, e, needed))?;
    kill_point("model-written");

    let optimizer_path = staging.path().join(OPTIMIZER);
    let bytes = encode_optimizer(optimizer).map_err(|e| corrupt(&optimizer_path, e))?;
    std::fs::write(&optimizer_path, bytes).map_err(|e| {
        RunError::from(electra_fs::FsError::new(&optimizer_path, e).needing(needed))
    })?;
    kill_point("optimizer-written");

    let state_path = staging.path().join(STATE);
    let text = serde_json::to_string_pretty(state).map_err(|e| corrupt(&state_path, e))?;
    std::fs::write(&state_path, text).map_err(io(&state_path))?;
    kill_point("state-written");

    staging.commit(&dir).map_err(|e| e.needing(needed))?;
    kill_point("renamed");

    let all = list_checkpoints(run_dir)?;
    let excess = all.len().saturating_sub(keep.max(1));
    for (_, old) in &all[..excess] {
        std::fs::remove_dir_all(old).map_err(io(old))?;
    }
    remove_leftovers(&root)?;
    Ok(dir)
}

/// Removes the hidden `.*.tmp` entries of `root` (the checkpoints folder): leftovers of
/// writes interrupted by a crash. Called after a save, when no write is in progress.
fn remove_leftovers(root: &Path) -> Result<(), RunError> {
    for entry in std::fs::read_dir(root).map_err(io(root))? {
        let entry = entry.map_err(io(root))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') && name.ends_with(".tmp") {
            let path = entry.path();
            let removed = if path.is_dir() {
                std::fs::remove_dir_all(&path)
            } else {
                std::fs::remove_file(&path)
            };
            removed.map_err(io(&path))?;
        }
    }
    Ok(())
}

/// A checkpoint read back: the state JSON and the optimizer moments; the model tensors are
/// applied to a model by [`load_model`].
#[derive(Debug)]
pub struct Loaded {
    /// The checkpoint directory.
    pub dir: PathBuf,
    /// `state.json`.
    pub state: serde_json::Value,
    /// The Adam moments.
    pub optimizer: OptimizerState,
}

/// Reads `state.json` and the optimizer moments of the checkpoint in `dir`.
pub fn load(dir: &Path) -> Result<Loaded, RunError> {
    let state_path = dir.join(STATE);
    let text = std::fs::read_to_string(&state_path).map_err(io(&state_path))?;
    let state = serde_json::from_str(&text).map_err(|e| corrupt(&state_path, e))?;
    let optimizer_path = dir.join(OPTIMIZER);
    let bytes = std::fs::read(&optimizer_path).map_err(io(&optimizer_path))?;
    let optimizer = decode_optimizer(&bytes).map_err(|e| corrupt(&optimizer_path, e))?;
    Ok(Loaded {
        dir: dir.to_path_buf(),
        state,
        optimizer,
    })
}

/// Loads the checkpoint's parameters into `model`; every tensor must be present and of the
/// right shape.
pub fn load_model<B: Backend, M: ModuleSnapshot<B>>(
    dir: &Path,
    model: &mut M,
) -> Result<(), RunError> {
    let path = dir.join(MODEL);
    let mut store = SafetensorsStore::from_file(&path).allow_partial(true);
    let result = model.load_from(&mut store).map_err(|e| corrupt(&path, e))?;
    let mut problems: Vec<String> = result
        .missing
        .iter()
        .map(|(p, _)| format!("missing `{p}`"))
        .collect();
    problems.extend(result.unused.iter().map(|p| format!("unexpected `{p}`")));
    problems.extend(result.errors.iter().map(|e| e.to_string()));
    if problems.is_empty() {
        Ok(())
    } else {
        Err(corrupt(
            &path,
            format!("does not fit the model:\n{}", problems.join("\n")),
        ))
    }
}

fn encode_optimizer(state: &OptimizerState) -> Result<Vec<u8>, String> {
    let mut named: Vec<(String, Vec<usize>, Vec<u8>)> = Vec::new();
    for (path, (m, v)) in state {
        for (prefix, data) in [("m", m), ("v", v)] {
            if data.dtype != DType::F32 {
                return Err(format!(
                    "{prefix}.{path}: expected f32, found {:?}",
                    data.dtype
                ));
            }
            named.push((
                format!("{prefix}.{path}"),
                data.shape.to_vec(),
                data.as_bytes().to_vec(),
            ));
        }
    }
    let views = named
        .iter()
        .map(|(name, shape, bytes)| {
            TensorView::new(Dtype::F32, shape.clone(), bytes).map(|v| (name.clone(), v))
        })
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| e.to_string())?;
    safetensors::serialize(views, None).map_err(|e| e.to_string())
}

fn decode_optimizer(bytes: &[u8]) -> Result<OptimizerState, String> {
    let file = safetensors::SafeTensors::deserialize(bytes).map_err(|e| e.to_string())?;
    let mut m = BTreeMap::new();
    let mut v = BTreeMap::new();
    for (name, view) in file.tensors() {
        if view.dtype() != Dtype::F32 {
            return Err(format!("{name}: expected F32, found {:?}", view.dtype()));
        }
        let data =
            TensorData::from_bytes_vec(view.data().to_vec(), view.shape().to_vec(), DType::F32);
        match name.split_once('.') {
            Some(("m", path)) => m.insert(path.to_string(), data),
            Some(("v", path)) => v.insert(path.to_string(), data),
            _ => {
                return Err(format!(
                    "unexpected tensor `{name}` (expected m.<path> or v.<path>)"
                ));
            }
        };
    }
    let mut state = BTreeMap::new();
    for (path, m_data) in m {
        let v_data = v
            .remove(&path)
            .ok_or_else(|| format!("`m.{path}` has no matching `v.{path}`"))?;
        state.insert(path, (m_data, v_data));
    }
    if let Some(path) = v.keys().next() {
        return Err(format!("`v.{path}` has no matching `m.{path}`"));
    }
    Ok(state)
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::backend::Flex;
    use burn::nn::{Linear, LinearConfig};

    #[test]
    fn save_load_round_trip_keeps_the_newest() {
        let device = Default::default();
        let dir = tempfile::tempdir().expect("tempdir");
        let model: Linear<Flex> = LinearConfig::new(3, 2).init(&device);
        let mut opt = OptimizerState::new();
        opt.insert(
            "weight".to_string(),
            (
                TensorData::new(vec![1.0f32, 2.0, 3.0], [3]),
                TensorData::new(vec![4.0f32, 5.0, 6.0], [3]),
            ),
        );
        let state = serde_json::json!({"step": 1});
        for step in [10, 20, 30] {
            save::<Flex, _>(dir.path(), step, &model, &opt, &state, 2).expect("save");
        }
        let steps: Vec<u64> = list_checkpoints(dir.path())
            .expect("list")
            .into_iter()
            .map(|(s, _)| s)
            .collect();
        assert_eq!(steps, [20, 30]);
        let loaded = load(&dir.path().join("checkpoints/step-00000030")).expect("load");
        assert_eq!(loaded.state, state);
        assert_eq!(loaded.optimizer, opt);
        let mut other: Linear<Flex> = LinearConfig::new(3, 2).init(&device);
        load_model(&loaded.dir, &mut other).expect("model");
        assert_eq!(
            other.weight.val().into_data(),
            model.weight.val().into_data()
        );
    }

    #[test]
    fn a_checkpoint_of_another_model_is_rejected_with_names() {
        let device = Default::default();
        let dir = tempfile::tempdir().expect("tempdir");
        let model: Linear<Flex> = LinearConfig::new(3, 2).init(&device);
        let state = serde_json::json!({});
        let ckpt = save::<Flex, _>(dir.path(), 1, &model, &OptimizerState::new(), &state, 1)
            .expect("save");
        let mut other: Linear<Flex> = LinearConfig::new(4, 2).init(&device);
        let err = load_model(&ckpt, &mut other).expect_err("shape");
        assert!(err.to_string().contains("weight"), "{err}");
    }

    #[test]
    fn a_corrupt_optimizer_file_names_the_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join(STATE), "{}").expect("state");
        std::fs::write(dir.path().join(OPTIMIZER), b"garbage").expect("opt");
        let err = load(dir.path()).expect_err("corrupt");
        assert!(err.to_string().contains("optimizer.safetensors"), "{err}");
    }

    #[test]
    fn an_interrupted_write_is_not_listed() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir_all(dir.path().join("checkpoints/.step-00000005.tmp")).expect("tmp");
        std::fs::create_dir_all(dir.path().join("checkpoints/step-00000007")).expect("no state");
        assert!(list_checkpoints(dir.path()).expect("list").is_empty());
    }

    #[test]
    fn a_save_removes_the_leftovers_of_interrupted_writes() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().join("checkpoints");
        std::fs::create_dir_all(root.join(".step-00000005.tmp")).expect("tmp");
        std::fs::write(root.join(".step-00000005.tmp/model.safetensors"), b"half").expect("f");
        std::fs::create_dir_all(root.join(".step-00000003.old.tmp")).expect("old");
        let model: Linear<Flex> = LinearConfig::new(3, 2).init(&Default::default());
        let state = serde_json::json!({});
        save::<Flex, _>(dir.path(), 4, &model, &OptimizerState::new(), &state, 2).expect("save");
        let mut names: Vec<String> = std::fs::read_dir(&root)
            .expect("read")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(names, ["step-00000004"]);
    }
}
