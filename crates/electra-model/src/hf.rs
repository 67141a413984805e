//! Hugging Face checkpoints: a directory with `config.json` and `model.safetensors` (or
//! `pytorch_model.bin`), for `ElectraForPreTraining` (discriminator) and `ElectraForMaskedLM`
//! (generator).
//!
//! Our module tree follows HF's closely; where names differ, [`HF_NAME_MAP`] is the whole
//! translation (spec 8.2-8.4). burn-store's `PyTorchToBurnAdapter` transposes every `Linear`
//! weight (PyTorch `[out, in]`, burn `[in, out]`) and renames LayerNorm `weight`/`bias` to
//! `gamma`/`beta`. A load that leaves any tensor missing, unexpected or mis-shaped fails with one
//! error listing all of them.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use burn::prelude::*;
use burn_store::{
    ApplyError, ApplyResult, BurnToPyTorchAdapter, ModuleSnapshot, ModuleStore,
    PyTorchToBurnAdapter, PytorchStore, SafetensorsStore,
};

use crate::config::{ElectraConfig, HfConfig};
use crate::electra::{ElectraForMaskedLM, ElectraForPreTraining};
use crate::error::ModelError;

/// HF parameter-name prefix → our module path prefix; `{i}` is a layer index. Names not listed
/// (e.g. `electra.embeddings.word_embeddings.weight`, `discriminator_predictions.dense.bias`)
/// are the same on both sides.
pub const HF_NAME_MAP: &[(&str, &str)] = &[
    (
        "electra.embeddings.LayerNorm.",
        "electra.embeddings.layer_norm.",
    ),
    (
        "electra.embeddings_project.",
        "electra.encoder.embeddings_project.",
    ),
    (
        "electra.encoder.layer.{i}.attention.self.query.",
        "electra.encoder.layers.{i}.attention.query.",
    ),
    (
        "electra.encoder.layer.{i}.attention.self.key.",
        "electra.encoder.layers.{i}.attention.key.",
    ),
    (
        "electra.encoder.layer.{i}.attention.self.value.",
        "electra.encoder.layers.{i}.attention.value.",
    ),
    (
        "electra.encoder.layer.{i}.attention.output.dense.",
        "electra.encoder.layers.{i}.attention.output.",
    ),
    (
        "electra.encoder.layer.{i}.attention.output.LayerNorm.",
        "electra.encoder.layers.{i}.attention_layer_norm.",
    ),
    (
        "electra.encoder.layer.{i}.intermediate.dense.",
        "electra.encoder.layers.{i}.intermediate.",
    ),
    (
        "electra.encoder.layer.{i}.output.dense.",
        "electra.encoder.layers.{i}.output.",
    ),
    (
        "electra.encoder.layer.{i}.output.LayerNorm.",
        "electra.encoder.layers.{i}.output_layer_norm.",
    ),
    (
        "generator_predictions.LayerNorm.",
        "generator_predictions.layer_norm.",
    ),
    (
        "generator_lm_head.bias",
        "generator_predictions.output_bias",
    ),
];

/// HF tensors that are not parameters of ours and are ignored on import: the position-id
/// buffer of older files, and the generator's output weight, which is tied to the word
/// embeddings (it is checked to be equal to them instead).
pub const IGNORED_HF_TENSORS: &[&str] = &["electra.embeddings.position_ids", TIED_LM_WEIGHT];

const TIED_LM_WEIGHT: &str = "generator_lm_head.weight";
const WORD_EMBEDDINGS: &str = "electra.embeddings.word_embeddings.weight";

/// The HF architectures we read and write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Architecture {
    /// `ElectraForPreTraining`: the discriminator with its replaced-token head.
    PreTraining,
    /// `ElectraForMaskedLM`: the generator with its tied MLM head.
    MaskedLm,
}

impl Architecture {
    /// HF's class name.
    pub fn hf_name(self) -> &'static str {
        match self {
            Self::PreTraining => "ElectraForPreTraining",
            Self::MaskedLm => "ElectraForMaskedLM",
        }
    }

    fn from_hf_name(name: &str) -> Option<Self> {
        [Self::PreTraining, Self::MaskedLm]
            .into_iter()
            .find(|a| a.hf_name() == name)
    }
}

/// Rewrites `path` if it starts with template `from` (where `{i}` matches a run of digits),
/// replacing that prefix with template `to`.
fn rewrite_prefix(path: &str, from: &str, to: &str) -> Option<String> {
    match from.split_once("{i}") {
        None => path.strip_prefix(from).map(|rest| format!("{to}{rest}")),
        Some((head, tail)) => {
            let after_head = path.strip_prefix(head)?;
            let digits = after_head.len()
                - after_head
                    .trim_start_matches(|c: char| c.is_ascii_digit())
                    .len();
            if digits == 0 {
                return None;
            }
            let (index, rest) = after_head.split_at(digits);
            let rest = rest.strip_prefix(tail)?;
            Some(format!("{}{rest}", to.replace("{i}", index)))
        }
    }
}

/// Our module path for an HF tensor name (LayerNorm `weight`/`bias` are left as they are; the
/// adapter renames them).
pub fn hf_to_module_path(hf_name: &str) -> String {
    HF_NAME_MAP
        .iter()
        .find_map(|(hf, ours)| rewrite_prefix(hf_name, hf, ours))
        .unwrap_or_else(|| hf_name.to_string())
}

/// The HF tensor name for one of our module paths (the inverse of [`hf_to_module_path`], with
/// LayerNorm `gamma`/`beta` turned back into `weight`/`bias`).
pub fn module_path_to_hf(path: &str) -> String {
    let path = if path.contains("layer_norm.") {
        path.replace("layer_norm.gamma", "layer_norm.weight")
            .replace("layer_norm.beta", "layer_norm.bias")
    } else {
        path.to_string()
    };
    HF_NAME_MAP
        .iter()
        .find_map(|(hf, ours)| rewrite_prefix(&path, ours, hf))
        .unwrap_or(path)
}

/// The regular expression and replacement burn-store uses for one table row.
fn remap_regex(from: &str, to: &str) -> (String, String) {
    let pattern = format!("^{}", from.replace('.', r"\.").replace("{i}", r"(\d+)"));
    (pattern, to.replace("{i}", "${1}"))
}

/// The weights file of an HF checkpoint directory: `model.safetensors`, else
/// `pytorch_model.bin`.
pub fn weights_file(dir: &Path) -> Result<PathBuf, ModelError> {
    const NAMES: [&str; 2] = ["model.safetensors", "pytorch_model.bin"];
    NAMES
        .iter()
        .map(|name| dir.join(name))
        .find(|p| p.is_file())
        .ok_or_else(|| ModelError::NoWeights {
            dir: dir.to_path_buf(),
            looked_for: NAMES.join(", "),
        })
}

/// Reads `dir/config.json`.
pub fn read_config(dir: &Path) -> Result<HfConfig, ModelError> {
    ElectraConfig::from_hf_json(&dir.join("config.json"))
}

/// The architecture named in `config.json`'s `architectures` (the first we support).
pub fn architecture(config: &HfConfig, dir: &Path) -> Result<Architecture, ModelError> {
    config
        .architectures
        .iter()
        .find_map(|name| Architecture::from_hf_name(name))
        .ok_or_else(|| ModelError::Config {
            path: dir.join("config.json"),
            message: format!(
                "key `architectures`: expected \"ElectraForPreTraining\" or \
                 \"ElectraForMaskedLM\", found {:?}",
                config.architectures
            ),
        })
}

/// A model read from an HF checkpoint, of whichever architecture its config names.
#[derive(Debug)]
pub enum HfModel<B: Backend> {
    /// A discriminator.
    PreTraining(ElectraForPreTraining<B>),
    /// A generator.
    MaskedLm(ElectraForMaskedLM<B>),
}

/// Loads the checkpoint in `dir` as the architecture its `config.json` names.
pub fn load<B: Backend>(
    dir: &Path,
    device: &B::Device,
) -> Result<(HfModel<B>, HfConfig), ModelError> {
    let config = read_config(dir)?;
    let model = match architecture(&config, dir)? {
        Architecture::PreTraining => HfModel::PreTraining(load_pretraining(dir, device)?.0),
        Architecture::MaskedLm => HfModel::MaskedLm(load_masked_lm(dir, device)?.0),
    };
    Ok((model, config))
}

/// Loads an `ElectraForPreTraining` checkpoint directory.
pub fn load_pretraining<B: Backend>(
    dir: &Path,
    device: &B::Device,
) -> Result<(ElectraForPreTraining<B>, HfConfig), ModelError> {
    let config = read_config(dir)?;
    config.model.check_weights_fit(&B::name(device))?;
    let mut model = ElectraForPreTraining::new(&config.model, device);
    apply_weights(&mut model, &weights_file(dir)?, Architecture::PreTraining)?;
    Ok((model, config))
}

/// Loads an `ElectraForMaskedLM` checkpoint directory.
pub fn load_masked_lm<B: Backend>(
    dir: &Path,
    device: &B::Device,
) -> Result<(ElectraForMaskedLM<B>, HfConfig), ModelError> {
    let config = read_config(dir)?;
    config.model.check_weights_fit(&B::name(device))?;
    let mut model = ElectraForMaskedLM::new(&config.model, device);
    apply_weights(&mut model, &weights_file(dir)?, Architecture::MaskedLm)?;
    Ok((model, config))
}

/// Writes `model` (an `ElectraForPreTraining` or `ElectraForMaskedLM`) as an HF checkpoint:
/// `dir/config.json` and `dir/model.safetensors` (without the tied output weight, as HF's own
/// safetensors files do). Both files are written to a temporary name and renamed into place.
pub fn save<B: Backend, M: ModuleSnapshot<B>>(
    model: &M,
    config: &ElectraConfig,
    architecture: Architecture,
    dir: &Path,
) -> Result<(), ModelError> {
    save_config(
        model,
        &HfConfig::new(config.clone(), architecture.hf_name()),
        dir,
    )
}

/// Writes `model` under HF tensor names with `config` as `config.json` (its `architectures`
/// names the class, e.g. a task model's `ElectraForQuestionAnswering`, whose head tensors
/// pass through the name map unchanged); written as [`save`] writes.
pub fn save_config<B: Backend, M: ModuleSnapshot<B>>(
    model: &M,
    config: &HfConfig,
    dir: &Path,
) -> Result<(), ModelError> {
    std::fs::create_dir_all(dir).map_err(|source| ModelError::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    let weights = dir.join("model.safetensors");
    electra_fs::write_atomic_with(&weights, |tmp| {
        let mut store = SafetensorsStore::from_file(tmp)
            .with_to_adapter(BurnToPyTorchAdapter)
            .metadata("format", "pt");
        for (hf, ours) in HF_NAME_MAP {
            let (pattern, replacement) = remap_regex(ours, hf);
            store = store.with_key_remapping(&pattern, &replacement);
        }
        model
            .save_into(&mut store)
            .map_err(|e| match into_io_error(e) {
                // A full disk names the free space and the weights' size.
                Ok(source) => electra_fs::FsError::new(&weights, source)
                    .needing((model.num_params() as u64).saturating_mul(4))
                    .into(),
                Err(e) => ModelError::Weights {
                    path: weights.clone(),
                    message: e.to_string(),
                },
            })
    })?;
    electra_fs::write_atomic(&dir.join("config.json"), config.to_json().as_bytes())?;
    Ok(())
}

/// The I/O error inside a burn-store safetensors error (a full disk, a failed read), or the
/// error back. burn-store's error does not expose its cause through `Error::source`.
pub fn into_io_error(
    e: burn_store::SafetensorsStoreError,
) -> Result<std::io::Error, burn_store::SafetensorsStoreError> {
    use burn_store::SafetensorsStoreError as E;
    match e {
        E::Io(source) | E::Safetensors(safetensors::SafeTensorError::IoError(source)) => Ok(source),
        other => Err(other),
    }
}

/// Loads the tensors of `weights` into `model`, failing with every problem listed.
pub fn apply_weights<B: Backend, M: ModuleSnapshot<B>>(
    model: &mut M,
    weights: &Path,
    architecture: Architecture,
) -> Result<(), ModelError> {
    apply_weights_as(model, weights, architecture.hf_name())
}

/// [`apply_weights`] for any model whose parameters follow HF's names through the name map
/// (a task model such as `ElectraForQuestionAnswering`); `class` names it in errors.
pub fn apply_weights_as<B: Backend, M: ModuleSnapshot<B>>(
    model: &mut M,
    weights: &Path,
    class: &str,
) -> Result<(), ModelError> {
    let is_safetensors = weights.extension().is_some_and(|e| e == "safetensors");
    let mut problems = if is_safetensors {
        let mut store = SafetensorsStore::from_file(weights)
            .with_from_adapter(PyTorchToBurnAdapter)
            .allow_partial(true)
            .validate(false);
        for (hf, ours) in HF_NAME_MAP {
            let (pattern, replacement) = remap_regex(hf, ours);
            store = store.with_key_remapping(&pattern, &replacement);
        }
        apply_store(model, &mut store, weights)?
    } else {
        // PytorchStore always applies `PyTorchToBurnAdapter`.
        let mut store = PytorchStore::from_file(weights)
            .map_indices_contiguous(false)
            .allow_partial(true)
            .validate(false);
        for (hf, ours) in HF_NAME_MAP {
            let (pattern, replacement) = remap_regex(hf, ours);
            store = store.with_key_remapping(&pattern, &replacement);
        }
        apply_store(model, &mut store, weights)?
    };
    problems.sort();
    if problems.is_empty() {
        Ok(())
    } else {
        Err(ModelError::Mismatch {
            path: weights.to_path_buf(),
            architecture: class.to_string(),
            problems,
        })
    }
}

/// Applies one store and lists what did not fit, in HF names.
fn apply_store<B: Backend, M: ModuleSnapshot<B>, S: ModuleStore>(
    model: &mut M,
    store: &mut S,
    weights: &Path,
) -> Result<Vec<String>, ModelError> {
    let read_error = |e: S::Error| ModelError::Weights {
        path: weights.to_path_buf(),
        message: e.to_string(),
    };
    let result: ApplyResult = model.load_from(store).map_err(read_error)?;
    let mut problems = Vec::new();
    for (path, _) in &result.missing {
        problems.push(format!(
            "missing tensor `{}` (model path `{path}`)",
            module_path_to_hf(path)
        ));
    }
    let applied: BTreeSet<&str> = result.applied.iter().map(String::as_str).collect();
    for path in &result.unused {
        // The adapter matches LayerNorm `weight`/`bias` as `gamma`/`beta`; burn-store still
        // reports the original names as unused.
        let alias = path
            .strip_suffix(".weight")
            .map(|p| format!("{p}.gamma"))
            .or_else(|| path.strip_suffix(".bias").map(|p| format!("{p}.beta")));
        if alias.is_some_and(|a| applied.contains(a.as_str())) {
            continue;
        }
        let hf_name = module_path_to_hf(path);
        if IGNORED_HF_TENSORS.contains(&hf_name.as_str()) {
            continue;
        }
        problems.push(format!("unexpected tensor `{hf_name}`"));
    }
    for error in &result.errors {
        problems.push(match error {
            ApplyError::ShapeMismatch {
                path,
                expected,
                found,
            } => format!(
                "wrong shape for `{}`: the model expects {:?}, the file has {:?} (burn layout)",
                module_path_to_hf(path),
                expected.as_slice(),
                found.as_slice()
            ),
            other => other.to_string(),
        });
    }
    // A tied output weight that differs from the embeddings would be silently dropped.
    if let Some(tied) = store.get_snapshot(TIED_LM_WEIGHT).map_err(read_error)? {
        let tied = tied.to_data().map_err(|e| ModelError::Weights {
            path: weights.to_path_buf(),
            message: format!("{TIED_LM_WEIGHT}: {e:?}"),
        })?;
        let embeddings = store
            .get_snapshot(WORD_EMBEDDINGS)
            .map_err(read_error)?
            .map(|s| s.to_data());
        let equal = matches!(embeddings, Some(Ok(ref e)) if e.as_bytes() == tied.as_bytes());
        if !equal {
            problems.push(format!(
                "`{TIED_LM_WEIGHT}` differs from `{WORD_EMBEDDINGS}`: the generator's output layer \
                 must be tied to the word embeddings"
            ));
        }
    }
    Ok(problems)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn name_map_round_trips_every_hf_name_of_a_layer() {
        let names = [
            "electra.embeddings.word_embeddings.weight",
            "electra.embeddings.LayerNorm.weight",
            "electra.embeddings_project.bias",
            "electra.encoder.layer.11.attention.self.query.weight",
            "electra.encoder.layer.0.attention.self.key.bias",
            "electra.encoder.layer.3.attention.self.value.weight",
            "electra.encoder.layer.3.attention.output.dense.weight",
            "electra.encoder.layer.3.attention.output.LayerNorm.bias",
            "electra.encoder.layer.3.intermediate.dense.weight",
            "electra.encoder.layer.3.output.dense.weight",
            "electra.encoder.layer.3.output.LayerNorm.weight",
            "discriminator_predictions.dense_prediction.weight",
            "generator_predictions.LayerNorm.bias",
            "generator_lm_head.bias",
        ];
        for name in names {
            let ours = hf_to_module_path(name);
            let ours = ours
                .replace("layer_norm.weight", "layer_norm.gamma")
                .replace("layer_norm.bias", "layer_norm.beta");
            assert_eq!(module_path_to_hf(&ours), name, "via {ours}");
        }
        assert_eq!(
            hf_to_module_path("electra.encoder.layer.11.attention.output.LayerNorm.weight"),
            "electra.encoder.layers.11.attention_layer_norm.weight"
        );
        assert_eq!(
            hf_to_module_path("generator_lm_head.bias"),
            "generator_predictions.output_bias"
        );
    }

    #[test]
    fn remap_regex_escapes_dots_and_captures_the_index() {
        let (p, r) = remap_regex(
            "electra.encoder.layer.{i}.output.dense.",
            "electra.encoder.layers.{i}.output.",
        );
        assert_eq!(p, r"^electra\.encoder\.layer\.(\d+)\.output\.dense\.");
        assert_eq!(r, "electra.encoder.layers.${1}.output.");
    }

    #[test]
    fn missing_weights_file_names_what_was_looked_for() {
        let dir = std::env::temp_dir();
        let err = weights_file(&dir.join("no-such-checkpoint")).expect_err("missing");
        assert!(err.to_string().contains("model.safetensors"), "{err}");
    }
}
