//! Results: `results.json` (every record, the plan, the machine, summaries), `results.md`
//! (median and spread over seeds per task and model, GLUE averages, the paired comparisons,
//! ELECTRA − BERT first, with their bootstrap intervals) and the Figure-4-style plot, all
//! rebuilt from the records on every invocation. Paths in the first two are relative to the
//! repository root (`portable.rs`), so the committed files read the same on any machine.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde_json::{Value, json};

use super::budget::Budget;
use super::files;
use super::finetune::RANDOM_INIT;
use super::plan::{Layout, Plan};
use super::portable;
use super::stats::{self, Interval};
use super::svg::{self, Series};
use super::table;

/// Scores of one model (label, step) on one task, by seed.
type BySeed = BTreeMap<u64, f64>;

/// One fine-tuned checkpoint and its per-task scores.
#[derive(Clone, Debug, Default)]
pub struct ModelScores {
    /// Objective or `random-init`.
    pub label: String,
    /// Pre-training step.
    pub step: u64,
    /// Pre-training FLOPs.
    pub pretrain_flops: f64,
    /// Its run's last checkpoint.
    pub is_final: bool,
    /// Task → seed → score.
    pub tasks: BTreeMap<String, BySeed>,
}

/// Groups fine-tuning records by (label, step).
pub fn group(records: &[Value]) -> Vec<ModelScores> {
    let mut by_model: BTreeMap<(String, u64), ModelScores> = BTreeMap::new();
    for r in records {
        let label = r["model"].as_str().unwrap_or_default().to_string();
        let step = r["step"].as_u64().unwrap_or_default();
        let entry = by_model
            .entry((label.clone(), step))
            .or_insert_with(|| ModelScores {
                label,
                step,
                pretrain_flops: r["pretrain_flops"].as_f64().unwrap_or_default(),
                is_final: r["final_checkpoint"].as_bool().unwrap_or_default(),
                tasks: BTreeMap::new(),
            });
        if let (Some(task), Some(seed), Some(score)) =
            (r["task"].as_str(), r["seed"].as_u64(), r["score"].as_f64())
        {
            entry
                .tasks
                .entry(task.to_string())
                .or_default()
                .insert(seed, score);
        }
    }
    by_model.into_values().collect()
}

/// Median, mean, std, min, max and count of some scores.
pub fn summary(values: &[f64]) -> Value {
    json!({
        "n": values.len(),
        "median": stats::median(values),
        "mean": stats::mean(values),
        "std": stats::std(values),
        "min": stats::quantile(values, 0.0),
        "max": stats::quantile(values, 1.0),
    })
}

/// The GLUE average of a model: the mean over `tasks` of the per-task medians, when every
/// task has a score.
pub fn glue_average(model: &ModelScores, tasks: &[&str]) -> Option<f64> {
    let medians: Option<Vec<f64>> = tasks
        .iter()
        .map(|t| stats::median(&model.tasks.get(*t)?.values().copied().collect::<Vec<_>>()))
        .collect();
    stats::mean(&medians?)
}

/// The paired comparison `a − b` of two models on the same tasks and fine-tuning seeds.
#[derive(Clone, Debug, PartialEq)]
pub struct Paired {
    /// Per task: (task, seeds compared, mean difference and its bootstrap interval).
    pub tasks: Vec<(String, usize, Option<Interval>)>,
    /// Per seed, the mean difference over all tasks (seeds that have every task).
    pub per_seed: Vec<(u64, f64)>,
    /// The mean of `per_seed` and its bootstrap interval over seeds.
    pub average: Option<Interval>,
}

/// Compares `a` with `b`: per task and seed `a − b`; bootstrap intervals (percentile, `level`)
/// over seeds from `resamples` resamples seeded with `seed`.
pub fn paired(
    a: &ModelScores,
    b: &ModelScores,
    tasks: &[&str],
    resamples: usize,
    seed: u64,
) -> Paired {
    let level = 0.95;
    let mut out = Paired {
        tasks: Vec::new(),
        per_seed: Vec::new(),
        average: None,
    };
    let mut by_seed: BTreeMap<u64, Vec<f64>> = BTreeMap::new();
    for task in tasks {
        let (Some(sa), Some(sb)) = (a.tasks.get(*task), b.tasks.get(*task)) else {
            out.tasks.push((task.to_string(), 0, None));
            continue;
        };
        let diffs: Vec<(u64, f64)> = sa
            .iter()
            .filter_map(|(s, x)| Some((*s, x - sb.get(s)?)))
            .collect();
        for (s, d) in &diffs {
            by_seed.entry(*s).or_default().push(*d);
        }
        let values: Vec<f64> = diffs.iter().map(|(_, d)| *d).collect();
        let interval = stats::bootstrap_mean(&values, resamples, level, seed);
        out.tasks.push((task.to_string(), values.len(), interval));
    }
    out.per_seed = by_seed
        .into_iter()
        .filter(|(_, d)| d.len() == tasks.len())
        .filter_map(|(s, d)| Some((s, stats::mean(&d)?)))
        .collect();
    let averages: Vec<f64> = out.per_seed.iter().map(|(_, d)| *d).collect();
    out.average = stats::bootstrap_mean(&averages, resamples, level, seed);
    out
}

fn interval_json(i: &Option<Interval>) -> Value {
    match i {
        Some(i) => json!({"mean": i.estimate, "low": i.low, "high": i.high,
                          "excludes_zero": i.low > 0.0 || i.high < 0.0}),
        None => Value::Null,
    }
}

fn paired_json(name: &str, p: &Paired) -> Value {
    json!({
        "comparison": name,
        "level": 0.95,
        "tasks": p.tasks.iter().map(|(t, n, i)| json!({"task": t, "seeds": n, "difference": interval_json(i)})).collect::<Vec<_>>(),
        "per_seed_average": p.per_seed.iter().map(|(s, d)| json!({"seed": s, "difference": d})).collect::<Vec<_>>(),
        "average": interval_json(&p.average),
    })
}

/// The comparisons between final checkpoints, those whose models are present: the headline
/// (ELECTRA − BERT, each against random init), then Table 5's (ELECTRA against All-Tokens
/// MLM, its closest ablation; each ablation against BERT), then the sharing experiment's
/// (GDES and untied against tied ELECTRA, GDES against untied, each against random init).
const COMPARISONS: [(&str, &str); 12] = [
    ("electra", "mlm"),
    ("electra", RANDOM_INIT),
    ("mlm", RANDOM_INIT),
    ("electra", "all-tokens-mlm"),
    ("all-tokens-mlm", "mlm"),
    ("replace-mlm", "mlm"),
    ("electra-15", "mlm"),
    ("electra-gdes", "electra"),
    ("electra-untied", "electra"),
    ("electra-gdes", "electra-untied"),
    ("electra-gdes", RANDOM_INIT),
    ("electra-untied", RANDOM_INIT),
];

/// The [`COMPARISONS`] between the final checkpoints among `models` (those present).
fn comparisons_between_finals(models: &[ModelScores], budget: &Budget) -> Vec<(String, Paired)> {
    let finals = |label: &str| models.iter().find(|m| m.label == label && m.is_final);
    let mut comparisons = Vec::new();
    for (a, b) in COMPARISONS {
        if let (Some(ma), Some(mb)) = (finals(a), finals(b)) {
            let p = paired(
                ma,
                mb,
                &budget.tasks,
                budget.bootstrap_resamples,
                budget.bootstrap_seed,
            );
            comparisons.push((format!("{a} - {b}"), p));
        }
    }
    comparisons
}

/// Writes results.json, results.md and plots/glue-vs-flops.svg from the records.
pub fn write(layout: &Layout, plan: &Plan, wall_seconds: f64) -> anyhow::Result<()> {
    let budget = &plan.budget;
    let pretrain = files::read_records(&layout.pretrain_records())?;
    let exports = files::read_records(&layout.export_records())?;
    let finetune = files::read_records(&layout.finetune_records())?;
    let replaced = files::read_records(&layout.replaced_records())?;
    let models = group(&finetune);
    let tasks = &budget.tasks;
    let comparisons = comparisons_between_finals(&models, budget);
    let replaced_units: Vec<Value> = replaced
        .iter()
        .filter_map(|r| r["finetune"].as_array())
        .flatten()
        .cloned()
        .collect();
    let replaced_models = group(&replaced_units);
    let replaced_view = table::Replaced {
        comparisons: comparisons_between_finals(&replaced_models, budget),
        models: replaced_models,
        records: replaced.clone(),
    };
    let summaries: Vec<Value> = models
        .iter()
        .map(|m| {
            json!({
                "model": m.label,
                "step": m.step,
                "pretrain_flops": m.pretrain_flops,
                "final_checkpoint": m.is_final,
                "glue_average": glue_average(m, tasks),
                "tasks": m.tasks.iter().map(|(t, s)| {
                    let v: Vec<f64> = s.values().copied().collect();
                    (t.clone(), summary(&v))
                }).collect::<BTreeMap<_, _>>(),
            })
        })
        .collect();
    let results = json!({
        "experiment": budget.experiment,
        "budget": budget,
        "plan": plan,
        "machine": machine(),
        "wall_seconds_this_invocation": wall_seconds,
        "wall_seconds_recorded": recorded_seconds(&pretrain, &finetune),
        "pretrain": pretrain,
        "exports": exports,
        "finetune": finetune,
        "replaced": replaced,
        "summary": summaries,
        "paired": comparisons.iter().map(|(n, p)| paired_json(n, p)).collect::<Vec<_>>(),
    });
    let root = crate::workspace_root();
    files::write_json(
        &layout.out.join("results.json"),
        &portable::json(&results, &root),
    )?;
    let mut md = table::markdown(plan, &pretrain, &models, &comparisons, &replaced_view);
    let _ = writeln!(
        md,
        "\nWall time recorded: {:.0} s of pre-training and fine-tuning ({} fine-tunings). \
         Machine: {} {}, {} ({} hardware threads; RAYON_NUM_THREADS {}).",
        recorded_seconds(&pretrain, &finetune),
        finetune.len(),
        std::env::consts::OS,
        std::env::consts::ARCH,
        results["machine"]["cpu"].as_str().unwrap_or("unknown CPU"),
        results["machine"]["available_parallelism"],
        results["machine"]["rayon_num_threads"]
            .as_str()
            .unwrap_or("unset"),
    );
    files::write_text(&layout.out.join("results.md"), &portable::text(&md, &root))?;
    let series = figure_series(budget, &models);
    files::write_text(
        &layout.plots().join("glue-vs-flops.svg"),
        &svg::glue_against_flops(
            &series,
            "GLUE average (median over seeds) against pre-training FLOPs",
        ),
    )
}

/// Seconds of pre-training (all sittings that finished a segment) and fine-tuning recorded.
fn recorded_seconds(pretrain: &[Value], finetune: &[Value]) -> f64 {
    pretrain
        .iter()
        .chain(finetune)
        .filter_map(|r| r["wall_seconds"].as_f64())
        .sum()
}

/// One line per objective (its checkpoints with every task scored) and random init.
fn figure_series(budget: &Budget, models: &[ModelScores]) -> Vec<Series> {
    let mut labels: Vec<String> = budget.objectives.iter().map(|o| o.to_string()).collect();
    labels.push(RANDOM_INIT.into());
    labels
        .into_iter()
        .map(|label| Series {
            points: models
                .iter()
                .filter(|m| m.label == label)
                .filter_map(|m| Some((m.pretrain_flops, 100.0 * glue_average(m, &budget.tasks)?)))
                .collect(),
            label,
        })
        .filter(|s| !s.points.is_empty())
        .collect()
}

/// What the numbers were measured on.
fn machine() -> Value {
    let cpu = std::fs::read_to_string("/proc/cpuinfo").ok().and_then(|t| {
        t.lines()
            .find(|l| l.starts_with("model name"))
            .and_then(|l| l.split(':').nth(1))
            .map(|s| s.trim().to_string())
    });
    json!({
        "os": std::env::consts::OS,
        "arch": std::env::consts::ARCH,
        "cpu": cpu,
        "available_parallelism": std::thread::available_parallelism().map(|n| n.get()).ok(),
        "rayon_num_threads": std::env::var("RAYON_NUM_THREADS").ok(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model(label: &str, scores: &[(&str, &[f64])]) -> ModelScores {
        ModelScores {
            label: label.into(),
            is_final: true,
            tasks: scores
                .iter()
                .map(|(t, v)| {
                    (
                        t.to_string(),
                        v.iter()
                            .enumerate()
                            .map(|(i, x)| (i as u64 + 1, *x))
                            .collect(),
                    )
                })
                .collect(),
            ..ModelScores::default()
        }
    }

    #[test]
    fn glue_average_is_the_mean_of_task_medians() {
        let m = model(
            "electra",
            &[("CoLA", &[0.1, 0.3, 0.2]), ("RTE", &[0.5, 0.7, 0.6, 0.9])],
        );
        // medians 0.2 and 0.65
        let avg = glue_average(&m, &["CoLA", "RTE"]).expect("avg");
        assert!((avg - 0.425).abs() < 1e-12, "{avg}");
        assert_eq!(glue_average(&m, &["CoLA", "SST-2"]), None);
    }

    #[test]
    fn comparisons_are_made_between_the_final_checkpoints_present() {
        let scores: &[(&str, &[f64])] = &[("CoLA", &[0.1, 0.2]), ("RTE", &[0.5, 0.6])];
        let mut models: Vec<ModelScores> = ["electra", "mlm", "all-tokens-mlm", RANDOM_INIT]
            .iter()
            .map(|label| model(label, scores))
            .collect();
        let mut earlier = model("electra-15", scores);
        earlier.is_final = false;
        models.push(earlier);
        let names: Vec<String> = comparisons_between_finals(&models, &Budget::smoke())
            .into_iter()
            .map(|(name, _)| name)
            .collect();
        assert_eq!(
            names,
            [
                "electra - mlm",
                "electra - random-init",
                "mlm - random-init",
                "electra - all-tokens-mlm",
                "all-tokens-mlm - mlm",
            ]
        );
    }

    #[test]
    fn paired_differences_follow_seeds() {
        let a = model(
            "electra",
            &[("CoLA", &[0.5, 0.6, 0.7]), ("RTE", &[0.6, 0.6, 0.6])],
        );
        let b = model(
            "mlm",
            &[("CoLA", &[0.4, 0.6, 0.5]), ("RTE", &[0.6, 0.5, 0.6])],
        );
        let p = paired(&a, &b, &["CoLA", "RTE"], 2000, 5);
        // Per task: CoLA +0.1, 0, +0.2 (mean 0.1); RTE 0, +0.1, 0 (mean 1/30).
        let cola = p.tasks[0].2.expect("cola");
        assert_eq!(p.tasks[0].1, 3);
        assert!((cola.estimate - 0.1).abs() < 1e-12);
        // Per seed averages: 0.05, 0.05, 0.1.
        let seeds: Vec<f64> = p.per_seed.iter().map(|(_, d)| *d).collect();
        for (got, want) in seeds.iter().zip([0.05, 0.05, 0.1]) {
            assert!((got - want).abs() < 1e-12, "{seeds:?}");
        }
        let avg = p.average.expect("average");
        assert!((avg.estimate - 0.2 / 3.0).abs() < 1e-12);
        // Every per-seed difference is positive, so is every resampled mean: 0.05 .. 0.1.
        assert!(
            avg.low >= 0.05 - 1e-12 && avg.high <= 0.1 + 1e-12,
            "{avg:?}"
        );
        // A seed missing in b drops out of the pairs.
        let short = model("mlm", &[("CoLA", &[0.4, 0.6]), ("RTE", &[0.6, 0.5])]);
        assert_eq!(
            paired(&a, &short, &["CoLA", "RTE"], 100, 5).per_seed.len(),
            2
        );
    }
}
