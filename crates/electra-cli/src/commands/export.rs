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
    /// model.safetensors and the tokenizer files.
    #[arg(long)]
    pub out: PathBuf,
}

/// The tokenizer files a run directory holds, copied beside each exported model.
const TOKENIZER_FILES: [&str; 2] = ["vocab.txt", "tokenizer.json"];

impl BackendTask for ExportArgs {
    type Output = ();

    fn run<B: Backend>(self, device: B::Device) -> anyhow::Result<()> {
        let exported = export_run::<B>(&self.run_dir, &self.out, &device)
            .with_context(|| format!("cannot export {}", self.run_dir.display()))?;
        let targets = std::iter::once(&exported.discriminator).chain(exported.generator.as_ref());
        for target in targets {
            for name in TOKENIZER_FILES {
                let from = self.run_dir.join(name);
                if from.is_file() {
                    std::fs::copy(&from, target.join(name)).with_context(|| {
                        format!("cannot copy {} into {}", from.display(), target.display())
                    })?;
                }
            }
            println!("wrote {}", target.display());
        }
        println!("from checkpoint {}", exported.checkpoint.display());
        Ok(())
    }
}
