//! The oracle's files: the HF parity fixtures (`electra-model/tests/fixtures/hf-tiny`) and the
//! PyTorch loss fixture (`electra-objective/tests/fixtures/objective-tiny`), both made by
//! `scripts/make_hf_fixtures.py` with HF `transformers` on the CPU.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use electra_model::InputBatch;
use electra_objective::{HostBatch, MaskedBatch};
use serde_json::Value;

/// The fixtures in the source tree this binary was built from.
pub fn default_hf_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../electra-model/tests/fixtures/hf-tiny")
}

/// The PyTorch loss fixture in the source tree this binary was built from.
pub fn default_objective_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../electra-objective/tests/fixtures/objective-tiny")
}

/// Reads a JSON file, naming it in errors.
pub fn read_json(path: &Path) -> anyhow::Result<Value> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read fixture {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("{}: not valid JSON", path.display()))
}

/// A nested JSON array of numbers, flattened in row-major order.
pub fn flatten(value: &Value, what: &str) -> anyhow::Result<Vec<f64>> {
    fn walk(v: &Value, out: &mut Vec<f64>) -> bool {
        match v {
            Value::Array(items) => items.iter().all(|item| walk(item, out)),
            Value::Number(n) => n.as_f64().map(|x| out.push(x)).is_some(),
            _ => false,
        }
    }
    let mut out = Vec::new();
    if !walk(value, &mut out) || out.is_empty() {
        bail!("{what}: expected a non-empty nested array of numbers");
    }
    Ok(out)
}

/// `key` of `object` as a number.
pub fn number(object: &Value, key: &str, file: &Path) -> anyhow::Result<f64> {
    object[key]
        .as_f64()
        .with_context(|| format!("{}: `{key}` is missing or not a number", file.display()))
}

/// `inputs.json` of the HF fixtures: a padded batch with two segments.
pub fn hf_inputs(hf_dir: &Path) -> anyhow::Result<InputBatch> {
    let path = hf_dir.join("inputs.json");
    serde_json::from_value(read_json(&path)?).with_context(|| {
        format!(
            "{}: expected `input_ids`, `attention_mask`, `token_type_ids`",
            path.display()
        )
    })
}

/// The activations PyTorch recorded (`expected.json`), flattened, under the names
/// [`crate::measure`] gives its own: `discriminator.embedding_output`,
/// `discriminator.hidden_states` (all layers, `[L+1, b, s, H]`), `discriminator.logits`, and the
/// same for `generator`.
pub fn hf_expected(hf_dir: &Path) -> anyhow::Result<BTreeMap<String, Vec<f64>>> {
    let path = hf_dir.join("expected.json");
    let json = read_json(&path)?;
    let mut out = BTreeMap::new();
    for model in ["discriminator", "generator"] {
        for key in ["embedding_output", "hidden_states", "logits"] {
            let what = format!("{}: {model}.{key}", path.display());
            out.insert(format!("{model}.{key}"), flatten(&json[model][key], &what)?);
        }
    }
    Ok(out)
}

/// The PyTorch loss fixture: the batch, its fixed slots and replacements, the loss weights and
/// special ids, and the expected logits and losses.
#[derive(Debug)]
pub struct ObjectiveFixture {
    /// The HF fixture batch as a host batch.
    pub batch: HostBatch,
    /// The fixed masked input and slots.
    pub masked: MaskedBatch,
    /// The replacements written at the slots, `[b, N]`.
    pub sampled_ids: Vec<i64>,
    /// `gen_weight`, `disc_weight`.
    pub weights: (f64, f64),
    /// `pad`, `cls`, `sep`, `mask` token ids.
    pub special_ids: [i64; 4],
    /// `objective.generator_logits`, `objective.discriminator_logits`.
    pub logits: BTreeMap<String, Vec<f64>>,
    /// `objective.mlm_loss`, `objective.rtd_loss`, `objective.loss`.
    pub losses: BTreeMap<String, f64>,
}

fn ints(value: &Value, what: &str) -> anyhow::Result<Vec<i64>> {
    flatten(value, what)?
        .into_iter()
        .map(|x| {
            if x.fract() == 0.0 {
                Ok(x as i64)
            } else {
                bail!("{what}: {x} is not an integer")
            }
        })
        .collect()
}

impl ObjectiveFixture {
    /// Reads `objective_dir/expected.json` and the batch from `hf_dir/inputs.json`.
    pub fn read(hf_dir: &Path, objective_dir: &Path) -> anyhow::Result<Self> {
        let inputs = hf_inputs(hf_dir)?;
        let (Some(types), Some(mask)) = (&inputs.token_type_ids, &inputs.attention_mask) else {
            bail!(
                "{}: the fixture batch needs token_type_ids and attention_mask",
                hf_dir.join("inputs.json").display()
            );
        };
        let batch = HostBatch::from_rows(&inputs.input_ids, types, mask)?;
        let path = objective_dir.join("expected.json");
        let json = read_json(&path)?;
        let field = |key: &str| format!("{}: `{key}`", path.display());
        let positions = ints(&json["positions"], &field("positions"))?;
        let slots = positions.len() / batch.batch.max(1);
        let masked = MaskedBatch {
            masked_input_ids: ints(&json["masked_input_ids"], &field("masked_input_ids"))?,
            positions,
            targets: ints(&json["targets"], &field("targets"))?,
            weights: flatten(&json["weights"], &field("weights"))?
                .into_iter()
                .map(|w| w as f32)
                .collect(),
            slots,
        };
        let id = |key: &str| number(&json, key, &path).map(|x| x as i64);
        let mut logits = BTreeMap::new();
        for key in ["generator_logits", "discriminator_logits"] {
            logits.insert(
                format!("objective.{key}"),
                flatten(&json[key], &field(key))?,
            );
        }
        let mut losses = BTreeMap::new();
        for (ours, theirs) in [
            ("mlm_loss", "mlm_loss"),
            ("rtd_loss", "rtd_loss"),
            ("loss", "total_loss"),
        ] {
            losses.insert(format!("objective.{ours}"), number(&json, theirs, &path)?);
        }
        Ok(Self {
            batch,
            masked,
            sampled_ids: ints(&json["sampled_ids"], &field("sampled_ids"))?,
            weights: (
                number(&json, "gen_weight", &path)?,
                number(&json, "disc_weight", &path)?,
            ),
            special_ids: [
                id("pad_token_id")?,
                id("cls_token_id")?,
                id("sep_token_id")?,
                id("mask_token_id")?,
            ],
            logits,
            losses,
        })
    }
}
