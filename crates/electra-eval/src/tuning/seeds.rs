//! Finished seeds kept on disk, so that a multi-seed fine-tuning run that stops (Ctrl-C, a
//! crash, a full disk) resumes by running the same command again: each seed's result is
//! written atomically to `DIR/seed-N.json` once it is complete, and a seed whose file exists
//! is not run again. `DIR/run.json` records what the seeds belong to (the configuration, the
//! checkpoint, the data); a directory that holds seeds of another run is refused rather than
//! mixed into this one.

use std::path::{Path, PathBuf};

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::EvalError;

const IDENTITY: &str = "run.json";

/// The finished seeds of one run.
#[derive(Debug)]
pub struct SeedStore {
    dir: PathBuf,
}

impl SeedStore {
    /// Opens (creating it if needed) the store in `dir` for the run described by `identity`.
    /// A store made for another identity is an error naming both files, unless `replace`,
    /// which removes its seeds first.
    pub fn open(
        dir: &Path,
        identity: &serde_json::Value,
        replace: bool,
    ) -> Result<Self, EvalError> {
        std::fs::create_dir_all(dir).map_err(|e| EvalError::io(dir, e))?;
        let path = dir.join(IDENTITY);
        let store = Self {
            dir: dir.to_path_buf(),
        };
        if path.is_file() {
            let text = std::fs::read_to_string(&path).map_err(|e| EvalError::io(&path, e))?;
            let old: Option<serde_json::Value> = serde_json::from_str(&text).ok();
            if old.as_ref() == Some(identity) {
                return Ok(store);
            }
            if !replace {
                return Err(EvalError::Mismatch(format!(
                    "{} holds the seeds of another run (other data, checkpoint or settings); \
                     pass --overwrite to replace them, or choose another --out",
                    dir.display()
                )));
            }
            store.clear()?;
        }
        let text = serde_json::to_string_pretty(identity)
            .map_err(|e| EvalError::Mismatch(format!("cannot serialise the run: {e}")))?;
        electra_fs::write_atomic(&path, text.as_bytes())?;
        Ok(store)
    }

    /// Removes every finished seed.
    fn clear(&self) -> Result<(), EvalError> {
        for entry in std::fs::read_dir(&self.dir).map_err(|e| EvalError::io(&self.dir, e))? {
            let entry = entry.map_err(|e| EvalError::io(&self.dir, e))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with("seed-") {
                electra_fs::remove_entry(&entry.path())?;
            }
        }
        Ok(())
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Where seed `seed` keeps a file of its own (e.g. its predictions): `DIR/seed-N-NAME`.
    pub fn file(&self, seed: u64, name: &str) -> PathBuf {
        self.dir.join(format!("seed-{seed}-{name}"))
    }

    fn result_path(&self, seed: u64) -> PathBuf {
        self.dir.join(format!("seed-{seed}.json"))
    }

    /// The result of `seed` if it finished in an earlier invocation. A damaged file is an
    /// error naming it (remove it to run the seed again).
    pub fn load<T: DeserializeOwned>(&self, seed: u64) -> Result<Option<T>, EvalError> {
        let path = self.result_path(seed);
        if !path.is_file() {
            return Ok(None);
        }
        let text = std::fs::read_to_string(&path).map_err(|e| EvalError::io(&path, e))?;
        serde_json::from_str(&text).map(Some).map_err(|e| {
            EvalError::format(
                &path,
                e.line(),
                format!("{e}; remove the file to run seed {seed} again"),
            )
        })
    }

    /// Records `seed` as finished with `result` (atomically: a seed is finished or absent).
    pub fn save<T: Serialize>(&self, seed: u64, result: &T) -> Result<(), EvalError> {
        let text = serde_json::to_string_pretty(result)
            .map_err(|e| EvalError::Mismatch(format!("cannot serialise seed {seed}: {e}")))?;
        electra_fs::write_atomic(&self.result_path(seed), text.as_bytes())?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_finished_seed_is_found_again_and_another_run_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let id = serde_json::json!({"lr": 1e-4});
        let store = SeedStore::open(dir.path(), &id, false).expect("open");
        assert_eq!(store.load::<f64>(1).expect("load"), None);
        store.save(1, &0.75).expect("save");
        let again = SeedStore::open(dir.path(), &id, false).expect("reopen");
        assert_eq!(again.load::<f64>(1).expect("load"), Some(0.75));
        let other = serde_json::json!({"lr": 2e-4});
        let err = SeedStore::open(dir.path(), &other, false).expect_err("other run");
        assert!(err.to_string().contains("--overwrite"), "{err}");
        let replaced = SeedStore::open(dir.path(), &other, true).expect("replace");
        assert_eq!(replaced.load::<f64>(1).expect("load"), None);
        std::fs::write(dir.path().join("seed-2.json"), "{").expect("damage");
        let err = replaced.load::<f64>(2).expect_err("damaged");
        assert!(err.to_string().contains("seed-2.json"), "{err}");
    }
}
