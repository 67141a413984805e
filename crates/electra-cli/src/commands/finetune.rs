//! `electra finetune --task T --glue-dir DIR --checkpoint X`: one GLUE task over several
//! seeds (the same run as `electra glue --tasks T`, but a missing task is an error).

use electra_eval::Task;

use crate::commands::glue::{GlueRun, TuneArgs};

#[derive(Debug, clap::Args)]
pub struct FinetuneArgs {
    /// The task: cola, sst-2, mrpc, sts-b, qqp, mnli, qnli, rte, wnli.
    #[arg(long)]
    pub task: String,
    /// Checkpoint, data and recipe.
    #[command(flatten)]
    pub tune: TuneArgs,
}

impl FinetuneArgs {
    /// The run these arguments ask for.
    pub fn into_run(self) -> anyhow::Result<GlueRun> {
        let task: Task = self.task.parse()?;
        if task == Task::Ax {
            anyhow::bail!("AX has no training data: it is predicted with the MNLI model");
        }
        Ok(GlueRun(self.tune.job(vec![task], true)?))
    }
}
