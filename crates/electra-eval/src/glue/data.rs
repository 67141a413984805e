//! Reading GLUE TSV files into examples.
//!
//! The files are tab-separated with **no quote handling** (the reference reader disables
//! quoting; many sentences contain `"`), an optional header (CoLA's train and dev files have
//! none; MRPC's header starts with a UTF-8 byte-order mark), and possibly no newline after the
//! last row. A row with the wrong number of fields or an unreadable label is an error naming
//! the file and line, except in QQP and MNLI, whose official files are known to contain such
//! rows: there they are skipped and counted (see [`Dataset::skipped`]).

use std::path::{Path, PathBuf};

use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;

use crate::error::EvalError;
use crate::glue::task::{Split, Task};

/// The gold label of an example.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Label {
    /// Class index into [`Task::labels`].
    Class(usize),
    /// STS-B similarity score (0-5).
    Score(f32),
}

impl Label {
    /// The class index (0 for a score).
    pub fn class(self) -> usize {
        match self {
            Self::Class(c) => c,
            Self::Score(_) => 0,
        }
    }

    /// The value as a float (the class index for classes).
    pub fn value(self) -> f32 {
        match self {
            Self::Class(c) => c as f32,
            Self::Score(s) => s,
        }
    }
}

/// One example.
#[derive(Clone, Debug, PartialEq)]
pub struct Example {
    /// The example's index as the file gives it (or its 0-based row number).
    pub id: String,
    /// The (first) text.
    pub text_a: String,
    /// The second text of a pair task.
    pub text_b: Option<String>,
    /// The gold label (absent in test files).
    pub label: Option<Label>,
}

/// The examples of one file.
#[derive(Clone, Debug)]
pub struct Dataset {
    /// The task.
    pub task: Task,
    /// The split.
    pub split: Split,
    /// Where it was read from (or how it was made, for carved validation splits).
    pub source: PathBuf,
    /// The examples, in file order.
    pub examples: Vec<Example>,
    /// Line numbers (1-based) of malformed rows that were skipped (QQP and MNLI only).
    pub skipped: Vec<usize>,
}

impl Dataset {
    /// Number of examples.
    pub fn len(&self) -> usize {
        self.examples.len()
    }

    /// Whether there are no examples.
    pub fn is_empty(&self) -> bool {
        self.examples.is_empty()
    }

    /// Every example's label, or an error naming the first unlabelled one.
    pub fn labels(&self) -> Result<Vec<Label>, EvalError> {
        self.examples
            .iter()
            .map(|e| {
                e.label.ok_or_else(|| {
                    EvalError::Mismatch(format!(
                        "{}: example {} has no label",
                        self.source.display(),
                        e.id
                    ))
                })
            })
            .collect()
    }
}

/// Reads `split` of `task` from the `glue_data` directory `glue_dir`.
pub fn load(glue_dir: &Path, task: Task, split: Split) -> Result<Dataset, EvalError> {
    let path = task.path(glue_dir, split)?;
    read_file(&path, task, split)
}

/// Reads one GLUE file laid out as `task`'s `split`.
pub fn read_file(path: &Path, task: Task, split: Split) -> Result<Dataset, EvalError> {
    let text = crate::error::read_utf8(path)?;
    parse(&text, path, task, split)
}

/// Parses the text of a GLUE file (`path` is used in errors only).
pub fn parse(text: &str, path: &Path, task: Task, split: Split) -> Result<Dataset, EvalError> {
    let layout = task.layout(split);
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut examples = Vec::new();
    let mut skipped = Vec::new();
    let skip_bad = task.skips_malformed_rows();
    let mut rows: Vec<&str> = text.split('\n').collect();
    // A final newline leaves one empty piece at the end; without it there is none.
    if rows.last().is_some_and(|r| r.is_empty()) {
        rows.pop();
    }
    for (i, raw) in rows.into_iter().enumerate() {
        let line = i + 1;
        let row = raw.strip_suffix('\r').unwrap_or(raw);
        if layout.header && i == 0 {
            continue;
        }
        match parse_row(row, examples.len(), task, split) {
            Ok(example) => examples.push(example),
            Err(_) if skip_bad => skipped.push(line),
            Err(message) => return Err(EvalError::format(path, line, message)),
        }
    }
    if !skipped.is_empty() {
        tracing::warn!(
            file = %path.display(),
            skipped = skipped.len(),
            "skipped malformed rows (known in the official {} files)",
            task
        );
    }
    Ok(Dataset {
        task,
        split,
        source: path.to_path_buf(),
        examples,
        skipped,
    })
}

fn parse_row(row: &str, index: usize, task: Task, split: Split) -> Result<Example, String> {
    let layout = task.layout(split);
    let fields: Vec<&str> = row.split('\t').collect();
    if fields.len() != layout.columns {
        return Err(format!(
            "expected {} tab-separated fields for {task} {split:?}, found {}",
            layout.columns,
            fields.len()
        ));
    }
    let label = match layout.label {
        None => None,
        Some(col) => Some(parse_label(fields[col].trim(), task)?),
    };
    let id = match layout.id {
        Some(col) => fields[col].trim().to_string(),
        None => index.to_string(),
    };
    Ok(Example {
        id,
        text_a: fields[layout.text_a].to_string(),
        text_b: layout.text_b.map(|c| fields[c].to_string()),
        label,
    })
}

/// Parses a label as `task` writes it; the error says what was expected.
pub fn parse_label(field: &str, task: Task) -> Result<Label, String> {
    if task.is_regression() {
        return match field.parse::<f32>() {
            Ok(v) if v.is_finite() => Ok(Label::Score(v)),
            _ => Err(format!(
                "label `{field}` is not a number (expected a score 0-5)"
            )),
        };
    }
    task.labels()
        .iter()
        .position(|l| *l == field)
        .map(Label::Class)
        .ok_or_else(|| {
            format!(
                "label `{field}` is not one of {:?} (expected for {task})",
                task.labels()
            )
        })
}

/// Splits `data` into a training part and a held-out validation part of
/// `round(fraction · n)` examples (at least one), drawn by a seeded shuffle: the same seed
/// always holds out the same examples, whatever the fine-tuning seed. Used for tasks whose
/// dev file is not available; the validation part's `source` says how it was made.
pub fn carve_validation(
    data: &Dataset,
    fraction: f64,
    seed: u64,
) -> Result<(Dataset, Dataset), EvalError> {
    if !(fraction > 0.0 && fraction < 1.0) {
        return Err(EvalError::InvalidConfig(format!(
            "validation fraction must be in (0, 1), got {fraction}"
        )));
    }
    let n = data.len();
    let held = ((fraction * n as f64).round() as usize).max(1);
    if held >= n {
        return Err(EvalError::InvalidConfig(format!(
            "{}: {n} examples are too few to hold out {held} for validation",
            data.source.display()
        )));
    }
    let mut order: Vec<usize> = (0..n).collect();
    order.shuffle(&mut ChaCha8Rng::seed_from_u64(seed));
    let mut held_out: Vec<usize> = order[..held].to_vec();
    let mut kept: Vec<usize> = order[held..].to_vec();
    held_out.sort_unstable();
    kept.sort_unstable();
    let pick = |idx: &[usize]| idx.iter().map(|&i| data.examples[i].clone()).collect();
    let train = Dataset {
        examples: pick(&kept),
        ..data.clone()
    };
    let validation = Dataset {
        split: Split::Dev,
        source: PathBuf::from(format!(
            "{} (held-out {:.0}% of train, seed {seed})",
            data.source.display(),
            fraction * 100.0
        )),
        examples: pick(&held_out),
        skipped: Vec::new(),
        ..data.clone()
    };
    Ok((train, validation))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_str(text: &str, task: Task, split: Split) -> Result<Dataset, EvalError> {
        parse(text, Path::new("x/dev.tsv"), task, split)
    }

    #[test]
    fn cola_has_no_header_and_may_lack_the_final_newline() {
        let text = "gj04\t1\t\tThe sailors rode the breeze.\ngj04\t0\t*\tThe more.";
        let d = parse_str(text, Task::Cola, Split::Dev).expect("parse");
        assert_eq!(d.len(), 2);
        assert_eq!(d.examples[0].text_a, "The sailors rode the breeze.");
        assert_eq!(d.examples[1].label, Some(Label::Class(0)));
        assert_eq!(d.examples[1].id, "1");
        let with_newline = parse_str(&format!("{text}\n"), Task::Cola, Split::Dev).expect("nl");
        assert_eq!(with_newline.examples, d.examples);
    }

    #[test]
    fn mrpc_header_with_a_bom_and_quotes_are_kept_verbatim() {
        let text = "\u{feff}Quality\t#1 ID\t#2 ID\t#1 String\t#2 String\r\n\
                    1\t70\t71\tHe said \"hi\" .\tHe said \"hello\" .\r\n";
        let d = parse_str(text, Task::Mrpc, Split::Train).expect("parse");
        assert_eq!(d.len(), 1);
        assert_eq!(d.examples[0].text_a, "He said \"hi\" .");
        assert_eq!(d.examples[0].text_b.as_deref(), Some("He said \"hello\" ."));
        assert_eq!(d.examples[0].label, Some(Label::Class(1)));
    }

    #[test]
    fn stsb_scores_and_nli_labels() {
        let header = "index\tgenre\tfilename\tyear\told_index\tsource1\tsource2\tsentence1\tsentence2\tscore\n";
        let row = "0\tmain\tf\t2012\t1\tnone\tnone\tA plane.\tAn air plane.\t4.750\n";
        let d = parse_str(&format!("{header}{row}"), Task::Stsb, Split::Train).expect("parse");
        assert_eq!(d.examples[0].label, Some(Label::Score(4.75)));
        let rte = "index\tsentence1\tsentence2\tlabel\n7\ta\tb\tnot_entailment\n";
        let d = parse_str(rte, Task::Rte, Split::Train).expect("rte");
        assert_eq!(d.examples[0].label, Some(Label::Class(1)));
        assert_eq!(d.examples[0].id, "7");
        let test = "index\tsentence1\tsentence2\n3\ta\tb\n";
        let d = parse_str(test, Task::Rte, Split::Test).expect("test");
        assert_eq!(d.examples[0].label, None);
    }

    #[test]
    fn a_malformed_row_names_file_and_line() {
        let rte = "index\tsentence1\tsentence2\tlabel\n0\ta\tb\tentailment\n1\ta b\tentailment\n";
        let err = parse_str(rte, Task::Rte, Split::Train)
            .expect_err("bad")
            .to_string();
        assert!(err.starts_with("x/dev.tsv:3:"), "{err}");
        assert!(err.contains("expected 4 tab-separated fields"), "{err}");
        let bad_label = "index\tsentence1\tsentence2\tlabel\n0\ta\tb\tmaybe\n";
        let err = parse_str(bad_label, Task::Rte, Split::Train)
            .expect_err("label")
            .to_string();
        assert!(
            err.contains(":2:") && err.contains("label `maybe`"),
            "{err}"
        );
    }

    #[test]
    fn qqp_skips_and_counts_malformed_rows() {
        let text = "id\tqid1\tqid2\tquestion1\tquestion2\tis_duplicate\n\
                    1\t1\t2\tq a\tq b\t0\n\
                    2\t3\t4\tbroken row\n\
                    3\t5\t6\tq c\tq d\t1\n";
        let d = parse_str(text, Task::Qqp, Split::Train).expect("parse");
        assert_eq!(d.len(), 2);
        assert_eq!(d.skipped, vec![3]);
    }

    #[test]
    fn carved_validation_is_seeded_and_disjoint() {
        let text: String = (0..50)
            .map(|i| format!("s\t{}\t\tsentence {i}\n", i % 2))
            .collect();
        let d = parse_str(&text, Task::Cola, Split::Train).expect("parse");
        let (train, val) = carve_validation(&d, 0.1, 7).expect("split");
        assert_eq!((train.len(), val.len()), (45, 5));
        let (_, again) = carve_validation(&d, 0.1, 7).expect("split");
        assert_eq!(val.examples, again.examples);
        let (_, other) = carve_validation(&d, 0.1, 8).expect("split");
        assert_ne!(val.examples, other.examples);
        for e in &val.examples {
            assert!(!train.examples.contains(e));
        }
    }
}
