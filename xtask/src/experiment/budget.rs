//! The budgets of `cargo xtask experiment equal-compute` and `cargo xtask experiment sharing`:
//! what each one pre-trains, for how long, and how it fine-tunes. A budget is plain data;
//! `plan.rs` turns it into step counts with the project's FLOP count, and `plan.json` in the
//! output directory records it.

use serde::Serialize;

/// Where the pre-training text comes from.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Corpus {
    /// The built-in demo corpus (generated English-like text) with the demo tokenizer:
    /// `documents` documents packed to `max_seq_len`.
    Demo {
        /// Number of demo documents.
        documents: usize,
    },
    /// Files under `--data` (default `../shared/data/corpus`), tokenized with `--vocab`
    /// (default the BERT uncased vocabulary in `../shared/data/vocab`).
    Files,
}

/// One budget (see the module docs and `docs/results.md`).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Budget {
    /// The experiment: `equal-compute` (not written to `plan.json`, so the plans of earlier
    /// runs still match) or `sharing`.
    #[serde(skip_serializing_if = "is_equal_compute")]
    pub experiment: &'static str,
    /// `smoke`, `mini` or `full`.
    pub name: &'static str,
    /// What a user should expect, in words (printed and recorded).
    pub summary: &'static str,
    /// Pre-training text.
    pub corpus: Corpus,
    /// Tokens per pre-training example (`electra data build --max-seq-len`, `data.max_seq_len`).
    pub max_seq_len: usize,
    /// Shard files to build.
    pub shards: usize,
    /// Run preset every pre-training run starts from (`electra pretrain --preset`).
    pub preset: &'static str,
    /// `key=value` overrides shared by every run (model sizes, batch, schedule, seed; the same
    /// seed and data order for every objective).
    pub overrides: Vec<&'static str>,
    /// ELECTRA's optimizer steps; every other objective gets the steps its FLOPs per step
    /// allow within ELECTRA's total (`plan.rs`).
    pub electra_steps: u64,
    /// Warmup as a share of each run's steps (the paper's Small: 10,000 of 1M = 1 %).
    pub warmup_fraction: f64,
    /// Runs to pre-train, ELECTRA first, by label: an objective (`electra`, `mlm`, and the
    /// Table 5 ablations `electra-15`, `replace-mlm`, `all-tokens-mlm`) or ELECTRA with another
    /// embedding sharing (`electra-untied`, `electra-gdes`; see `plan::run_overrides`).
    pub objectives: Vec<&'static str>,
    /// Checkpoints to fine-tune, as shares of each run's steps (equal FLOPs across objectives at
    /// each share); 1.0 is the final checkpoint.
    pub checkpoint_fractions: Vec<f64>,
    /// Also fine-tune a randomly initialised encoder of the same shape.
    pub random_init: bool,
    /// GLUE tasks (folder names).
    pub tasks: Vec<&'static str>,
    /// Fine-tuning seeds per (model, task): 1..=seeds.
    pub seeds: u64,
    /// Seeded training subset per task (`electra finetune --max-train-examples`); `None` = all.
    pub max_train_examples: Option<usize>,
    /// Epochs per task (`None`: the paper's recipe, 3, or 10 for RTE and STS-B).
    pub finetune_epochs: Option<usize>,
    /// Tokens per fine-tuning example.
    pub finetune_max_seq_len: usize,
    /// Seed of the bootstrap interval.
    pub bootstrap_seed: u64,
    /// Bootstrap resamples.
    pub bootstrap_resamples: usize,
}

/// The names `--budget` accepts (`equal-compute`).
pub const NAMES: [&str; 3] = ["smoke", "mini", "full"];

/// The names `--budget` accepts for `sharing`.
pub const SHARING_NAMES: [&str; 2] = ["smoke", "mini"];

/// The experiments: ELECTRA against BERT, and the embedding-sharing modes.
pub const EXPERIMENTS: [&str; 2] = ["equal-compute", "sharing"];

fn is_equal_compute(experiment: &&'static str) -> bool {
    *experiment == "equal-compute"
}

/// The sharing comparison's runs: ELECTRA tied (the paper's choice, label `electra`), untied
/// (the reference's untied generator) and GDES (DeBERTa-v3).
const SHARING_RUNS: [&str; 3] = ["electra", "electra-untied", "electra-gdes"];

/// The `tiny` model (2 layers, hidden 128, embeddings 64, FFN 512) on 16 × 128 batches, with
/// the generator sampling at temperature 2.
///
/// **Deviation from the paper (temperature 1).** At the `tiny` size and these budgets a
/// discriminator trained on temperature-1 samples collapses to the majority class ("original"
/// everywhere) within ~100 steps, as soon as the generator's samples stop being random words:
/// the paper notes the same failure ("D sometimes never learns beyond the majority class",
/// §3.2). The first `mini` run showed it (replaced recall 0.000, AUC 0.568 at step 2,000;
/// `experiments/equal-compute-mini-temperature-1/`), and 300-400-step probes on the same data
/// separated the causes: peak LR 5e-4 instead of 1e-3 still collapsed, a 1/8-width generator
/// at temperature 1 still collapsed, and temperature 2 kept the discriminator learning with
/// the paper's 1/4-width generator (AUC 0.87, replaced recall 0.39 at step 260; numbers in
/// `docs/results.md`). Temperature only changes which replacements the discriminator sees; the
/// generator's MLM loss, the FLOPs and every other objective's training are unchanged (the
/// BERT run has no generator), so it is the smallest change that makes the comparison about
/// the objectives and not about a collapse. The `demo` preset uses the same temperature.
const TINY_RUN: [&str; 6] = [
    "seed=1234",
    "train.batch_size=16",
    "train.log_every=25",
    "train.eval_every=0",
    "schedule.peak=1e-3",
    "objective.temperature=2.0",
];

impl Budget {
    /// The budget called `name` of `experiment` (one of [`EXPERIMENTS`]).
    pub fn of(experiment: &str, name: &str) -> anyhow::Result<Self> {
        match (experiment, name) {
            ("equal-compute", "smoke") => Ok(Self::smoke()),
            ("equal-compute", "mini") => Ok(Self::mini()),
            ("equal-compute", "full") => Ok(Self::full()),
            ("equal-compute", other) => {
                anyhow::bail!("unknown budget `{other}` (known: {})", NAMES.join(", "))
            }
            ("sharing", "smoke") => Ok(Self::sharing_smoke()),
            ("sharing", "mini") => Ok(Self::sharing_mini()),
            ("sharing", other) => anyhow::bail!(
                "unknown budget `{other}` of `sharing` (known: {})",
                SHARING_NAMES.join(", ")
            ),
            (other, _) => anyhow::bail!(
                "unknown experiment `{other}` (known: {})",
                EXPERIMENTS.join(", ")
            ),
        }
    }

    /// `sharing` in seconds: the `smoke` model and data with tied, untied and GDES ELECTRA at
    /// equal FLOPs, final checkpoints only, plus random init. Its numbers mean nothing.
    pub fn sharing_smoke() -> Self {
        Self {
            experiment: "sharing",
            summary: "pipeline check of the sharing comparison on the demo corpus and generated GLUE files; numbers are meaningless",
            objectives: SHARING_RUNS.to_vec(),
            checkpoint_fractions: vec![1.0],
            ..Self::smoke()
        }
    }

    /// `sharing` within about two hours on a 2-core CPU: the equal-compute `mini` setting (the
    /// `tiny` model, 2,000 ELECTRA steps of 16 × 128 tokens, temperature 2; CoLA, SST-2 and
    /// MRPC on 2,000-example subsets, 2 epochs, 5 seeds) with ELECTRA tied, untied and GDES at
    /// equal FLOPs, plus random init.
    pub fn sharing_mini() -> Self {
        Self {
            experiment: "sharing",
            summary: "tiny model, ELECTRA tied vs untied vs GDES at equal FLOPs vs random init, 3 tasks on subsets, 5 seeds (~2 h on 2 cores)",
            objectives: SHARING_RUNS.to_vec(),
            ..Self::mini()
        }
    }

    /// Seconds to a couple of minutes: a 1-layer, hidden-32 model on the demo corpus, ELECTRA
    /// and BERT at equal FLOPs plus random init, two generated tasks, two seeds. Exercises every
    /// path (the integration test); its numbers mean nothing.
    pub fn smoke() -> Self {
        Self {
            experiment: "equal-compute",
            name: "smoke",
            summary: "pipeline check on the demo corpus and generated GLUE files; numbers are meaningless",
            corpus: Corpus::Demo { documents: 60 },
            max_seq_len: 32,
            shards: 2,
            preset: "demo",
            overrides: vec![
                "seed=7",
                "model.embedding_size=16",
                "model.hidden_size=32",
                "model.num_hidden_layers=1",
                "model.num_attention_heads=2",
                "model.intermediate_size=64",
                "model.max_position_embeddings=32",
                "objective.generator_hidden_multiplier=0.5",
                "train.batch_size=4",
                "train.log_every=2",
                "train.checkpoint_every=1000",
                "train.keep_checkpoints=1",
                "train.eval_every=0",
                "data.shuffle_buffer=16",
            ],
            electra_steps: 6,
            warmup_fraction: 0.2,
            objectives: vec!["electra", "mlm"],
            checkpoint_fractions: vec![0.5, 1.0],
            random_init: true,
            tasks: vec!["RTE", "SST-2"],
            seeds: 2,
            max_train_examples: None,
            finetune_epochs: Some(2),
            finetune_max_seq_len: 32,
            bootstrap_seed: 2020,
            bootstrap_resamples: 200,
        }
    }

    /// At most two hours on a 2-core CPU: the `tiny` model (2 layers, hidden 128) pre-trained
    /// with ELECTRA for 2,000 steps of 16 × 128 tokens and with BERT (MLM) for the same FLOPs,
    /// plus random init; CoLA, SST-2 and MRPC on 2,000-example training subsets, 2 epochs,
    /// 5 seeds. Sized from short measured runs (`docs/results.md`, "Budgets").
    pub fn mini() -> Self {
        let mut overrides = TINY_RUN.to_vec();
        overrides.push("train.checkpoint_every=500");
        Self {
            experiment: "equal-compute",
            name: "mini",
            summary: "tiny model, ELECTRA vs BERT vs random init, 3 tasks on subsets, 5 seeds (<= 2 h on 2 cores)",
            corpus: Corpus::Files,
            max_seq_len: 128,
            shards: 8,
            preset: "tiny",
            overrides,
            electra_steps: 2_000,
            warmup_fraction: 0.05,
            objectives: vec!["electra", "mlm"],
            checkpoint_fractions: vec![1.0],
            random_init: true,
            tasks: vec!["CoLA", "SST-2", "MRPC"],
            seeds: 5,
            max_train_examples: Some(2_000),
            finetune_epochs: Some(2),
            finetune_max_seq_len: 128,
            bootstrap_seed: 2020,
            bootstrap_resamples: 10_000,
        }
    }

    /// Several sittings of background compute (about 16 hours on a quiet 2-core CPU): the
    /// `tiny` model for 8,000 ELECTRA steps, every Table 5 objective at equal FLOPs, four
    /// checkpoints each (Figure 4 style), random init, the five small GLUE tasks on
    /// 3,000-example subsets for 3 epochs, 5 seeds.
    pub fn full() -> Self {
        let mut overrides = TINY_RUN.to_vec();
        overrides.push("train.checkpoint_every=1000");
        Self {
            experiment: "equal-compute",
            name: "full",
            summary: "tiny model, all Table 5 objectives at equal FLOPs, 4 checkpoints each, 5 tasks, 5 seeds (many hours)",
            corpus: Corpus::Files,
            max_seq_len: 128,
            shards: 16,
            preset: "tiny",
            overrides,
            electra_steps: 8_000,
            warmup_fraction: 0.05,
            objectives: vec![
                "electra",
                "mlm",
                "electra-15",
                "replace-mlm",
                "all-tokens-mlm",
            ],
            checkpoint_fractions: vec![0.25, 0.5, 0.75, 1.0],
            random_init: true,
            tasks: vec!["CoLA", "SST-2", "MRPC", "STS-B", "RTE"],
            seeds: 5,
            max_train_examples: Some(3_000),
            finetune_epochs: Some(3),
            finetune_max_seq_len: 128,
            bootstrap_seed: 2020,
            bootstrap_resamples: 10_000,
        }
    }
}

/// The paper's metric of a GLUE task: MCC for CoLA, Spearman for STS-B, accuracy otherwise
/// (paper §3.1; the names `electra finetune` writes in `results.json`).
pub fn paper_metric(task: &str) -> &'static str {
    match task.to_ascii_lowercase().as_str() {
        "cola" => "mcc",
        "sts-b" | "stsb" => "spearman",
        _ => "accuracy",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_budget_compares_electra_with_bert_over_enough_seeds() {
        for name in NAMES {
            let b = Budget::of("equal-compute", name).expect("budget");
            assert_eq!(b.objectives[..2], ["electra", "mlm"], "{name}");
            assert!(b.random_init, "{name}");
            assert!(b.checkpoint_fractions.last() == Some(&1.0), "{name}");
            if name != "smoke" {
                assert!(b.seeds >= 5 && b.tasks.len() >= 3, "{name}");
            }
        }
        assert!(Budget::full().checkpoint_fractions.len() >= 4);
        // The documented deviation that keeps the `tiny` discriminator from collapsing.
        for b in [Budget::mini(), Budget::full()] {
            assert!(
                b.overrides.contains(&"objective.temperature=2.0"),
                "{}",
                b.name
            );
        }
        assert!(Budget::of("equal-compute", "huge").is_err());
    }

    #[test]
    fn the_sharing_budgets_compare_the_three_modes_over_enough_seeds() {
        for name in SHARING_NAMES {
            let b = Budget::of("sharing", name).expect("budget");
            assert_eq!(b.objectives, SHARING_RUNS, "{name}");
            assert!(b.random_init && b.checkpoint_fractions.last() == Some(&1.0));
            // Serialised with its experiment, unlike equal-compute (whose plans predate it).
            assert_eq!(
                serde_json::to_value(&b).expect("json")["experiment"],
                "sharing"
            );
        }
        let mini = Budget::sharing_mini();
        assert!(mini.seeds >= 5 && mini.tasks.len() >= 3);
        assert_eq!(mini.electra_steps, Budget::mini().electra_steps);
        assert!(
            serde_json::to_value(Budget::mini())
                .expect("json")
                .get("experiment")
                .is_none()
        );
        assert!(Budget::of("sharing", "full").is_err());
        assert!(Budget::of("other", "mini").is_err());
    }

    #[test]
    fn paper_metrics_per_task() {
        assert_eq!(paper_metric("CoLA"), "mcc");
        assert_eq!(paper_metric("STS-B"), "spearman");
        assert_eq!(paper_metric("RTE"), "accuracy");
    }
}
