//! `results.md`: the pre-training table, the GLUE table (median ± std over seeds per task and
//! model, GLUE average), the paired comparisons with their bootstrap intervals, the paper's
//! numbers for reference, and links to the plots.

use std::fmt::Write as _;

use serde_json::Value;

use super::plan::Plan;
use super::report::{ModelScores, Paired, glue_average};
use super::stats::{self, Interval};

/// The paper's numbers the tables are read against (GLUE dev; Clark et al. 2020).
const PAPER: &str = "## The paper, for reference\n\nTable 1 (GLUE dev, equal compute ~1.4e18 \
FLOPs): ELECTRA-Small 79.9, BERT-Small 75.1. Table 5: ELECTRA 85.0, All-Tokens MLM \
84.3, Replace MLM 82.4, ELECTRA 15 % 82.4, BERT 82.2. The models here are far smaller and \
shorter-trained; compare the sign and size of the paired differences, not absolute scores.\n\n";

fn pct(v: Option<f64>) -> String {
    v.map_or("–".into(), |v| format!("{:.1}", 100.0 * v))
}

pub fn markdown(
    plan: &Plan,
    pretrain: &[Value],
    models: &[ModelScores],
    comparisons: &[(String, Paired)],
) -> String {
    let b = &plan.budget;
    let mut md = String::new();
    let _ = writeln!(md, "# Equal-compute experiment, budget `{}`\n", b.name);
    let _ = writeln!(
        md,
        "{}. Command: `cargo xtask experiment equal-compute --budget {}`. Every number is in `results.json`.\n",
        b.summary, b.name
    );
    let _ = writeln!(
        md,
        "## Pre-training\n\n| objective | steps | FLOPs/step | total FLOPs | wall time (s) | last loss |\n|---|---:|---:|---:|---:|---:|"
    );
    for r in &plan.runs {
        let rec = pretrain
            .iter()
            .find(|p| p["objective"] == r.objective.as_str());
        let wall = rec
            .and_then(|p| p["wall_seconds"].as_f64())
            .map_or("–".into(), |s| format!("{s:.1}"));
        let loss = rec
            .and_then(|p| p["final_metrics"]["loss"].as_f64())
            .map_or("–".into(), |l| format!("{l:.3}"));
        let _ = writeln!(
            md,
            "| {} | {} | {:.3e} | {:.3e} | {wall} | {loss} |",
            r.objective, r.steps, r.train_flops_per_step, r.train_flops_total
        );
    }
    let _ = writeln!(
        md,
        "\n## GLUE validation scores\n\nMedian ± sample std over fine-tuning seeds (n seeds), ×100; metric: MCC for CoLA, Spearman for STS-B, accuracy otherwise. Average: mean of the task medians.\n"
    );
    let _ = write!(md, "| model | step | pre-training FLOPs |");
    for t in &b.tasks {
        let _ = write!(md, " {t} |");
    }
    let _ = writeln!(
        md,
        " average |\n|---|---:|---:|{}---:|",
        "---:|".repeat(b.tasks.len())
    );
    for m in models {
        let _ = write!(
            md,
            "| {} | {} | {:.3e} |",
            m.label, m.step, m.pretrain_flops
        );
        for t in &b.tasks {
            let v: Vec<f64> = m
                .tasks
                .get(*t)
                .map(|s| s.values().copied().collect())
                .unwrap_or_default();
            if v.is_empty() {
                let _ = write!(md, " – |");
            } else {
                let _ = write!(
                    md,
                    " {} ± {} ({}) |",
                    pct(stats::median(&v)),
                    pct(stats::std(&v)),
                    v.len()
                );
            }
        }
        let _ = writeln!(md, " {} |", pct(glue_average(m, &b.tasks)));
    }
    let _ = writeln!(
        md,
        "\n## Paired comparisons (final checkpoints, same fine-tuning seeds)\n\nMean difference ×100 with a 95 % percentile bootstrap interval over seeds ({} resamples, seed {}); the average row bootstraps the per-seed mean over all tasks.\n",
        b.bootstrap_resamples, b.bootstrap_seed
    );
    for (name, p) in comparisons {
        let _ = writeln!(
            md,
            "### {name}\n\n| task | seeds | mean difference | 95 % interval |\n|---|---:|---:|---|"
        );
        let row = |md: &mut String, task: &str, n: usize, i: &Option<Interval>| {
            let (mean, range) = match i {
                Some(i) => (
                    format!("{:+.1}", 100.0 * i.estimate),
                    format!("[{:+.1}, {:+.1}]", 100.0 * i.low, 100.0 * i.high),
                ),
                None => ("–".into(), "–".into()),
            };
            let _ = writeln!(md, "| {task} | {n} | {mean} | {range} |");
        };
        for (t, n, i) in &p.tasks {
            row(&mut md, t, *n, i);
        }
        row(&mut md, "**average**", p.per_seed.len(), &p.average);
        md.push('\n');
    }
    md.push_str(PAPER);
    let _ = writeln!(
        md,
        "## Plots\n\n![GLUE against pre-training FLOPs](plots/glue-vs-flops.svg)\n"
    );
    for r in &plan.runs {
        let _ = writeln!(
            md,
            "![pre-training curves of {0}](plots/pretrain-{0}.svg)",
            r.objective
        );
    }
    md
}
