//! Resolving `--input` arguments (files, directories, globs) to a sorted list of files.

use std::path::{Path, PathBuf};

use crate::error::{DataError, Result};

/// Resolves each input: an existing file is taken as is, a directory is walked recursively
/// (hidden entries skipped), anything else is a glob pattern. The result keeps the order of
/// the inputs, each expanded in sorted order, without duplicates. Nothing found is an error.
pub fn resolve_inputs<S: AsRef<str>>(inputs: &[S]) -> Result<Vec<PathBuf>> {
    let mut out: Vec<PathBuf> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for input in inputs {
        let input = input.as_ref();
        let path = Path::new(input);
        let mut found = Vec::new();
        if path.is_file() {
            found.push(path.to_path_buf());
        } else if path.is_dir() {
            walk(path, &mut found)?;
            found.sort();
            if found.is_empty() {
                return Err(DataError::EmptyCorpus(format!(
                    "directory {input} holds no files"
                )));
            }
        } else {
            let paths = glob::glob(input).map_err(|e| DataError::Config {
                name: "input",
                message: format!("`{input}` is neither a file, a directory nor a valid glob: {e}"),
            })?;
            for entry in paths {
                let p = entry.map_err(|e| {
                    let path = e.path().to_path_buf();
                    DataError::io(path, e.into())
                })?;
                if p.is_file() {
                    found.push(p);
                } else if p.is_dir() {
                    let mut inner = Vec::new();
                    walk(&p, &mut inner)?;
                    inner.sort();
                    found.extend(inner);
                }
            }
            found.sort();
            if found.is_empty() {
                return Err(DataError::EmptyCorpus(format!(
                    "`{input}` matches no file (not a file, directory or matching glob)"
                )));
            }
        }
        for p in found {
            if seen.insert(p.clone()) {
                out.push(p);
            }
        }
    }
    if out.is_empty() {
        return Err(DataError::EmptyCorpus("no input given".to_string()));
    }
    Ok(out)
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    let entries = std::fs::read_dir(dir).map_err(|e| DataError::io(dir, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| DataError::io(dir, e))?;
        let path = entry.path();
        if entry.file_name().to_string_lossy().starts_with('.') {
            continue;
        }
        if path.is_dir() {
            walk(&path, out)?;
        } else if path.is_file() {
            out.push(path);
        }
    }
    Ok(())
}
