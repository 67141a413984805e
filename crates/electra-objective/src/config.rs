//! `ObjectiveConfig`: which pre-training objective to run and its hyper-parameters.
//!
//! Every default is the paper's (Clark et al. 2020, Appendix A) or the reference code's
//! (`configure_pretraining.py`); the special token ids are those of the BERT uncased WordPiece
//! vocabulary the paper uses.

use electra_model::ElectraConfig;
use serde::{Deserialize, Serialize};

use crate::error::ObjectiveError;

/// The pre-training objective (paper §2 and the §3.5 efficiency baselines, spec 7.5).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ObjectiveKind {
    /// ELECTRA (paper §2): the generator learns MLM on the 85/15-masked input, its samples fill
    /// the masked positions, and the discriminator learns replaced token detection on every
    /// non-pad token. `loss = gen_weight·mlm_loss + disc_weight·rtd_loss`.
    #[default]
    Electra,
    /// BERT (paper's baseline): MLM on a discriminator-sized model, no generator.
    /// `loss = mlm_loss`. The masked positions follow [`ObjectiveConfig::mlm_masking`]: by
    /// default the reference's `mask()` (85 % `[MASK]`, 15 % unchanged), with which the paper's
    /// BERT baseline was trained (reference `electra_objective = False`); BERT's own 80/10/10
    /// is an option.
    Mlm,
    /// ELECTRA 15 % (§3.5): as [`Self::Electra`] but the discriminator loss only covers the
    /// masked positions. `loss = gen_weight·mlm_loss + disc_weight·rtd_loss`.
    #[serde(rename = "electra-15")]
    Electra15,
    /// Replace MLM (§3.5): the masked positions hold generator samples instead of `[MASK]`,
    /// and the discriminator-sized model predicts the original tokens there with an MLM head.
    /// `loss = gen_weight·mlm_loss + target_loss`.
    ReplaceMlm,
    /// All-Tokens MLM (§3.5): Replace MLM that predicts every non-pad token, through a copy
    /// mechanism: `p(x_t) = D_t·[x_t = input_t] + (1 − D_t)·softmax_MLM(x_t)` with a sigmoid copy
    /// gate `D_t`. `loss = gen_weight·mlm_loss + target_loss`.
    AllTokensMlm,
}

impl ObjectiveKind {
    /// Every objective, in the order of paper Table 5 (ELECTRA first).
    pub const ALL: [ObjectiveKind; 5] = [
        ObjectiveKind::Electra,
        ObjectiveKind::AllTokensMlm,
        ObjectiveKind::ReplaceMlm,
        ObjectiveKind::Electra15,
        ObjectiveKind::Mlm,
    ];

    /// The kebab-case name used in config files (`electra`, `mlm`, `electra-15`, ...).
    pub fn name(self) -> &'static str {
        match self {
            ObjectiveKind::Electra => "electra",
            ObjectiveKind::Mlm => "mlm",
            ObjectiveKind::Electra15 => "electra-15",
            ObjectiveKind::ReplaceMlm => "replace-mlm",
            ObjectiveKind::AllTokensMlm => "all-tokens-mlm",
        }
    }

    /// Whether the objective trains a generator whose samples corrupt the input.
    pub fn uses_generator(self) -> bool {
        !matches!(self, ObjectiveKind::Mlm)
    }
}

/// How the `mlm` baseline treats the positions it chose to mask (spec 1.2 step 6, 1.6).
///
/// The paper's BERT baselines (Tables 1, 5, 8) were trained with the reference code's own
/// `pretrain_helpers.mask()` and `electra_objective = False`, which replaces a chosen token by
/// `[MASK]` with probability 0.85 and leaves it unchanged otherwise: no random tokens. That is
/// the default here, so the equal-compute comparison against ELECTRA uses the baseline the paper
/// measured. BERT's original rule (Devlin et al. 2019: 80 % `[MASK]`, 10 % a random token, 10 %
/// unchanged) is kept as an option. Every other objective always masks with the reference rule.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum MlmMasking {
    /// The reference's `mask()`: 85 % `[MASK]`, 15 % unchanged (the paper's BERT baseline).
    #[default]
    Reference,
    /// BERT's 80/10/10: 80 % `[MASK]`, 10 % a token drawn uniformly from the whole vocabulary
    /// (as BERT's `create_pretraining_data.py` does), 10 % unchanged.
    Bert,
}

impl MlmMasking {
    /// The name used in config files (`reference`, `bert`).
    pub fn name(self) -> &'static str {
        match self {
            MlmMasking::Reference => "reference",
            MlmMasking::Bert => "bert",
        }
    }
}

/// How the generator and the discriminator share their embeddings (paper §3.2; DeBERTa-v3
/// §3.3). `docs/faithfulness.md` lists what each mode follows.
///
/// | mode | generator's block | discriminator's block | trained by |
/// |---|---|---|---|
/// | `tied` | `E` (width `E`) | the same `E` | MLM and RTD, summed |
/// | `untied` | its own, width `H_g`, no projection | its own, width `E` | MLM; RTD |
/// | `gdes` | `E_G` (width `E`) | `sg(E_G) + E_Δ` | `E_G`: MLM only; `E_Δ`: RTD only |
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum EmbeddingSharing {
    /// One embedding block (word, position and token-type tables and the embedding LayerNorm)
    /// read by both towers, updated by the sum of both losses' gradients: the paper's choice
    /// (§3.2, "tied embeddings", 84.3 GLUE) and the reference code's default.
    #[default]
    Tied,
    /// No sharing, as the reference builds it with `untied_generator_embeddings`: the
    /// generator has its own block at its own hidden width `H_g` (scope
    /// `generator/embeddings`), no `embeddings_project`, and its MLM head maps `H_g → H_g`
    /// and outputs through its own `[V, H_g]` table (paper §3.2, "no weight tying", 83.6).
    Untied,
    /// Gradient-disentangled embedding sharing (DeBERTa-v3, He et al. 2021, §3.3): the
    /// generator owns `E_G`; the discriminator's word, position and token-type tables are
    /// `sg(E_G) + E_Δ` with `E_Δ` zero at initialisation, and it has its own embedding
    /// LayerNorm (initialised as `E_G`'s). The MLM loss alone trains `E_G`; the RTD loss alone
    /// trains `E_Δ`. Export and fine-tuning fold `E_G + E_Δ` into one block.
    Gdes,
}

impl EmbeddingSharing {
    /// Every mode, the default first.
    pub const ALL: [EmbeddingSharing; 3] = [
        EmbeddingSharing::Tied,
        EmbeddingSharing::Untied,
        EmbeddingSharing::Gdes,
    ];

    /// The name used in config files (`tied`, `untied`, `gdes`).
    pub fn name(self) -> &'static str {
        match self {
            EmbeddingSharing::Tied => "tied",
            EmbeddingSharing::Untied => "untied",
            EmbeddingSharing::Gdes => "gdes",
        }
    }
}

/// Configuration of the pre-training objective.
///
/// Read from TOML/JSON: unknown keys are rejected and missing keys take the paper default.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ObjectiveConfig {
    /// Which objective to train (default `electra`).
    pub objective: ObjectiveKind,
    /// Masking rule of the `mlm` baseline: `"reference"` (default; 85 % `[MASK]`, 15 %
    /// unchanged, as the paper's BERT baseline was trained) or `"bert"` (80/10/10). Only `mlm`
    /// may set `"bert"`; every other objective masks with the reference rule.
    pub mlm_masking: MlmMasking,
    /// Fraction of non-pad tokens to mask (paper 0.15 for Small and Base, 0.25 for Large).
    pub mask_prob: f64,
    /// Weight of the generator's MLM loss (reference `gen_weight` 1.0).
    pub gen_weight: f64,
    /// Weight λ of the discriminator's RTD loss (paper λ = 50).
    pub disc_weight: f64,
    /// Sampling temperature for the generator's samples (reference 1.0).
    pub temperature: f64,
    /// Never sample the original token (reference `disallow_correct`, default false).
    pub disallow_correct: bool,
    /// Generator hidden size (and FFN size and heads) as a fraction of the discriminator's
    /// (paper Table 6: 1/4 for Small and Large, 1/3 for Base; default 0.25).
    pub generator_hidden_multiplier: f64,
    /// Generator depth as a fraction of the discriminator's (reference `generator_layers` 1.0).
    pub generator_layers_multiplier: f64,
    /// How the generator and the discriminator share their embeddings: `"tied"` (default;
    /// paper §3.2, spec 2.3), `"untied"` or `"gdes"` (see [`EmbeddingSharing`]). Objectives
    /// without a generator (`mlm`) are always `"tied"`.
    pub embedding_sharing: EmbeddingSharing,
    /// The key configs written before `embedding_sharing` existed: `true` reads as `"tied"`,
    /// `false` as `"untied"`. [`Self::resolve_legacy`] moves it into `embedding_sharing`; it is
    /// never written. The config reads, but the checkpoints of untied runs written before
    /// `embedding_sharing` existed (their generator had an `E`-wide block and a projection) do
    /// not load into today's untied generator (`H_g`-wide, no projection).
    #[serde(skip_serializing)]
    pub tie_embeddings: Option<bool>,
    /// Seed of every random draw of the objective (masking, sampling, dropout); a step's
    /// randomness is derived from `(seed, step)`.
    pub seed: u64,
    /// Id of `[PAD]` (BERT uncased: 0).
    pub pad_token_id: i64,
    /// Id of `[CLS]` (BERT uncased: 101).
    pub cls_token_id: i64,
    /// Id of `[SEP]` (BERT uncased: 102).
    pub sep_token_id: i64,
    /// Id of `[MASK]` (BERT uncased: 103).
    pub mask_token_id: i64,
}

impl Default for ObjectiveConfig {
    fn default() -> Self {
        Self {
            objective: ObjectiveKind::Electra,
            mlm_masking: MlmMasking::Reference,
            mask_prob: 0.15,
            gen_weight: 1.0,
            disc_weight: 50.0,
            temperature: 1.0,
            disallow_correct: false,
            generator_hidden_multiplier: 0.25,
            generator_layers_multiplier: 1.0,
            embedding_sharing: EmbeddingSharing::Tied,
            tie_embeddings: None,
            seed: 42,
            pad_token_id: 0,
            cls_token_id: 101,
            sep_token_id: 102,
            mask_token_id: 103,
        }
    }
}

impl ObjectiveConfig {
    /// Whether chosen positions use BERT's 80/10/10 rule (only `mlm` with
    /// `mlm_masking = "bert"`) rather than the reference's 85/15.
    pub fn bert_masking(&self) -> bool {
        self.objective == ObjectiveKind::Mlm && self.mlm_masking == MlmMasking::Bert
    }

    /// Moves the legacy `tie_embeddings` key into `embedding_sharing` (`true`: tied, `false`:
    /// untied); an error when the two disagree (`tie_embeddings = true` with another mode, or
    /// `false` with `gdes`).
    pub fn resolve_legacy(&mut self) -> Result<(), ObjectiveError> {
        let Some(tie) = self.tie_embeddings.take() else {
            return Ok(());
        };
        self.embedding_sharing = match (tie, self.embedding_sharing) {
            (true, EmbeddingSharing::Tied) => EmbeddingSharing::Tied,
            (false, EmbeddingSharing::Tied | EmbeddingSharing::Untied) => EmbeddingSharing::Untied,
            (_, other) => {
                return Err(ObjectiveError::InvalidConfig {
                    field: "tie_embeddings",
                    message: format!(
                        "is {tie} (a key of older configs), which disagrees with \
                         embedding_sharing = \"{}\"; remove tie_embeddings",
                        other.name()
                    ),
                });
            }
        };
        Ok(())
    }

    /// The generator's sizes for a discriminator of `model` sizes (spec 2.4): the widths
    /// and depth of [`ElectraConfig::generator_config`]; with untied embeddings its embedding
    /// width is its own hidden size, as the reference builds it (`embedding_size=None`).
    pub fn generator_config(&self, model: &ElectraConfig) -> Result<ElectraConfig, ObjectiveError> {
        let mut config = model.generator_config(
            self.generator_hidden_multiplier,
            self.generator_layers_multiplier,
        )?;
        if self.embedding_sharing == EmbeddingSharing::Untied {
            config.embedding_size = config.hidden_size;
        }
        Ok(config)
    }

    /// Checks every field against `vocab_size`; the error names the offending field.
    pub fn validate(&self, vocab_size: usize) -> Result<(), ObjectiveError> {
        let bad = |field: &'static str, message: String| {
            Err(ObjectiveError::InvalidConfig { field, message })
        };
        if self.tie_embeddings.is_some() {
            return bad(
                "tie_embeddings",
                "is a key of older configs; use embedding_sharing (or resolve_legacy)".into(),
            );
        }
        if self.embedding_sharing != EmbeddingSharing::Tied && !self.objective.uses_generator() {
            return bad(
                "embedding_sharing",
                format!(
                    "is \"{}\", but `{}` has no generator to share with; use \"tied\"",
                    self.embedding_sharing.name(),
                    self.objective.name()
                ),
            );
        }
        if self.mlm_masking == MlmMasking::Bert && self.objective != ObjectiveKind::Mlm {
            return bad(
                "mlm_masking",
                format!(
                    "is \"bert\", which only the `mlm` objective offers; `{}` always masks with \
                     the reference rule (85 % [MASK], 15 % unchanged)",
                    self.objective.name()
                ),
            );
        }
        if !(self.mask_prob > 0.0 && self.mask_prob < 1.0) {
            return bad(
                "mask_prob",
                format!("is {}; expected 0 < mask_prob < 1", self.mask_prob),
            );
        }
        for (field, value) in [
            ("gen_weight", self.gen_weight),
            ("disc_weight", self.disc_weight),
        ] {
            if !(value.is_finite() && value >= 0.0) {
                return bad(field, format!("is {value}; expected a finite value >= 0"));
            }
        }
        if !(self.temperature.is_finite() && self.temperature > 0.0) {
            return bad(
                "temperature",
                format!("is {}; expected a finite value > 0", self.temperature),
            );
        }
        for (field, value) in [
            (
                "generator_hidden_multiplier",
                self.generator_hidden_multiplier,
            ),
            (
                "generator_layers_multiplier",
                self.generator_layers_multiplier,
            ),
        ] {
            if !(value.is_finite() && value > 0.0) {
                return bad(field, format!("is {value}; expected a finite value > 0"));
            }
        }
        for (field, id) in [
            ("pad_token_id", self.pad_token_id),
            ("cls_token_id", self.cls_token_id),
            ("sep_token_id", self.sep_token_id),
            ("mask_token_id", self.mask_token_id),
        ] {
            if id < 0 || id as u64 >= vocab_size as u64 {
                return bad(
                    field,
                    format!("is {id}; expected 0 <= id < vocab_size ({vocab_size})"),
                );
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_paper_values() {
        let c = ObjectiveConfig::default();
        assert_eq!(c.objective, ObjectiveKind::Electra);
        assert_eq!(c.mlm_masking, MlmMasking::Reference);
        assert_eq!(
            (c.mask_prob, c.gen_weight, c.disc_weight),
            (0.15, 1.0, 50.0)
        );
        assert_eq!((c.temperature, c.disallow_correct), (1.0, false));
        assert_eq!(
            (c.generator_hidden_multiplier, c.generator_layers_multiplier),
            (0.25, 1.0)
        );
        assert_eq!(c.embedding_sharing, EmbeddingSharing::Tied);
        assert_eq!(
            (
                c.pad_token_id,
                c.cls_token_id,
                c.sep_token_id,
                c.mask_token_id
            ),
            (0, 101, 102, 103)
        );
        assert!(c.validate(30522).is_ok());
    }

    #[test]
    fn objective_names_are_kebab_case() {
        for kind in ObjectiveKind::ALL {
            let json = serde_json::to_string(&kind).unwrap();
            assert_eq!(json, format!("\"{}\"", kind.name()));
            let back: ObjectiveKind = serde_json::from_str(&json).unwrap();
            assert_eq!(back, kind);
        }
        let c: ObjectiveConfig =
            serde_json::from_str(r#"{"objective": "electra-15", "mask_prob": 0.25}"#).unwrap();
        assert_eq!(c.objective, ObjectiveKind::Electra15);
        assert_eq!(c.mask_prob, 0.25);
        assert_eq!(c.disc_weight, 50.0, "missing keys take the default");
    }

    #[test]
    fn mlm_masking_is_selectable_for_mlm_only() {
        let c: ObjectiveConfig = serde_json::from_str(r#"{"objective": "mlm"}"#).unwrap();
        assert_eq!(
            c.mlm_masking,
            MlmMasking::Reference,
            "the paper's BERT baseline"
        );
        assert!(!c.bert_masking());
        let c: ObjectiveConfig =
            serde_json::from_str(r#"{"objective": "mlm", "mlm_masking": "bert"}"#).unwrap();
        assert_eq!(c.mlm_masking, MlmMasking::Bert);
        assert!(c.bert_masking());
        assert!(c.validate(30522).is_ok());
        for kind in ObjectiveKind::ALL {
            let c = ObjectiveConfig {
                objective: kind,
                mlm_masking: MlmMasking::Bert,
                ..ObjectiveConfig::default()
            };
            match c.validate(30522) {
                Ok(()) => assert_eq!(kind, ObjectiveKind::Mlm),
                Err(e) => {
                    assert_ne!(kind, ObjectiveKind::Mlm);
                    assert!(e.to_string().contains("mlm_masking"), "{e}");
                }
            }
        }
        let err = serde_json::from_str::<ObjectiveConfig>(r#"{"mlm_masking": "random"}"#)
            .unwrap_err()
            .to_string();
        assert!(err.contains("random"), "{err}");
        for m in [MlmMasking::Reference, MlmMasking::Bert] {
            assert_eq!(
                serde_json::to_string(&m).unwrap(),
                format!("\"{}\"", m.name())
            );
        }
    }

    #[test]
    fn unknown_keys_are_rejected() {
        let err = serde_json::from_str::<ObjectiveConfig>(r#"{"mask_probability": 0.2}"#)
            .unwrap_err()
            .to_string();
        assert!(err.contains("mask_probability"), "{err}");
    }

    #[test]
    fn validation_names_the_field() {
        type Spoil = fn(&mut ObjectiveConfig);
        let cases: [(&str, Spoil); 5] = [
            ("mask_prob", |c| c.mask_prob = 1.5),
            ("temperature", |c| c.temperature = 0.0),
            ("disc_weight", |c| c.disc_weight = -1.0),
            ("generator_hidden_multiplier", |c| {
                c.generator_hidden_multiplier = f64::NAN
            }),
            ("mask_token_id", |c| c.mask_token_id = 64),
        ];
        for (field, spoil) in cases {
            let mut c = ObjectiveConfig {
                cls_token_id: 1,
                sep_token_id: 2,
                mask_token_id: 3,
                ..ObjectiveConfig::default()
            };
            spoil(&mut c);
            let msg = c.validate(64).unwrap_err().to_string();
            assert!(msg.contains(field), "{field}: {msg}");
        }
    }

    #[test]
    fn embedding_sharing_names_and_the_legacy_key() {
        for mode in EmbeddingSharing::ALL {
            let c: ObjectiveConfig =
                serde_json::from_str(&format!(r#"{{"embedding_sharing": "{}"}}"#, mode.name()))
                    .unwrap();
            assert_eq!(c.embedding_sharing, mode);
        }
        let err = serde_json::from_str::<ObjectiveConfig>(r#"{"embedding_sharing": "shared"}"#)
            .unwrap_err()
            .to_string();
        assert!(err.contains("shared"), "{err}");
        // `tie_embeddings` of older configs is read, moved and never written.
        let legacy = |json: &str| {
            let mut c: ObjectiveConfig = serde_json::from_str(json).unwrap();
            c.resolve_legacy().map(|()| c)
        };
        let c = legacy(r#"{"tie_embeddings": true}"#).unwrap();
        assert_eq!(
            (c.embedding_sharing, c.tie_embeddings),
            (EmbeddingSharing::Tied, None)
        );
        assert!(
            !serde_json::to_string(&c)
                .unwrap()
                .contains("tie_embeddings")
        );
        let c = legacy(r#"{"tie_embeddings": false}"#).unwrap();
        assert_eq!(c.embedding_sharing, EmbeddingSharing::Untied);
        let err = legacy(r#"{"tie_embeddings": true, "embedding_sharing": "gdes"}"#)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("tie_embeddings") && err.contains("gdes"),
            "{err}"
        );
        let unresolved: ObjectiveConfig =
            serde_json::from_str(r#"{"tie_embeddings": true}"#).unwrap();
        assert!(unresolved.validate(30522).is_err());
    }

    #[test]
    fn only_objectives_with_a_generator_may_untie() {
        for kind in ObjectiveKind::ALL {
            for mode in EmbeddingSharing::ALL {
                let c = ObjectiveConfig {
                    objective: kind,
                    embedding_sharing: mode,
                    ..ObjectiveConfig::default()
                };
                let ok = mode == EmbeddingSharing::Tied || kind.uses_generator();
                match c.validate(30522) {
                    Ok(()) => assert!(ok, "{kind:?} {mode:?}"),
                    Err(e) => {
                        assert!(!ok, "{kind:?} {mode:?}: {e}");
                        assert!(e.to_string().contains("embedding_sharing"), "{e}");
                    }
                }
            }
        }
    }

    /// The reference's untied generator: embeddings at its own width, so no projection.
    #[test]
    fn the_untied_generator_embeds_at_its_own_width() {
        let model = ElectraConfig::small();
        for (mode, width) in [
            (EmbeddingSharing::Tied, 128),
            (EmbeddingSharing::Gdes, 128),
            (EmbeddingSharing::Untied, 64),
        ] {
            let c = ObjectiveConfig {
                embedding_sharing: mode,
                ..ObjectiveConfig::default()
            };
            let g = c.generator_config(&model).unwrap();
            assert_eq!((g.hidden_size, g.embedding_size), (64, width), "{mode:?}");
        }
    }
}
