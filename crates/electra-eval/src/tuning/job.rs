//! What every fine-tuning command does around the training: where it starts ([`Start`]: the
//! pre-trained model and the seeds), its output directory (existing results refused unless
//! overwritten, [`claim_outputs`]), and the results files ([`write_results`]).

use std::path::{Path, PathBuf};

use burn::tensor::backend::AutodiffBackend;

use crate::error::EvalError;
use crate::tuning::pretrained::{self, Pretrained};

/// Where fine-tuning starts and with which seeds.
#[derive(Clone, Debug)]
pub struct Start {
    /// An HF ELECTRA directory or an `electra pretrain` run directory.
    pub checkpoint: PathBuf,
    /// The tokenizer; `None`: the one beside the checkpoint.
    pub tokenizer: Option<PathBuf>,
    /// Fine-tune a freshly initialised encoder of the checkpoint's configuration instead.
    pub random_init: bool,
    /// How many seeds (at least one).
    pub seeds: u64,
    /// The first seed; seeds are first, first+1, ...
    pub first_seed: u64,
}

impl Start {
    /// The seeds, first, first+1, ...
    pub fn seed_list(&self) -> Result<Vec<u64>, EvalError> {
        if self.seeds == 0 {
            return Err(EvalError::InvalidConfig(
                "--seeds must be at least 1".to_string(),
            ));
        }
        Ok((0..self.seeds).map(|i| self.first_seed + i).collect())
    }

    /// The pre-trained encoder and tokenizer on `device`; the backend is seeded with the first
    /// seed first (a random-init baseline draws from it).
    pub fn load<B: AutodiffBackend>(&self, device: &B::Device) -> Result<Pretrained<B>, EvalError> {
        B::seed(device, self.first_seed);
        let pre = pretrained::load::<B>(
            &self.checkpoint,
            self.tokenizer.as_deref(),
            self.random_init,
            device,
        )?;
        tracing::info!(checkpoint = %pre.description, "fine-tuning");
        Ok(pre)
    }
}

/// The entries of `out` among `names` that a run would replace: refused (naming them and
/// `--overwrite`) unless `overwrite`. Call it before the long work; remove what it returns
/// once the run can start.
pub fn claim_outputs(
    out: &Path,
    names: &[&str],
    what: &str,
    overwrite: bool,
) -> Result<electra_fs::Outputs, EvalError> {
    Ok(electra_fs::Outputs::find(out, names).refuse_unless(overwrite, what)?)
}

/// Writes `results.md` and `results.json` into `out` atomically; returns both paths.
pub fn write_results(
    out: &Path,
    markdown: &str,
    report: &impl serde::Serialize,
) -> Result<(PathBuf, PathBuf), EvalError> {
    let md = out.join("results.md");
    electra_fs::write_atomic(&md, markdown.as_bytes())?;
    let json = out.join("results.json");
    let text = serde_json::to_string_pretty(report)
        .map_err(|e| EvalError::Mismatch(format!("cannot serialise the report: {e}")))?;
    electra_fs::write_atomic(&json, text.as_bytes())?;
    Ok((md, json))
}

/// Opens `out/metrics.jsonl` (creating `out`): appended to, or truncated when `fresh`.
pub fn open_metrics(out: &Path, fresh: bool) -> Result<(PathBuf, std::fs::File), EvalError> {
    std::fs::create_dir_all(out).map_err(|e| EvalError::io(out, e))?;
    let path = out.join("metrics.jsonl");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(!fresh)
        .write(true)
        .truncate(fresh)
        .open(&path)
        .map_err(|e| EvalError::io(&path, e))?;
    Ok((path, file))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeds_count_up_from_the_first_and_zero_seeds_are_refused() {
        let mut start = Start {
            checkpoint: PathBuf::from("x"),
            tokenizer: None,
            random_init: false,
            seeds: 3,
            first_seed: 7,
        };
        assert_eq!(start.seed_list().expect("seeds"), vec![7, 8, 9]);
        start.seeds = 0;
        let err = start.seed_list().expect_err("no seeds");
        assert!(
            err.to_string().contains("--seeds must be at least 1"),
            "{err}"
        );
    }

    #[test]
    fn metrics_are_appended_unless_fresh() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let out = tmp.path().join("out");
        let write = |fresh: bool, line: &str| {
            use std::io::Write as _;
            let (_, mut file) = open_metrics(&out, fresh).expect("open");
            writeln!(file, "{line}").expect("write");
        };
        write(true, "a");
        write(false, "b");
        let text = std::fs::read_to_string(out.join("metrics.jsonl")).expect("read");
        assert_eq!(text, "a\nb\n");
        write(true, "c");
        let text = std::fs::read_to_string(out.join("metrics.jsonl")).expect("read");
        assert_eq!(text, "c\n");
    }
}
