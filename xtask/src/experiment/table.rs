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

/// The sharing experiment's reference numbers (paper §3.2; DeBERTa-v3 §3.3).
const PAPER_SHARING: &str = "## The papers, for reference\n\nELECTRA §3.2 (GLUE dev, \
same-size generator and discriminator, 500k steps): no weight tying 83.6, tied token \
embeddings 84.3, all weights tied 84.4. DeBERTa-v3 §3.3 reports GDES above both embedding \
sharing and no sharing. The models here are far smaller and shorter-trained; compare the sign \
and size of the paired differences, not absolute scores.\n\n";

fn pct(v: Option<f64>) -> String {
    v.map_or("–".into(), |v| format!("{:.1}", 100.0 * v))
}

/// Runs replaced by a re-creation that differed (`replace.rs`): their records, the scores of
/// their kept fine-tunings, and ELECTRA − BERT between them.
#[derive(Debug, Default)]
pub struct Replaced {
    /// results.json's `replaced` records (objective, reason, ...).
    pub records: Vec<Value>,
    /// Their fine-tunings, grouped.
    pub models: Vec<ModelScores>,
    /// Paired comparisons between their final checkpoints.
    pub comparisons: Vec<(String, Paired)>,
}

/// `results.md` from the plan and the records.
pub fn markdown(
    plan: &Plan,
    pretrain: &[Value],
    models: &[ModelScores],
    comparisons: &[(String, Paired)],
    replaced: &Replaced,
) -> String {
    let b = &plan.budget;
    let mut md = String::new();
    let title = match b.experiment {
        "sharing" => "Embedding-sharing experiment",
        _ => "Equal-compute experiment",
    };
    let _ = writeln!(md, "# {title}, budget `{}`\n", b.name);
    let _ = writeln!(
        md,
        "{}. Command: `cargo xtask experiment {} --budget {}`. Every number is in `results.json`.\n",
        b.summary, b.experiment, b.name
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
    glue_header(&mut md, &b.tasks);
    glue_rows(&mut md, models, &b.tasks);
    let _ = writeln!(
        md,
        "\n## Paired comparisons (final checkpoints, same fine-tuning seeds)\n\nMean difference ×100 with a 95 % percentile bootstrap interval over seeds ({} resamples, seed {}); the average row bootstraps the per-seed mean over all tasks.\n",
        b.bootstrap_resamples, b.bootstrap_seed
    );
    paired_tables(&mut md, comparisons);
    replaced_section(&mut md, &b.tasks, replaced);
    md.push_str(match b.experiment {
        "sharing" => PAPER_SHARING,
        _ => PAPER,
    });
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

/// The GLUE table's header: model, step, FLOPs, one column per task, the average.
fn glue_header(md: &mut String, tasks: &[&str]) {
    let _ = write!(md, "| model | step | pre-training FLOPs |");
    for t in tasks {
        let _ = write!(md, " {t} |");
    }
    let _ = writeln!(
        md,
        " average |\n|---|---:|---:|{}---:|",
        "---:|".repeat(tasks.len())
    );
}

/// One GLUE table row per model: median ± std (seeds) per task, and the average.
fn glue_rows(md: &mut String, models: &[ModelScores], tasks: &[&str]) {
    for m in models {
        let _ = write!(
            md,
            "| {} | {} | {:.3e} |",
            m.label, m.step, m.pretrain_flops
        );
        for t in tasks {
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
        let _ = writeln!(md, " {} |", pct(glue_average(m, tasks)));
    }
}

/// A table per paired comparison.
fn paired_tables(md: &mut String, comparisons: &[(String, Paired)]) {
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
            row(md, t, *n, i);
        }
        row(md, "**average**", p.per_seed.len(), &p.average);
        md.push('\n');
    }
}

/// The replaced runs, why, and what their fine-tunings gave (nothing when none was replaced).
fn replaced_section(md: &mut String, tasks: &[&str], replaced: &Replaced) {
    if replaced.records.is_empty() {
        return;
    }
    let _ = writeln!(
        md,
        "## Replaced runs\n\nRecorded runs that could not be made again (another build of `electra` made them) and were replaced by a re-creation; their records are kept in results.json `replaced`. Why:\n"
    );
    for r in &replaced.records {
        let _ = writeln!(
            md,
            "- {}: {}",
            r["objective"].as_str().unwrap_or("?"),
            r["reason"].as_str().unwrap_or("?")
        );
    }
    if replaced.models.is_empty() {
        md.push('\n');
        return;
    }
    md.push_str("\nTheir fine-tunings (same recipe, tasks and seeds as above):\n\n");
    glue_header(md, tasks);
    glue_rows(md, &replaced.models, tasks);
    md.push('\n');
    paired_tables(md, &replaced.comparisons);
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::collections::BTreeMap;

    #[test]
    fn replaced_runs_get_a_section_with_the_reason_and_their_scores_only_when_there_are_some() {
        let mut md = String::new();
        replaced_section(&mut md, &["RTE"], &Replaced::default());
        assert!(md.is_empty(), "{md}");
        let scores: BTreeMap<u64, f64> = [(1, 0.5), (2, 0.7), (3, 0.6)].into();
        let replaced = Replaced {
            records: vec![
                json!({"objective": "mlm", "reason": "logged loss 6.03 instead of 6.04"}),
            ],
            models: vec![ModelScores {
                label: "mlm".into(),
                step: 8,
                pretrain_flops: 1e13,
                is_final: true,
                tasks: [("RTE".to_string(), scores)].into(),
            }],
            comparisons: Vec::new(),
        };
        replaced_section(&mut md, &["RTE"], &replaced);
        assert!(md.contains("## Replaced runs"), "{md}");
        assert!(
            md.contains("- mlm: logged loss 6.03 instead of 6.04"),
            "{md}"
        );
        assert!(
            md.contains("| mlm | 8 | 1.000e13 | 60.0 ± 10.0 (3) | 60.0 |"),
            "{md}"
        );
    }
}
