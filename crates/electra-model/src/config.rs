//! `ElectraConfig`: the size and regularisation of one encoder tower.
//!
//! The field names are those of Hugging Face's `config.json` (`ElectraConfig` in
//! `configuration_electra.py`), so a checkpoint's config is read and written directly. The
//! defaults are HF's, which are the paper's ELECTRA-Small discriminator (spec 2.8).

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::ModelError;

/// The activation used inside the feed-forward block and the discriminator head (HF `hidden_act`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Activation {
    /// Exact GELU, `0.5·x·(1 + erf(x/√2))` (paper default; HF `"gelu"`).
    #[default]
    Gelu,
    /// The tanh approximation of GELU (HF `"gelu_new"`).
    GeluNew,
    /// Rectified linear unit (HF `"relu"`).
    Relu,
}

/// Configuration of one ELECTRA encoder (the discriminator, or a generator derived from it).
///
/// Serialised with Hugging Face's `config.json` field names; unknown keys are rejected when a
/// config is read from our own TOML/JSON files (see [`ElectraConfig::from_hf_json`] for HF files,
/// which carry extra metadata).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ElectraConfig {
    /// Number of token ids (paper: 30522, the BERT uncased WordPiece vocabulary).
    pub vocab_size: usize,
    /// Width `E` of the token, position and token-type embeddings (Small 128, Base 768, Large
    /// 1024). When it differs from `hidden_size`, a linear `embeddings_project` maps `E -> H`.
    pub embedding_size: usize,
    /// Width `H` of the hidden states (Small 256, Base 768, Large 1024).
    pub hidden_size: usize,
    /// Number of transformer layers `L` (Small 12, Base 12, Large 24).
    pub num_hidden_layers: usize,
    /// Number of attention heads; `hidden_size` must be divisible by it (head size 64 in every
    /// paper size: Small 4, Base 12, Large 16).
    pub num_attention_heads: usize,
    /// Width of the feed-forward block, `4·H` in every paper size (Small 1024).
    pub intermediate_size: usize,
    /// Feed-forward and discriminator-head activation (paper: exact GELU).
    pub hidden_act: Activation,
    /// Dropout on embeddings and residual branches (paper 0.1).
    pub hidden_dropout_prob: f64,
    /// Dropout on attention probabilities (paper 0.1).
    pub attention_probs_dropout_prob: f64,
    /// Rows of the learned position-embedding table (paper 512).
    pub max_position_embeddings: usize,
    /// Number of segment (token type) ids (paper 2).
    pub type_vocab_size: usize,
    /// LayerNorm epsilon (paper/TF 1e-12).
    pub layer_norm_eps: f64,
    /// Standard deviation of the truncated-normal weight initialiser (paper 0.02).
    pub initializer_range: f64,
}

impl Default for ElectraConfig {
    /// The ELECTRA-Small discriminator, which is also HF's `ElectraConfig()` default.
    fn default() -> Self {
        Self::small()
    }
}

/// The names accepted by [`ElectraConfig::preset`].
pub const PRESETS: [&str; 4] = ["tiny", "small", "base", "large"];

impl ElectraConfig {
    /// ELECTRA-Small (paper Table 6 / spec 2.8): E 128, H 256, 12 layers, 4 heads, FFN 1024,
    /// 13.5M discriminator parameters.
    pub fn small() -> Self {
        Self {
            vocab_size: 30522,
            embedding_size: 128,
            hidden_size: 256,
            num_hidden_layers: 12,
            num_attention_heads: 4,
            intermediate_size: 1024,
            hidden_act: Activation::Gelu,
            hidden_dropout_prob: 0.1,
            attention_probs_dropout_prob: 0.1,
            max_position_embeddings: 512,
            type_vocab_size: 2,
            layer_norm_eps: 1e-12,
            initializer_range: 0.02,
        }
    }

    /// ELECTRA-Base: E = H = 768, 12 layers, 12 heads, FFN 3072 (110M parameters).
    pub fn base() -> Self {
        Self {
            embedding_size: 768,
            hidden_size: 768,
            num_attention_heads: 12,
            intermediate_size: 3072,
            ..Self::small()
        }
    }

    /// ELECTRA-Large: E = H = 1024, 24 layers, 16 heads, FFN 4096 (335M parameters).
    pub fn large() -> Self {
        Self {
            embedding_size: 1024,
            hidden_size: 1024,
            num_hidden_layers: 24,
            num_attention_heads: 16,
            intermediate_size: 4096,
            ..Self::small()
        }
    }

    /// Not a paper size: a 2-layer, 128-wide model with the full BERT vocabulary, for smoke
    /// tests, demos and benchmarks of the machinery rather than of the model.
    pub fn tiny() -> Self {
        Self {
            embedding_size: 64,
            hidden_size: 128,
            num_hidden_layers: 2,
            num_attention_heads: 2,
            intermediate_size: 512,
            max_position_embeddings: 512,
            ..Self::small()
        }
    }

    /// Not a preset: the unit tests' model (E = 16, H = 32, 2 layers of 2 heads, FFN 64, 32
    /// positions) over a vocabulary of `vocab_size`; everything else as ELECTRA-Small. Tests
    /// of every crate build their tiny models from it.
    pub fn micro(vocab_size: usize) -> Self {
        Self {
            vocab_size,
            embedding_size: 16,
            hidden_size: 32,
            num_hidden_layers: 2,
            num_attention_heads: 2,
            intermediate_size: 64,
            max_position_embeddings: 32,
            ..Self::small()
        }
    }

    /// A named preset: one of [`PRESETS`].
    pub fn preset(name: &str) -> Result<Self, ModelError> {
        match name {
            "tiny" => Ok(Self::tiny()),
            "small" => Ok(Self::small()),
            "base" => Ok(Self::base()),
            "large" => Ok(Self::large()),
            other => Err(ModelError::UnknownPreset {
                name: other.to_string(),
                known: PRESETS.join(", "),
            }),
        }
    }

    /// The generator configuration derived from this (discriminator) configuration, as the
    /// reference's `get_generator_config` does (spec 2.4):
    /// `H_g = round(H·hidden_multiplier)`, `L_g = round(L·layers_multiplier)`, `FFN_g = 4·H_g`,
    /// `heads_g = max(1, H_g / 64)`; everything else (embedding size, vocabulary, dropout,
    /// initialisation) is copied. Paper multipliers: Small 1/4, Base 1/3, Large 1/4, layers 1.0.
    pub fn generator_config(
        &self,
        hidden_multiplier: f64,
        layers_multiplier: f64,
    ) -> Result<Self, ModelError> {
        let hidden = (self.hidden_size as f64 * hidden_multiplier).round();
        let layers = (self.num_hidden_layers as f64 * layers_multiplier).round();
        if !(hidden >= 1.0 && layers >= 1.0) {
            return Err(ModelError::InvalidConfig(format!(
                "generator multipliers (hidden {hidden_multiplier}, layers {layers_multiplier}) \
                 give a generator with hidden_size {hidden} and {layers} layers; both must be >= 1"
            )));
        }
        let hidden = hidden as usize;
        let intermediate = hidden.checked_mul(4).ok_or_else(|| {
            ModelError::InvalidConfig(format!(
                "generator hidden multiplier {hidden_multiplier} gives a generator with \
                 hidden_size {hidden}, too large for its intermediate size 4·{hidden}"
            ))
        })?;
        let config = Self {
            hidden_size: hidden,
            num_hidden_layers: layers as usize,
            intermediate_size: intermediate,
            num_attention_heads: (hidden / 64).max(1),
            ..self.clone()
        };
        config.validate()?;
        Ok(config)
    }

    /// Size of one attention head, `hidden_size / num_attention_heads`.
    pub fn head_size(&self) -> usize {
        self.hidden_size / self.num_attention_heads
    }

    /// Checks that the sizes are usable; the error names the offending field.
    pub fn validate(&self) -> Result<(), ModelError> {
        let sizes = [
            ("vocab_size", self.vocab_size),
            ("embedding_size", self.embedding_size),
            ("hidden_size", self.hidden_size),
            ("num_hidden_layers", self.num_hidden_layers),
            ("num_attention_heads", self.num_attention_heads),
            ("intermediate_size", self.intermediate_size),
            ("max_position_embeddings", self.max_position_embeddings),
            ("type_vocab_size", self.type_vocab_size),
        ];
        for (name, value) in sizes {
            if value == 0 {
                return Err(ModelError::InvalidConfig(format!(
                    "{name} must be > 0, got 0"
                )));
            }
        }
        if !self.hidden_size.is_multiple_of(self.num_attention_heads) {
            return Err(ModelError::InvalidConfig(format!(
                "hidden_size ({}) must be divisible by num_attention_heads ({})",
                self.hidden_size, self.num_attention_heads
            )));
        }
        for (name, p) in [
            ("hidden_dropout_prob", self.hidden_dropout_prob),
            (
                "attention_probs_dropout_prob",
                self.attention_probs_dropout_prob,
            ),
        ] {
            if !(0.0..1.0).contains(&p) {
                return Err(ModelError::InvalidConfig(format!(
                    "{name} must be in [0, 1), got {p}"
                )));
            }
        }
        if !(self.layer_norm_eps > 0.0 && self.layer_norm_eps.is_finite()) {
            return Err(ModelError::InvalidConfig(format!(
                "layer_norm_eps must be a positive number, got {}",
                self.layer_norm_eps
            )));
        }
        if !(self.initializer_range > 0.0 && self.initializer_range.is_finite()) {
            return Err(ModelError::InvalidConfig(format!(
                "initializer_range must be a positive number, got {}",
                self.initializer_range
            )));
        }
        Ok(())
    }

    /// Reads a Hugging Face `config.json`.
    ///
    /// HF files carry metadata besides the model sizes (`architectures`, `model_type`,
    /// `transformers_version`, `summary_*`, ...): those are returned in [`HfConfig`], not
    /// rejected. Keys HF would fill with defaults may be absent; HF's defaults are ours.
    /// Settings we cannot honour (a `model_type` other than `electra`, relative position
    /// embeddings, an unknown activation) are errors naming the key.
    pub fn from_hf_json(path: &Path) -> Result<HfConfig, ModelError> {
        let text = std::fs::read_to_string(path).map_err(|source| ModelError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        HfConfig::parse(&text).map_err(|message| ModelError::Config {
            path: path.to_path_buf(),
            message,
        })
    }
}

/// The HF-only keys of a `config.json` that we understand; everything else is kept verbatim in
/// [`HfConfig::extra`] so that export can write it back.
const MODEL_KEYS: [&str; 13] = [
    "vocab_size",
    "embedding_size",
    "hidden_size",
    "num_hidden_layers",
    "num_attention_heads",
    "intermediate_size",
    "hidden_act",
    "hidden_dropout_prob",
    "attention_probs_dropout_prob",
    "max_position_embeddings",
    "type_vocab_size",
    "layer_norm_eps",
    "initializer_range",
];

/// A parsed Hugging Face `config.json`: the model sizes plus the metadata HF keeps beside them.
#[derive(Clone, Debug, PartialEq)]
pub struct HfConfig {
    /// The model sizes.
    pub model: ElectraConfig,
    /// `architectures`, e.g. `["ElectraForPreTraining"]` or `["ElectraForMaskedLM"]`.
    pub architectures: Vec<String>,
    /// Every other key of the file, unchanged (e.g. `pad_token_id`, `transformers_version`).
    pub extra: BTreeMap<String, Value>,
}

impl HfConfig {
    /// Parses the text of a `config.json`; the error message names the offending key.
    pub fn parse(text: &str) -> Result<Self, String> {
        let value: Value =
            serde_json::from_str(text).map_err(|e| format!("not valid JSON: {e}"))?;
        let Value::Object(map) = value else {
            return Err("expected a JSON object at the top level".to_string());
        };
        let mut model_map = serde_json::Map::new();
        let mut extra = BTreeMap::new();
        let mut architectures = Vec::new();
        for (key, value) in map {
            if MODEL_KEYS.contains(&key.as_str()) {
                model_map.insert(key, value);
            } else if key == "architectures" {
                architectures = serde_json::from_value(value)
                    .map_err(|e| format!("key `architectures`: expected a list of strings: {e}"))?;
            } else {
                extra.insert(key, value);
            }
        }
        if let Some(kind) = extra.get("model_type")
            && kind != "electra"
        {
            return Err(format!(
                "key `model_type`: expected \"electra\", found {kind}"
            ));
        }
        if let Some(kind) = extra.get("position_embedding_type")
            && kind != "absolute"
        {
            return Err(format!(
                "key `position_embedding_type`: only \"absolute\" is supported, found {kind}"
            ));
        }
        if let Some(act) = model_map.get_mut("hidden_act") {
            // HF spells the exact GELU "gelu"; "gelu_new" and "gelu_pytorch_tanh" are the tanh form.
            if act == "gelu_pytorch_tanh" {
                *act = Value::String("gelu_new".to_string());
            }
        }
        let model: ElectraConfig =
            serde_json::from_value(Value::Object(model_map)).map_err(|e| e.to_string())?;
        model.validate().map_err(|e| e.to_string())?;
        Ok(Self {
            model,
            architectures,
            extra,
        })
    }

    /// Builds the config HF would write for `model` with the given architecture.
    pub fn new(model: ElectraConfig, architecture: &str) -> Self {
        let mut extra = BTreeMap::new();
        extra.insert("model_type".to_string(), Value::from("electra"));
        extra.insert("pad_token_id".to_string(), Value::from(0));
        extra.insert(
            "position_embedding_type".to_string(),
            Value::from("absolute"),
        );
        Self {
            model,
            architectures: vec![architecture.to_string()],
            extra,
        }
    }

    /// The JSON text of this config, in HF's layout (sorted keys, two-space indent).
    pub fn to_json(&self) -> String {
        let mut map: BTreeMap<String, Value> = self.extra.clone();
        if let Ok(Value::Object(model)) = serde_json::to_value(&self.model) {
            map.extend(model);
        }
        map.insert(
            "architectures".to_string(),
            Value::from(self.architectures.clone()),
        );
        // Serialising a map of JSON values cannot fail.
        serde_json::to_string_pretty(&map).unwrap_or_default() + "\n"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn micro_is_the_unit_test_size_of_small() {
        let m = ElectraConfig::micro(60);
        assert_eq!(
            (
                m.vocab_size,
                m.embedding_size,
                m.hidden_size,
                m.num_hidden_layers
            ),
            (60, 16, 32, 2)
        );
        assert_eq!((m.num_attention_heads, m.intermediate_size), (2, 64));
        assert_eq!(m.max_position_embeddings, 32);
        assert_eq!(
            m.hidden_dropout_prob,
            ElectraConfig::small().hidden_dropout_prob
        );
        m.validate().expect("valid");
    }

    #[test]
    fn presets_match_the_paper() {
        let small = ElectraConfig::preset("small").expect("small");
        assert_eq!(
            (
                small.embedding_size,
                small.hidden_size,
                small.num_hidden_layers
            ),
            (128, 256, 12)
        );
        // Paper Table 6 / the reference's Small: 4 heads of 64 and FFN 1024 (not BERT-Small's
        // 4H = 1024 by accident of a multiplier: pinned here).
        assert_eq!(
            (small.num_attention_heads, small.intermediate_size),
            (4, 1024)
        );
        assert_eq!(small.head_size(), 64);
        let base = ElectraConfig::preset("base").expect("base");
        assert_eq!((base.hidden_size, base.num_attention_heads), (768, 12));
        let large = ElectraConfig::preset("large").expect("large");
        assert_eq!(
            (large.num_hidden_layers, large.intermediate_size),
            (24, 4096)
        );
        for name in PRESETS {
            let c = ElectraConfig::preset(name).expect("preset");
            c.validate().expect("valid");
            assert_eq!(c.head_size() % 32, 0, "{name}");
        }
        let err = ElectraConfig::preset("huge").expect_err("unknown");
        assert!(err.to_string().contains("small, base, large"), "{err}");
    }

    #[test]
    fn generator_config_follows_get_generator_config() {
        // Paper Table 6: Small 1/4 -> 64 / 256 / 1 head; Base 1/3 -> 256 / 1024 / 4 heads.
        let g = ElectraConfig::small()
            .generator_config(0.25, 1.0)
            .expect("gen");
        assert_eq!(
            (
                g.hidden_size,
                g.intermediate_size,
                g.num_attention_heads,
                g.num_hidden_layers
            ),
            (64, 256, 1, 12)
        );
        assert_eq!(g.embedding_size, 128);
        let g = ElectraConfig::base()
            .generator_config(0.33333, 1.0)
            .expect("gen");
        assert_eq!(
            (g.hidden_size, g.intermediate_size, g.num_attention_heads),
            (256, 1024, 4)
        );
        assert_eq!(g.embedding_size, 768);
        let g = ElectraConfig::large()
            .generator_config(0.25, 0.5)
            .expect("gen");
        assert_eq!((g.hidden_size, g.num_hidden_layers), (256, 12));
        assert!(ElectraConfig::small().generator_config(0.001, 1.0).is_err());
    }

    #[test]
    fn invalid_configs_name_the_field() {
        let mut c = ElectraConfig::small();
        c.num_attention_heads = 3;
        let msg = c.validate().expect_err("not divisible").to_string();
        assert!(msg.contains("divisible by num_attention_heads"), "{msg}");
        let mut c = ElectraConfig::small();
        c.intermediate_size = 0;
        let msg = c.validate().expect_err("zero").to_string();
        assert!(msg.contains("intermediate_size"), "{msg}");
        let mut c = ElectraConfig::small();
        c.hidden_dropout_prob = 1.5;
        assert!(c.validate().is_err());
    }

    #[test]
    fn own_config_rejects_unknown_keys() {
        let err = serde_json::from_str::<ElectraConfig>(r#"{"hidden_size": 64, "hiden": 3}"#)
            .expect_err("unknown key");
        assert!(err.to_string().contains("hiden"), "{err}");
    }

    #[test]
    fn hf_config_keeps_metadata_and_round_trips() {
        let text = r#"{
            "architectures": ["ElectraForMaskedLM"], "model_type": "electra",
            "embedding_size": 16, "hidden_size": 24, "num_attention_heads": 2,
            "num_hidden_layers": 2, "intermediate_size": 40, "vocab_size": 64,
            "hidden_act": "gelu", "transformers_version": "4.0", "summary_type": "first"
        }"#;
        let cfg = HfConfig::parse(text).expect("parse");
        assert_eq!(cfg.architectures, vec!["ElectraForMaskedLM".to_string()]);
        assert_eq!(cfg.model.hidden_size, 24);
        // Absent keys take HF's defaults.
        assert_eq!(cfg.model.max_position_embeddings, 512);
        assert_eq!(cfg.extra["summary_type"], "first");
        let again = HfConfig::parse(&cfg.to_json()).expect("reparse");
        assert_eq!(again, cfg);
    }

    #[test]
    fn hf_config_errors_name_the_key() {
        let err = HfConfig::parse(r#"{"model_type": "bert"}"#).expect_err("bert");
        assert!(err.contains("model_type"), "{err}");
        let err =
            HfConfig::parse(r#"{"position_embedding_type": "relative_key"}"#).expect_err("rel");
        assert!(err.contains("position_embedding_type"), "{err}");
        let err = HfConfig::parse(r#"{"hidden_act": "swish"}"#).expect_err("act");
        assert!(err.contains("swish"), "{err}");
        let err = HfConfig::parse(r#"{"hidden_size": 30}"#).expect_err("heads");
        assert!(err.contains("divisible"), "{err}");
    }
}
