//! `RunConfig`: everything a pre-training run needs, as one TOML document.
//!
//! A run config nests the configs the crates own (`model`: [`ElectraConfig`], `objective`:
//! [`ObjectiveConfig`], `optimizer`: [`AdamConfig`], `schedule`: [`LrSchedule`]) beside the
//! loop's own settings (`train`) and the data source (`data`). It is built from a named preset,
//! then a TOML file, then `--set key=value` overrides, each layer replacing only the keys it
//! names; unknown keys are rejected with their dotted name. The resolved whole is saved as
//! `config.toml` in the run directory and inside every checkpoint.

use std::path::{Path, PathBuf};

use electra_model::ElectraConfig;
use electra_objective::ObjectiveConfig;
use serde::{Deserialize, Serialize};

use crate::error::RunError;
use crate::init::InitConfig;
use electra_optim::AdamConfig;
use electra_optim::LrSchedule;

/// The loop's settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrainConfig {
    /// Sequences per optimizer step (Small 128, Base 256, Large 2048).
    pub batch_size: usize,
    /// Optimizer steps (Small 1,000,000).
    pub steps: u64,
    /// Micro-batches accumulated per optimizer step (1 = none); each micro-batch has
    /// `batch_size / grad_accum_steps` sequences.
    pub grad_accum_steps: usize,
    /// Write a line to `metrics.jsonl` every this many steps.
    pub log_every: u64,
    /// Checkpoint every this many steps (and at the end, and on Ctrl-C / SIGTERM).
    pub checkpoint_every: u64,
    /// How many checkpoints to keep (the newest).
    pub keep_checkpoints: usize,
    /// Evaluate on held-out batches every this many steps (0 = never).
    pub eval_every: u64,
    /// Number of held-out batches per evaluation.
    pub eval_batches: usize,
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self {
            batch_size: 128,
            steps: 1_000_000,
            grad_accum_steps: 1,
            log_every: 100,
            checkpoint_every: 10_000,
            keep_checkpoints: 3,
            eval_every: 10_000,
            eval_batches: 20,
        }
    }
}

/// Where examples come from.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DataConfig {
    /// Directory of Parquet shards built by `electra data build`; absent = the built-in demo
    /// corpus (a generated English-like text, for demos, never for benchmarks).
    pub shards: Option<PathBuf>,
    /// The tokenizer (`vocab.txt` or `tokenizer.json`) the shards were built with; required
    /// with `shards` (the run refuses shards built with another tokenizer).
    pub tokenizer: Option<PathBuf>,
    /// Held-out shards for periodic evaluation (with `shards`; the demo corpus holds out
    /// `demo_eval_fraction` of its documents instead).
    pub eval_shards: Option<PathBuf>,
    /// Tokens per example (Small 128, Base and Large 512).
    pub max_seq_len: usize,
    /// Documents of the demo corpus (only without `shards`).
    pub demo_documents: usize,
    /// Fraction of the demo corpus's documents held out for evaluation.
    pub demo_eval_fraction: f64,
    /// Examples in the loader's shuffle buffer.
    pub shuffle_buffer: usize,
}

impl Default for DataConfig {
    fn default() -> Self {
        Self {
            shards: None,
            tokenizer: None,
            eval_shards: None,
            max_seq_len: 128,
            demo_documents: 2000,
            demo_eval_fraction: 0.05,
            shuffle_buffer: 10_000,
        }
    }
}

/// A whole pre-training run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RunConfig {
    /// The preset this config started from (informational).
    pub preset: String,
    /// The one seed of the run: initialisation, data order, masking, sampling and dropout each
    /// derive their own stream from it (`objective.seed` is set from it).
    pub seed: u64,
    /// The discriminator's sizes; the generator's follow from `objective`.
    pub model: ElectraConfig,
    /// The pre-training objective.
    pub objective: ObjectiveConfig,
    /// The loop.
    pub train: TrainConfig,
    /// The optimizer.
    pub optimizer: AdamConfig,
    /// The learning-rate schedule; `total_steps = 0` means `train.steps`.
    pub schedule: LrSchedule,
    /// The data source.
    pub data: DataConfig,
    /// Released weights the run started from (`[init]`; absent for a fresh initialisation).
    #[serde(skip_serializing_if = "InitConfig::is_empty")]
    pub init: InitConfig,
}

impl Default for RunConfig {
    fn default() -> Self {
        Self::preset("small").unwrap_or_else(|_| Self::base_config("small", ElectraConfig::small()))
    }
}

/// Names of the run presets.
pub const RUN_PRESETS: [&str; 5] = ["demo", "tiny", "small", "base", "large"];

impl RunConfig {
    fn base_config(preset: &str, model: ElectraConfig) -> Self {
        Self {
            preset: preset.to_string(),
            seed: 42,
            model,
            objective: ObjectiveConfig::default(),
            train: TrainConfig::default(),
            optimizer: AdamConfig::default(),
            schedule: LrSchedule {
                total_steps: 0,
                ..LrSchedule::default()
            },
            data: DataConfig::default(),
            init: InitConfig::default(),
        }
    }

    /// A named preset (paper Table 6 for `small`, `base`, `large`; `tiny` and `demo` are ours).
    ///
    /// `demo` is sized to finish in under five minutes on two CPU cores on the built-in demo
    /// corpus, with the demo tokenizer's vocabulary. Two settings differ from the paper on
    /// purpose, so that a few hundred steps show replaced-token detection learning: samples
    /// are drawn at temperature 2 (paper 1) and the generator is 1/8 of the discriminator's
    /// width (paper 1/4). At temperature 1 a generator learns the demo text's word
    /// distribution within ~100 steps, after which a 2-layer discriminator needs far more
    /// steps than a demo has to tell its samples apart. Every other preset keeps the paper's
    /// values.
    pub fn preset(name: &str) -> Result<Self, RunError> {
        let config = match name {
            "small" => Self::base_config("small", ElectraConfig::small()),
            "base" => {
                let mut c = Self::base_config("base", ElectraConfig::base());
                c.objective.generator_hidden_multiplier = 1.0 / 3.0;
                c.schedule.peak = 2e-4;
                c.train.batch_size = 256;
                c.train.steps = 766_000;
                c.data.max_seq_len = 512;
                c
            }
            "large" => {
                let mut c = Self::base_config("large", ElectraConfig::large());
                c.objective.mask_prob = 0.25;
                c.schedule.peak = 2e-4;
                c.train.batch_size = 2048;
                c.train.steps = 400_000;
                c.data.max_seq_len = 512;
                c
            }
            "tiny" => {
                let mut c = Self::base_config("tiny", ElectraConfig::tiny());
                c.train.batch_size = 16;
                c.train.steps = 1000;
                c.train.log_every = 10;
                c.train.checkpoint_every = 200;
                c.train.eval_every = 200;
                c.train.eval_batches = 4;
                c.schedule.warmup_steps = 100;
                c.schedule.peak = 1e-3;
                c
            }
            "demo" => {
                let mut model = ElectraConfig::tiny();
                model.vocab_size = electra_data::demo_tokenizer()?.vocab_size();
                model.embedding_size = 64;
                model.hidden_size = 128;
                model.num_hidden_layers = 2;
                model.num_attention_heads = 2;
                model.intermediate_size = 512;
                model.max_position_embeddings = 64;
                let mut c = Self::base_config("demo", model);
                c.objective.temperature = 2.0;
                c.objective.generator_hidden_multiplier = 0.125;
                c.train.batch_size = 32;
                c.train.steps = 450;
                c.train.log_every = 10;
                c.train.checkpoint_every = 150;
                c.train.keep_checkpoints = 2;
                c.train.eval_every = 150;
                c.train.eval_batches = 4;
                c.schedule.warmup_steps = 45;
                c.schedule.peak = 1e-3;
                c.data.max_seq_len = 64;
                c.data.shuffle_buffer = 1000;
                c
            }
            other => {
                return Err(RunError::InvalidConfig(format!(
                    "unknown preset `{other}` (known: {})",
                    RUN_PRESETS.join(", ")
                )));
            }
        };
        Ok(config)
    }

    /// Builds a config from a preset, then an optional TOML file, then `key=value` overrides
    /// (dotted keys, TOML values; a bare word is taken as a string).
    pub fn resolve(
        preset: Option<&str>,
        file: Option<&Path>,
        overrides: &[String],
    ) -> Result<Self, RunError> {
        let mut layers: Vec<(String, toml::Table)> = Vec::new();
        let mut preset_name = preset.map(str::to_string);
        if let Some(path) = file {
            let text = std::fs::read_to_string(path).map_err(|source| RunError::Io {
                path: path.to_path_buf(),
                source,
            })?;
            let table: toml::Table = toml::from_str(&text)
                .map_err(|e| RunError::InvalidConfig(format!("{}: {e}", path.display())))?;
            if preset_name.is_none()
                && let Some(toml::Value::String(p)) = table.get("preset")
            {
                preset_name = Some(p.clone());
            }
            layers.push((path.display().to_string(), table));
        }
        for item in overrides {
            let (key, value) = item.split_once('=').ok_or_else(|| {
                RunError::InvalidConfig(format!("--set `{item}`: expected key=value"))
            })?;
            let value = parse_value(value.trim());
            let mut table = toml::Table::new();
            insert_dotted(&mut table, key.trim(), value);
            layers.push((format!("--set {item}"), table));
        }
        let base = Self::preset(preset_name.as_deref().unwrap_or("small"))?;
        let mut merged = toml::Table::try_from(&base)
            .map_err(|e| RunError::InvalidConfig(format!("cannot serialise preset: {e}")))?;
        for (source, layer) in layers {
            merge(&mut merged, layer);
            // Check each layer as it is applied, so the error names its source.
            toml::Value::Table(merged.clone())
                .try_into::<Self>()
                .map_err(|e| RunError::InvalidConfig(format!("{source}: {e}")))?;
        }
        let mut config: Self = toml::Value::Table(merged)
            .try_into()
            .map_err(|e| RunError::InvalidConfig(e.to_string()))?;
        config.objective.resolve_legacy()?;
        config.validate()?;
        Ok(config)
    }

    /// Checks the loop's own settings and the nested configs.
    pub fn validate(&self) -> Result<(), RunError> {
        // Informational, but `--resume` re-reads the saved config starting from this preset:
        // an unknown name (`--set preset=...`) would make the run impossible to resume.
        if !RUN_PRESETS.contains(&self.preset.as_str()) {
            return Err(RunError::InvalidConfig(format!(
                "preset `{}`: unknown (known: {})",
                self.preset,
                RUN_PRESETS.join(", ")
            )));
        }
        self.model.validate()?;
        self.objective.validate(self.model.vocab_size)?;
        self.objective.generator_config(&self.model)?;
        self.init.pair()?;
        self.optimizer.validate()?;
        let t = &self.train;
        let positive = [
            ("train.batch_size", t.batch_size as u64),
            ("train.steps", t.steps),
            ("train.grad_accum_steps", t.grad_accum_steps as u64),
            ("train.log_every", t.log_every),
            ("train.checkpoint_every", t.checkpoint_every),
            ("train.keep_checkpoints", t.keep_checkpoints as u64),
            ("data.max_seq_len", self.data.max_seq_len as u64),
        ];
        for (key, value) in positive {
            if value == 0 {
                return Err(RunError::InvalidConfig(format!("{key} must be > 0")));
            }
        }
        let fraction = self.data.demo_eval_fraction;
        if !(0.0..=1.0).contains(&fraction) {
            return Err(RunError::InvalidConfig(format!(
                "data.demo_eval_fraction must be a number in [0, 1], found {fraction}"
            )));
        }
        if !t.batch_size.is_multiple_of(t.grad_accum_steps) {
            return Err(RunError::InvalidConfig(format!(
                "train.batch_size ({}) must be divisible by train.grad_accum_steps ({})",
                t.batch_size, t.grad_accum_steps
            )));
        }
        if self.data.max_seq_len > self.model.max_position_embeddings {
            return Err(RunError::InvalidConfig(format!(
                "data.max_seq_len ({}) exceeds model.max_position_embeddings ({})",
                self.data.max_seq_len, self.model.max_position_embeddings
            )));
        }
        let slots = electra_objective::masking::max_predictions(
            self.objective.mask_prob,
            self.data.max_seq_len,
        );
        if slots == 0 {
            return Err(RunError::InvalidConfig(format!(
                "data.max_seq_len ({}) leaves no masking slots: floor((objective.mask_prob + \
                 0.005)·max_seq_len) = 0",
                self.data.max_seq_len
            )));
        }
        if self.objective.seed != ObjectiveConfig::default().seed
            && self.objective.seed != self.objective_seed()
        {
            return Err(RunError::InvalidConfig(
                "objective.seed is derived from the run's `seed`; set `seed` instead".to_string(),
            ));
        }
        Ok(self.schedule_resolved().validate()?)
    }

    /// The schedule with `total_steps` filled in from `train.steps` when 0.
    pub fn schedule_resolved(&self) -> LrSchedule {
        let mut s = self.schedule.clone();
        if s.total_steps == 0 {
            s.total_steps = self.train.steps;
        }
        s
    }

    /// A seed for one consumer, derived from the run seed and the consumer's name, so that
    /// changing how one consumer draws does not shift the others.
    pub fn derived_seed(&self, consumer: &str) -> u64 {
        // FNV-1a over the name, mixed with the seed (splitmix64 finaliser).
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for byte in consumer.bytes() {
            h = (h ^ byte as u64).wrapping_mul(0x0100_0000_01b3);
        }
        electra_model::seed::mix(h ^ self.seed.wrapping_mul(electra_model::seed::GOLDEN))
    }

    /// The seed the objective uses (masking, sampling, dropout).
    pub fn objective_seed(&self) -> u64 {
        self.derived_seed("objective")
    }

    /// The config as TOML text.
    pub fn to_toml(&self) -> Result<String, RunError> {
        toml::to_string_pretty(self).map_err(|e| RunError::InvalidConfig(e.to_string()))
    }
}

/// A `--set` value: TOML if it parses as one (`3`, `1e-4`, `true`, `"x"`, `[1, 2]`), else the
/// text as a string (so `--set data.shards=/path` works unquoted).
fn parse_value(text: &str) -> toml::Value {
    toml::from_str::<toml::Table>(&format!("v = {text}"))
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| toml::Value::String(text.to_string()))
}

fn insert_dotted(table: &mut toml::Table, key: &str, value: toml::Value) {
    match key.split_once('.') {
        None => {
            table.insert(key.to_string(), value);
        }
        Some((head, rest)) => {
            let entry = table
                .entry(head.to_string())
                .or_insert_with(|| toml::Value::Table(toml::Table::new()));
            if let toml::Value::Table(inner) = entry {
                insert_dotted(inner, rest, value);
            }
        }
    }
}

fn merge(base: &mut toml::Table, layer: toml::Table) {
    for (key, value) in layer {
        match (base.get_mut(&key), value) {
            (Some(toml::Value::Table(b)), toml::Value::Table(l)) => merge(b, l),
            (_, v) => {
                base.insert(key, v);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_preset_is_valid_and_round_trips_through_toml() {
        for name in RUN_PRESETS {
            let c = RunConfig::preset(name).expect("preset");
            c.validate().expect(name);
            let text = c.to_toml().expect("toml");
            let back: RunConfig = toml::from_str(&text).expect("parse");
            assert_eq!(back, c, "{name}");
        }
        assert_eq!(
            RunConfig::preset("large")
                .expect("large")
                .objective
                .mask_prob,
            0.25
        );
    }

    /// Paper Table 6 / spec 3 and 2.8, value by value: the presets must not drift.
    #[test]
    fn paper_presets_match_table_6() {
        // (preset, peak LR, batch, steps, seq len, mask prob, generator multiplier,
        //  hidden, layers, E, generator hidden)
        type Row = (
            &'static str,
            f64,
            usize,
            u64,
            usize,
            f64,
            f64,
            usize,
            usize,
            usize,
            usize,
        );
        let table: [Row; 3] = [
            (
                "small", 5e-4, 128, 1_000_000, 128, 0.15, 0.25, 256, 12, 128, 64,
            ),
            (
                "base",
                2e-4,
                256,
                766_000,
                512,
                0.15,
                1.0 / 3.0,
                768,
                12,
                768,
                256,
            ),
            (
                "large", 2e-4, 2048, 400_000, 512, 0.25, 0.25, 1024, 24, 1024, 256,
            ),
        ];
        for (name, lr, batch, steps, seq, mask, mult, hidden, layers, e, gen_hidden) in table {
            let c = RunConfig::preset(name).expect(name);
            assert_eq!(c.schedule.peak, lr, "{name} peak LR");
            assert_eq!(c.schedule.warmup_steps, 10_000, "{name} warmup");
            assert_eq!(c.schedule.power, 1.0, "{name} linear decay");
            assert_eq!(c.schedule_resolved().total_steps, steps, "{name} T");
            assert_eq!(c.train.batch_size, batch, "{name} batch");
            assert_eq!(c.train.steps, steps, "{name} steps");
            assert_eq!(c.data.max_seq_len, seq, "{name} sequence length");
            assert_eq!(c.objective.mask_prob, mask, "{name} mask prob");
            assert_eq!(
                c.objective.generator_hidden_multiplier, mult,
                "{name} generator size"
            );
            assert_eq!(c.objective.generator_layers_multiplier, 1.0, "{name}");
            assert_eq!(
                (c.objective.gen_weight, c.objective.disc_weight),
                (1.0, 50.0),
                "{name} λ"
            );
            assert_eq!(
                (
                    c.model.hidden_size,
                    c.model.num_hidden_layers,
                    c.model.embedding_size
                ),
                (hidden, layers, e),
                "{name} sizes"
            );
            let generator = c
                .model
                .generator_config(mult, c.objective.generator_layers_multiplier)
                .expect("generator");
            assert_eq!(generator.hidden_size, gen_hidden, "{name} generator hidden");
            assert_eq!(
                generator.num_hidden_layers, layers,
                "{name} generator depth"
            );
            let o = &c.optimizer;
            assert_eq!(
                (o.beta1, o.beta2, o.epsilon, o.weight_decay, o.clip_norm),
                (0.9, 0.999, 1e-6, 0.01, Some(1.0)),
                "{name} optimizer"
            );
        }
    }

    #[test]
    fn layers_apply_in_order_and_name_unknown_keys() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("run.toml");
        std::fs::write(
            &file,
            "preset = \"tiny\"\n[train]\nsteps = 77\n[model]\nhidden_size = 64\n",
        )
        .expect("write");
        let c =
            RunConfig::resolve(None, Some(&file), &["train.steps=5".to_string()]).expect("resolve");
        assert_eq!(c.preset, "tiny");
        assert_eq!(c.train.steps, 5);
        assert_eq!(c.model.hidden_size, 64);
        assert_eq!(c.schedule_resolved().total_steps, 5);
        let c = RunConfig::resolve(Some("demo"), None, &["data.shards=/tmp/x".to_string()])
            .expect("string value");
        assert_eq!(c.data.shards, Some(PathBuf::from("/tmp/x")));

        let err = RunConfig::resolve(Some("tiny"), None, &["train.stpes=3".to_string()])
            .expect_err("typo");
        let msg = err.to_string();
        assert!(msg.contains("stpes") && msg.contains("--set"), "{msg}");
        std::fs::write(&file, "[optimizer]\nbeta3 = 0.5\n").expect("write");
        let msg = RunConfig::resolve(None, Some(&file), &[])
            .expect_err("unknown")
            .to_string();
        assert!(msg.contains("beta3") && msg.contains("run.toml"), "{msg}");
        let msg = RunConfig::resolve(Some("nope"), None, &[])
            .expect_err("preset")
            .to_string();
        assert!(msg.contains("demo, tiny, small"), "{msg}");
    }

    #[test]
    fn invalid_values_name_the_key() {
        let msg = RunConfig::resolve(Some("tiny"), None, &["train.grad_accum_steps=3".into()])
            .expect_err("divisible")
            .to_string();
        assert!(msg.contains("grad_accum_steps"), "{msg}");
        let msg = RunConfig::resolve(Some("demo"), None, &["data.max_seq_len=100".into()])
            .expect_err("too long")
            .to_string();
        assert!(msg.contains("max_position_embeddings"), "{msg}");
        let msg = RunConfig::resolve(Some("demo"), None, &["data.max_seq_len=6".into()])
            .expect_err("no slots")
            .to_string();
        assert!(msg.contains("no masking slots"), "{msg}");
    }

    #[test]
    fn derived_seeds_differ_by_consumer_and_by_seed() {
        let a = RunConfig::preset("tiny").expect("tiny");
        let mut b = a.clone();
        b.seed = 43;
        assert_ne!(a.derived_seed("data"), a.derived_seed("objective"));
        assert_ne!(a.derived_seed("data"), b.derived_seed("data"));
        assert_eq!(a.derived_seed("data"), a.clone().derived_seed("data"));
    }
}
