//! `cargo xtask experiment equal-compute`: ELECTRA against BERT at equal pre-training compute,
//! in miniature (paper Table 1 and Table 5, Figure 4), by driving the `electra` binary.
//!
//! One command builds shards, pre-trains every objective of the budget from the same seed and
//! data order with the steps that give each ELECTRA's training FLOPs (`plan.rs`, counted by
//! electra-benches' `flops`), exports the planned checkpoints, fine-tunes each (and a random
//! initialisation of the same shape) on GLUE tasks over several seeds, and writes
//! `results.json`, `results.md` and SVG plots (`report.rs`, `table.rs`, `svg.rs`). Everything finished is recorded
//! under `OUT/work/records/` (atomically) and skipped on a rerun; an interrupted pre-training
//! run resumes from its newest checkpoint. The order puts the headline first: ELECTRA and BERT
//! (`mlm`) are pre-trained and their final checkpoints fine-tuned (with the random
//! initialisation) before anything else, so a long budget stopped part-way already answers the
//! main question; then every other checkpoint is pre-trained and fine-tuned in turn. A fresh
//! clone continues from the committed results.json (`restore.rs`), pre-training again only
//! the checkpoints still to be fine-tuned, each checked against its recorded fingerprint
//! (`pretrain.rs`); a re-created run that differs replaces the recorded one only when nothing
//! was fine-tuned on the latter (`replace.rs`). Budgets: `budget.rs`; method and results: `docs/results.md`.
//!
//! `cargo xtask experiment sharing` is the same machinery on other runs: ELECTRA with tied,
//! untied and gradient-disentangled (GDES) embedding sharing at equal FLOPs (run labels
//! `electra`, `electra-untied`, `electra-gdes`; `plan::run_overrides`), fine-tuned with random
//! init over the same tasks and seeds, compared pairwise with the paired bootstrap.
//!
//! ```text
//! cargo xtask experiment equal-compute --budget smoke|mini|full [--out DIR] [--data DIR]
//!     [--vocab FILE] [--glue-dir DIR] [--bin-dir DIR] [--stop-after N]
//! cargo xtask experiment sharing --budget smoke|mini [same options]
//! ```

mod budget;
mod files;
mod finetune;
mod generated;
mod plan;
mod portable;
mod pretrain;
mod replace;
mod report;
mod restore;
pub(crate) mod stats;
mod svg;
mod table;
mod tools;

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, bail};

use budget::{Budget, Corpus};
use plan::Layout;
use pretrain::Progress;
use tools::Tools;

/// Usage of the `experiment` task.
pub const USAGE: &str =
    "usage: cargo xtask experiment equal-compute --budget smoke|mini|full [OPTIONS]
       cargo xtask experiment sharing --budget smoke|mini [OPTIONS]

  equal-compute: ELECTRA against BERT (and Table 5's ablations) at equal training FLOPs
  sharing:       ELECTRA with tied, untied and GDES embedding sharing at equal training FLOPs

  --out DIR        experiment directory (default experiments/<experiment>-<budget>); results.json,
                   results.md, plots/ at its top, shards/runs/checkpoints/records under work/
  --data DIR       a shard directory (has manifest.json), or corpus files to build shards from
                   (default ../shared/data/corpus; smoke: the built-in demo corpus)
  --vocab FILE     WordPiece vocabulary for building shards (default
                   ../shared/data/vocab/bert-base-uncased-vocab.txt)
  --glue-dir DIR   GLUE data, glue_data layout (default ../shared/data/glue; smoke: generated)
  --bin-dir DIR    use the `electra` and `flops` binaries in DIR instead of building release ones
  --stop-after N   stop every pre-training run at step N (resumable) and write the partial results
  --replace-run OBJECTIVE
                   the run in work/runs/OBJECTIVE (pre-trained afresh if there is none) replaces
                   its recorded run, one whose checkpoints cannot be made again: the recorded
                   run's records and the fine-tunings of its checkpoints move to
                   work/records/replaced/ (results.json `replaced`) and are redone on the present
                   run; repeatable
Rerunning the same command continues where it stopped; finished work is skipped.";

/// Parsed options.
#[derive(Debug)]
struct Options {
    budget: Budget,
    out: PathBuf,
    data: Option<PathBuf>,
    vocab: PathBuf,
    glue_dir: Option<PathBuf>,
    bin_dir: Option<PathBuf>,
    stop_after: Option<u64>,
    replace_runs: Vec<String>,
}

impl Options {
    fn parse(root: &Path, args: &[String]) -> anyhow::Result<Self> {
        let experiment = match args.first().map(String::as_str) {
            Some(e @ ("equal-compute" | "sharing")) => e,
            Some(other) => bail!("unknown experiment `{other}`\n\n{USAGE}"),
            None => bail!("{USAGE}"),
        };
        let mut budget = None;
        let (mut out, mut data, mut vocab, mut glue_dir, mut bin_dir, mut stop_after) =
            (None, None, None, None, None, None);
        let mut replace_runs = Vec::new();
        let mut rest = args[1..].iter();
        while let Some(flag) = rest.next() {
            let mut value = || {
                rest.next()
                    .cloned()
                    .with_context(|| format!("{flag} needs a value\n\n{USAGE}"))
            };
            match flag.as_str() {
                "--budget" => budget = Some(Budget::of(experiment, &value()?)?),
                "--out" => out = Some(PathBuf::from(value()?)),
                "--data" => data = Some(PathBuf::from(value()?)),
                "--vocab" => vocab = Some(PathBuf::from(value()?)),
                "--glue-dir" => glue_dir = Some(PathBuf::from(value()?)),
                "--bin-dir" => bin_dir = Some(PathBuf::from(value()?)),
                "--stop-after" => {
                    let v = value()?;
                    stop_after = Some(
                        v.parse()
                            .with_context(|| format!("--stop-after {v}: not a step number"))?,
                    );
                }
                "--replace-run" => replace_runs.push(value()?),
                other => bail!("unknown option `{other}`\n\n{USAGE}"),
            }
        }
        let budget = budget.with_context(|| format!("--budget is required\n\n{USAGE}"))?;
        let shared = root.join("../shared/data");
        Ok(Self {
            out: out
                .unwrap_or_else(|| root.join(format!("experiments/{experiment}-{}", budget.name))),
            data,
            vocab: vocab.unwrap_or_else(|| shared.join("vocab/bert-base-uncased-vocab.txt")),
            glue_dir,
            bin_dir,
            stop_after,
            replace_runs,
            budget,
        })
    }
}

/// Runs `cargo xtask experiment ARGS`.
pub fn run(root: &Path, args: &[String]) -> anyhow::Result<()> {
    if args.iter().any(|a| a == "--help" || a == "-h") {
        println!("{USAGE}");
        return Ok(());
    }
    let options = Options::parse(root, args)?;
    let started = Instant::now();
    let budget = &options.budget;
    let layout = Layout::new(&options.out);
    let tools = match &options.bin_dir {
        Some(dir) => Tools::in_dir(dir)?,
        None => Tools::build(root)?,
    };
    let data = match (&options.data, &budget.corpus) {
        (Some(d), Corpus::Demo { .. }) if !d.join("manifest.json").is_file() => bail!(
            "--data {}: the {} budget pre-trains on the demo corpus; --data must be a shard \
             directory (with manifest.json) there",
            d.display(),
            budget.name
        ),
        (Some(d), _) => d.clone(),
        (None, Corpus::Demo { .. }) => layout.shards(),
        (None, Corpus::Files) => root.join("../shared/data/corpus"),
    };
    let shards = pretrain::shards(&layout, budget, &tools, &data, &options.vocab)?;
    let plan = plan::make(budget, &tools, plan::shard_vocab_size(&shards)?)?;
    plan::save_or_check(&layout, &plan)?;
    eprintln!(
        "experiment `{}` in {}: {}",
        budget.name,
        layout.out.display(),
        budget.summary
    );
    for r in &plan.runs {
        eprintln!(
            "  {:<15} {:>7} steps × {:.3e} FLOPs = {:.3e}; checkpoints {:?}",
            r.objective, r.steps, r.train_flops_per_step, r.train_flops_total, r.checkpoints
        );
    }
    let glue_dir = glue_dir(root, &options, &layout)?;
    let tokenizer = shards.join("tokenizer");
    let restored = restore::records(&layout)?;
    if restored != restore::Restored::default() {
        eprintln!(
            "restored from results.json into {}: {} pre-training, {} export, {} fine-tuning \
             and {} replaced-run records",
            layout.work.join("records").display(),
            restored.pretrain,
            restored.exports,
            restored.finetune,
            restored.replaced
        );
    }
    replace_runs(&layout, &plan, &options.replace_runs)?;
    let sitting = Sitting {
        setting: finetune::Setting {
            layout: &layout,
            budget,
            tools: &tools,
            glue_dir: &glue_dir,
            tokenizer: &tokenizer,
        },
        pretraining: pretrain::Pretraining {
            layout: &layout,
            budget,
            tools: &tools,
            shards: &shards,
        },
        plan: &plan,
        started,
        stop_after: options.stop_after,
    };
    if sitting.headline()? == Progress::Stopped || sitting.the_rest()? == Progress::Stopped {
        eprintln!(
            "stopped at step {} (--stop-after); run again to continue",
            options.stop_after.unwrap_or_default()
        );
        return Ok(());
    }
    eprintln!(
        "done in {:.0} s: {} and {}",
        started.elapsed().as_secs_f64(),
        layout.out.join("results.md").display(),
        layout.out.join("results.json").display()
    );
    Ok(())
}

/// `--replace-run`: each named objective's recorded run is replaced, once, by the run in its
/// run directory (pre-trained afresh when there is none; `replace.rs`); a rerun with the same
/// flag finds it replaced and goes on.
fn replace_runs(layout: &Layout, plan: &plan::Plan, objectives: &[String]) -> anyhow::Result<()> {
    for objective in objectives {
        let Some(run) = plan.runs.iter().find(|r| &r.objective == objective) else {
            bail!("--replace-run {objective}: the plan has no such run");
        };
        if layout.replaced_record(objective).exists() {
            eprintln!(
                "--replace-run {objective}: replaced already ({})",
                layout.replaced_record(objective).display()
            );
            continue;
        }
        let planned = replace::Why::Asked {
            planned: &run.checkpoints,
        };
        replace::run(layout, objective, planned)?;
        eprintln!(
            "{objective}: the recorded run is replaced by the run in {} (old records in {})",
            layout.run_dir(objective).display(),
            layout.replaced_record(objective).display()
        );
    }
    Ok(())
}

/// One invocation of the experiment: what its phases share.
struct Sitting<'a> {
    setting: finetune::Setting<'a>,
    pretraining: pretrain::Pretraining<'a>,
    plan: &'a plan::Plan,
    started: Instant,
    stop_after: Option<u64>,
}

impl Sitting<'_> {
    /// ELECTRA and BERT pre-trained, then their final checkpoints and random init fine-tuned,
    /// so an experiment stopped part-way has ELECTRA against BERT earliest.
    fn headline(&self) -> anyhow::Result<Progress> {
        for run in self.plan.runs.iter().filter(|r| is_headline_run(r)) {
            if pretrain::run(&self.pretraining, run, self.stop_after)? == Progress::Stopped {
                self.report()?;
                return Ok(Progress::Stopped);
            }
        }
        let tally = self.finetune(is_headline)?;
        tally.print("headline");
        self.report()?;
        Ok(Progress::Done)
    }

    /// Every other checkpoint, run by run (plan order) and in ascending steps: each pre-trained
    /// (or re-created) and exported, then fine-tuned at once, so every sitting adds finished
    /// points to results.json, whatever stops it.
    fn the_rest(&self) -> anyhow::Result<Progress> {
        let mut tally = Tally::default();
        for run in &self.plan.runs {
            for &step in &run.checkpoints {
                if is_headline_run(run) && step == run.steps {
                    continue;
                }
                let progress =
                    pretrain::checkpoint(&self.pretraining, run, step, self.stop_after, false)?;
                if progress == Progress::Stopped {
                    self.report()?;
                    return Ok(Progress::Stopped);
                }
                let at = |m: &finetune::Model| m.label == run.objective && m.step == step;
                tally.add(self.finetune(at)?);
            }
            pretrain::finish(&self.pretraining, run)?;
        }
        tally.print("the rest");
        self.report()?;
        Ok(Progress::Done)
    }

    /// Every (model, task, seed) unit of the models `wanted` accepts, skipping recorded ones;
    /// a model's checkpoint is re-created first when a unit needs it and it is gone. The
    /// report is rewritten after every unit.
    fn finetune(&self, wanted: impl Fn(&finetune::Model) -> bool) -> anyhow::Result<Tally> {
        let (layout, budget) = (self.setting.layout, self.setting.budget);
        let finals: Vec<(String, u64)> = self
            .plan
            .runs
            .iter()
            .map(|r| (r.objective.clone(), r.steps))
            .collect();
        let mut models = finetune::models(layout, budget, &finals)?;
        models.retain(|m| wanted(m));
        let mut tally = Tally {
            total: models.len() * budget.tasks.len() * budget.seeds as usize,
            ran: 0,
        };
        let mut done = 0;
        for model in &models {
            if finetune::pending(layout, budget, model) {
                self.ensure_checkpoint(model)?;
            }
            for task in &budget.tasks {
                for seed in 1..=budget.seeds {
                    done += 1;
                    eprintln!(
                        "fine-tuning [{done}/{}] {} step {} on {task}, seed {seed}",
                        tally.total, model.label, model.step
                    );
                    if finetune::unit(&self.setting, model, task, seed)? {
                        tally.ran += 1;
                        self.report()?;
                    }
                }
            }
        }
        Ok(tally)
    }

    /// Makes `model`'s checkpoint present (random init: ELECTRA's final one, for its shape).
    fn ensure_checkpoint(&self, model: &finetune::Model) -> anyhow::Result<()> {
        let objective = if model.random_init {
            "electra"
        } else {
            model.label.as_str()
        };
        let Some(run) = self.plan.runs.iter().find(|r| r.objective == objective) else {
            bail!("no run of the plan pre-trains `{objective}`");
        };
        let step = if model.random_init {
            run.steps
        } else {
            model.step
        };
        pretrain::checkpoint(&self.pretraining, run, step, None, true)?;
        Ok(())
    }

    fn report(&self) -> anyhow::Result<()> {
        report::write(
            self.setting.layout,
            self.plan,
            self.started.elapsed().as_secs_f64(),
        )
    }
}

/// Fine-tuning units of a phase: all of them, and those run in this sitting.
#[derive(Clone, Copy, Debug, Default)]
struct Tally {
    total: usize,
    ran: usize,
}

impl Tally {
    fn add(&mut self, other: Tally) {
        self.total += other.total;
        self.ran += other.ran;
    }

    fn print(&self, phase: &str) {
        eprintln!(
            "fine-tuning ({phase}): {} run, {} already recorded",
            self.ran,
            self.total - self.ran
        );
    }
}

/// Objectives pre-trained and fine-tuned before the others: the paper's headline comparison
/// (ELECTRA against BERT at equal compute, Table 1).
const HEADLINE: [&str; 2] = ["electra", "mlm"];

/// Whether a run is one of the [`HEADLINE`] pair.
fn is_headline_run(run: &plan::RunPlan) -> bool {
    HEADLINE.contains(&run.objective.as_str())
}

/// Whether a model belongs to the headline comparison: a final checkpoint of a [`HEADLINE`]
/// objective, or the random initialisation.
fn is_headline(model: &finetune::Model) -> bool {
    model.is_final
        && (model.label == finetune::RANDOM_INIT || HEADLINE.contains(&model.label.as_str()))
}

/// The GLUE directory, checked to hold every task's training file before any work starts.
fn glue_dir(root: &Path, options: &Options, layout: &Layout) -> anyhow::Result<PathBuf> {
    let budget = &options.budget;
    let glue_dir = match &options.glue_dir {
        Some(dir) => dir.clone(),
        None if matches!(budget.corpus, Corpus::Demo { .. }) => {
            generated::write_glue(&layout.generated_glue(), 40)?;
            layout.generated_glue()
        }
        None => root.join("../shared/data/glue"),
    };
    for task in &budget.tasks {
        let train = glue_dir.join(task).join("train.tsv");
        if !train.is_file() {
            bail!(
                "{} not found: --glue-dir must hold {task}/train.tsv",
                train.display()
            );
        }
    }
    Ok(glue_dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_headline_is_the_final_electra_and_mlm_checkpoints_and_random_init() {
        let model = |label: &str, is_final: bool| finetune::Model {
            label: label.into(),
            step: 100,
            pretrain_flops: 1.0,
            checkpoint: PathBuf::from("x"),
            random_init: label == finetune::RANDOM_INIT,
            is_final,
        };
        for label in ["electra", "mlm", finetune::RANDOM_INIT] {
            assert!(is_headline(&model(label, true)), "{label}");
            assert!(
                !is_headline(&model(label, false)),
                "{label} before its last step"
            );
        }
        for label in ["electra-15", "replace-mlm", "all-tokens-mlm"] {
            assert!(!is_headline(&model(label, true)), "{label}");
        }
    }

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn options_default_to_the_shared_data_and_a_budget_directory() {
        let root = Path::new("/repo");
        let o = Options::parse(root, &args(&["equal-compute", "--budget", "mini"])).expect("parse");
        assert_eq!(o.budget.name, "mini");
        assert_eq!(o.out, root.join("experiments/equal-compute-mini"));
        assert_eq!(
            o.vocab,
            root.join("../shared/data/vocab/bert-base-uncased-vocab.txt")
        );
        assert_eq!((o.data, o.glue_dir, o.stop_after), (None, None, None));
        let o = Options::parse(
            root,
            &args(&[
                "equal-compute",
                "--budget",
                "smoke",
                "--out",
                "x",
                "--stop-after",
                "3",
                "--replace-run",
                "mlm",
                "--replace-run",
                "electra-15",
            ]),
        )
        .expect("parse");
        assert_eq!((o.out, o.stop_after), (PathBuf::from("x"), Some(3)));
        assert_eq!(o.replace_runs, ["mlm", "electra-15"]);
        let o = Options::parse(root, &args(&["sharing", "--budget", "mini"])).expect("parse");
        assert_eq!(o.out, root.join("experiments/sharing-mini"));
        assert_eq!(o.budget, budget::Budget::sharing_mini());
    }

    #[test]
    fn bad_options_are_named() {
        let root = Path::new("/repo");
        let err = |a: &[&str]| {
            Options::parse(root, &args(a))
                .expect_err("error")
                .to_string()
        };
        assert!(err(&["equal-compute"]).contains("--budget is required"));
        assert!(err(&["other"]).contains("unknown experiment `other`"));
        assert!(
            err(&["equal-compute", "--budget", "mini", "--fast"])
                .contains("unknown option `--fast`")
        );
        assert!(
            err(&["equal-compute", "--budget", "mini", "--stop-after", "x"])
                .contains("--stop-after x")
        );
        assert!(err(&["equal-compute", "--budget"]).contains("--budget needs a value"));
    }
}
