//! `electra export RUN_DIR --out DIR`: a run's newest checkpoint as Hugging Face checkpoints.

use std::path::PathBuf;

use anyhow::Context;
use burn::tensor::backend::Backend;
use electra_train::export::export_run;

use crate::backend::BackendTask;

/// Arguments of `electra export`.
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

/// What `--out` receives.
const OUTPUTS: [&str; 2] = ["discriminator", "generator"];

/// The tokenizer files a run directory holds, copied beside each exported model.
const TOKENIZER_FILES: [&str; 2] = ["vocab.txt", "tokenizer.json"];

impl BackendTask for ExportArgs {
    type Output = ();

    fn run<B: Backend>(self, device: B::Device) -> anyhow::Result<()> {
        let old = super::outdir::check(&self.out, &OUTPUTS, "an export", self.overwrite)?;
        // Written into a staging directory and moved into place once complete: a failed
        // export leaves the earlier one as it was.
        std::fs::create_dir_all(&self.out)
            .with_context(|| format!("cannot create {}", self.out.display()))?;
        let staging = super::outdir::staging(&self.out, "export")?;
        self.export_into::<B>(staging.path(), &old, &device)
    }
}

impl ExportArgs {
    fn export_into<B: Backend>(
        &self,
        staging: &std::path::Path,
        old: &[PathBuf],
        device: &B::Device,
    ) -> anyhow::Result<()> {
        let exported = export_run::<B>(&self.run_dir, staging, device)
            .with_context(|| format!("cannot export {}", self.run_dir.display()))?;
        let targets: Vec<&PathBuf> = std::iter::once(&exported.discriminator)
            .chain(exported.generator.as_ref())
            .collect();
        for target in &targets {
            for name in TOKENIZER_FILES {
                let from = self.run_dir.join(name);
                if from.is_file() {
                    std::fs::copy(&from, target.join(name)).with_context(|| {
                        format!("cannot copy {} into {}", from.display(), target.display())
                    })?;
                }
            }
        }
        electra_fs::sync_tree(staging)?;
        for path in old {
            super::outdir::remove(path)?;
        }
        for target in targets {
            let name = target.file_name().context("export target without a name")?;
            let to = self.out.join(name);
            std::fs::rename(target, &to)
                .with_context(|| format!("cannot move the export into {}", to.display()))?;
            println!("wrote {}", to.display());
        }
        println!("from checkpoint {}", exported.checkpoint.display());
        Ok(())
    }
}
