//! `electra export RUN_DIR --out DIR`: a run's newest checkpoint as Hugging Face checkpoints
//! (`electra_train::export::export_into`: the refusal, the staging and the tokenizer files).

use std::path::PathBuf;

use anyhow::Context;
use burn::tensor::backend::Backend;
use electra_backend::BackendTask;
use electra_train::export::export_into;

#[derive(Debug, clap::Args)]
pub struct ExportArgs {
    /// The run directory (as written by `electra pretrain`).
    pub run_dir: PathBuf,
    /// Output directory: `discriminator/` (the discriminator-sized network: ElectraForPreTraining,
    /// or ElectraForMaskedLM for the `mlm` and `replace-mlm` baselines) and `generator/`
    /// (ElectraForMaskedLM, when the objective has one), each with config.json,
    /// model.safetensors and the tokenizer files. A directory that already holds either is
    /// refused unless --overwrite is given.
    #[arg(long)]
    pub out: PathBuf,
    /// Replace the `discriminator/` and `generator/` already in --out (both go, so a
    /// `generator/` of an earlier export never stays beside a model that has none).
    #[arg(long)]
    pub overwrite: bool,
}

impl BackendTask for ExportArgs {
    type Output = anyhow::Result<()>;

    fn run<B: Backend>(self, device: B::Device) -> anyhow::Result<()> {
        let exported = export_into::<B>(&self.run_dir, &self.out, self.overwrite, &device)
            .with_context(|| format!("cannot export {}", self.run_dir.display()))?;
        for dir in std::iter::once(&exported.discriminator).chain(&exported.generator) {
            println!("wrote {}", dir.display());
        }
        println!("from checkpoint {}", exported.checkpoint.display());
        Ok(())
    }
}
