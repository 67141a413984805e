//! The GLUE tasks: where their files live, how their rows are laid out, what their labels are
//! and which metrics are official (spec 6.1 and 6.2).

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use crate::error::EvalError;

/// One GLUE task, or the AX diagnostic set (test only, scored with an MNLI model).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Task {
    /// Corpus of Linguistic Acceptability: single sentence, acceptable or not.
    Cola,
    /// Stanford Sentiment Treebank: single sentence, positive or negative.
    Sst2,
    /// Microsoft Research Paraphrase Corpus: sentence pair, paraphrase or not.
    Mrpc,
    /// Semantic Textual Similarity Benchmark: sentence pair, similarity 0-5 (regression).
    Stsb,
    /// Quora Question Pairs: question pair, duplicate or not.
    Qqp,
    /// Multi-Genre NLI: premise/hypothesis, three classes (matched and mismatched dev/test).
    Mnli,
    /// Question NLI: question/sentence, does the sentence answer the question.
    Qnli,
    /// Recognizing Textual Entailment: sentence pair, entailment or not.
    Rte,
    /// Winograd NLI: sentence pair, entailment or not.
    Wnli,
    /// The diagnostic set (AX): MNLI-style pairs, test only.
    Ax,
}

/// A file of a task.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Split {
    /// `train.tsv`.
    Train,
    /// `dev.tsv` (MNLI: `dev_matched.tsv`).
    Dev,
    /// MNLI's `dev_mismatched.tsv`.
    DevMismatched,
    /// `test.tsv` (MNLI: `test_matched.tsv`; AX: `diagnostic.tsv`).
    Test,
    /// MNLI's `test_mismatched.tsv`.
    TestMismatched,
}

impl Split {
    /// Whether rows of this split carry labels.
    pub fn is_labelled(self) -> bool {
        matches!(self, Self::Train | Self::Dev | Self::DevMismatched)
    }
}

/// How the rows of one file are laid out (0-based column indices).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Layout {
    /// Whether the first line is a header (MRPC's starts with a UTF-8 BOM).
    pub header: bool,
    /// Number of tab-separated fields every row must have.
    pub columns: usize,
    /// Column of the example's index (used in prediction files), if the file has one.
    pub id: Option<usize>,
    /// Column of the first (or only) text.
    pub text_a: usize,
    /// Column of the second text of pair tasks.
    pub text_b: Option<usize>,
    /// Column of the label, in labelled splits.
    pub label: Option<usize>,
}

/// An official metric.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Metric {
    /// Share of correct predictions.
    Accuracy,
    /// F1 of the positive class ("1").
    F1,
    /// Matthews correlation coefficient.
    Mcc,
    /// Pearson correlation.
    Pearson,
    /// Spearman rank correlation (ties get their average rank).
    Spearman,
}

impl Metric {
    /// Short name used in tables and JSON.
    pub fn name(self) -> &'static str {
        match self {
            Self::Accuracy => "accuracy",
            Self::F1 => "f1",
            Self::Mcc => "mcc",
            Self::Pearson => "pearson",
            Self::Spearman => "spearman",
        }
    }
}

impl Task {
    /// Every task, in the paper's table order, then WNLI and AX.
    pub const ALL: [Task; 10] = [
        Self::Cola,
        Self::Sst2,
        Self::Mrpc,
        Self::Stsb,
        Self::Qqp,
        Self::Mnli,
        Self::Qnli,
        Self::Rte,
        Self::Wnli,
        Self::Ax,
    ];

    /// The GLUE name (`CoLA`, `SST-2`, ...), also the `glue_data` folder name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Cola => "CoLA",
            Self::Sst2 => "SST-2",
            Self::Mrpc => "MRPC",
            Self::Stsb => "STS-B",
            Self::Qqp => "QQP",
            Self::Mnli => "MNLI",
            Self::Qnli => "QNLI",
            Self::Rte => "RTE",
            Self::Wnli => "WNLI",
            Self::Ax => "AX",
        }
    }

    /// All accepted names, for error messages.
    pub fn names() -> String {
        Self::ALL.map(|t| t.name().to_lowercase()).join(", ")
    }

    /// Folder names under the GLUE directory that may hold the task: the `glue_data` name and
    /// the reference code's lower-case name.
    pub fn folders(self) -> &'static [&'static str] {
        match self {
            Self::Cola => &["CoLA", "cola"],
            Self::Sst2 => &["SST-2", "sst", "sst-2", "sst2"],
            Self::Mrpc => &["MRPC", "mrpc"],
            Self::Stsb => &["STS-B", "sts", "sts-b", "stsb"],
            Self::Qqp => &["QQP", "qqp"],
            Self::Mnli => &["MNLI", "mnli"],
            Self::Qnli => &["QNLI", "qnli"],
            Self::Rte => &["RTE", "rte"],
            Self::Wnli => &["WNLI", "wnli"],
            Self::Ax => &["diagnostic", "AX", "ax"],
        }
    }

    /// Whether the task is a regression (STS-B).
    pub fn is_regression(self) -> bool {
        self == Self::Stsb
    }

    /// Whether the examples are sentence pairs.
    pub fn is_pair(self) -> bool {
        !matches!(self, Self::Cola | Self::Sst2)
    }

    /// Class labels as the files write them, in class-index order (the reference's order);
    /// empty for STS-B.
    pub fn labels(self) -> &'static [&'static str] {
        match self {
            Self::Stsb => &[],
            Self::Mnli | Self::Ax => &["contradiction", "entailment", "neutral"],
            Self::Qnli | Self::Rte => &["entailment", "not_entailment"],
            _ => &["0", "1"],
        }
    }

    /// Outputs of the classifier: number of classes, or 1 for regression.
    pub fn num_outputs(self) -> usize {
        if self.is_regression() {
            1
        } else {
            self.labels().len()
        }
    }

    /// The official GLUE metrics (the leaderboard averages them into the task's score).
    pub fn metrics(self) -> &'static [Metric] {
        match self {
            Self::Cola | Self::Ax => &[Metric::Mcc],
            Self::Mrpc | Self::Qqp => &[Metric::F1, Metric::Accuracy],
            Self::Stsb => &[Metric::Pearson, Metric::Spearman],
            _ => &[Metric::Accuracy],
        }
    }

    /// The metric the paper reports (and averages into its GLUE score): MCC for CoLA,
    /// Spearman for STS-B, accuracy elsewhere.
    pub fn paper_metric(self) -> Metric {
        match self {
            Self::Cola | Self::Ax => Metric::Mcc,
            Self::Stsb => Metric::Spearman,
            _ => Metric::Accuracy,
        }
    }

    /// The reference trains this task on its training set doubled with A/B swapped
    /// (`double_unordered`, spec 5.1): MRPC and STS-B.
    pub fn symmetric(self) -> bool {
        matches!(self, Self::Mrpc | Self::Stsb)
    }

    /// Fine-tuning epochs of the paper's recipe: 10 for RTE and STS-B, 3 otherwise.
    pub fn epochs(self) -> usize {
        match self {
            Self::Rte | Self::Stsb => 10,
            _ => 3,
        }
    }

    /// Whether the official files are known to hold malformed rows, which are then skipped and
    /// counted instead of failing the load (QQP and MNLI, as the reference's reader does).
    pub fn skips_malformed_rows(self) -> bool {
        matches!(self, Self::Qqp | Self::Mnli)
    }

    /// The file of `split`, relative to the task folder; `None` if the task has no such split.
    pub fn file_name(self, split: Split) -> Option<&'static str> {
        match (self, split) {
            (Self::Ax, Split::Test) => Some("diagnostic.tsv"),
            (Self::Ax, _) => None,
            (Self::Mnli, Split::Train) => Some("train.tsv"),
            (Self::Mnli, Split::Dev) => Some("dev_matched.tsv"),
            (Self::Mnli, Split::DevMismatched) => Some("dev_mismatched.tsv"),
            (Self::Mnli, Split::Test) => Some("test_matched.tsv"),
            (Self::Mnli, Split::TestMismatched) => Some("test_mismatched.tsv"),
            (_, Split::DevMismatched | Split::TestMismatched) => None,
            (_, Split::Train) => Some("train.tsv"),
            (_, Split::Dev) => Some("dev.tsv"),
            (_, Split::Test) => Some("test.tsv"),
        }
    }

    /// The column layout of `split` in the `glue_data` files (spec 6.2).
    pub fn layout(self, split: Split) -> Layout {
        let labelled = split.is_labelled();
        let pair = |columns: usize, id, a, b, label| Layout {
            header: true,
            columns,
            id,
            text_a: a,
            text_b: Some(b),
            label: if labelled { label } else { None },
        };
        match (self, labelled) {
            (Self::Cola, true) => Layout {
                header: false,
                columns: 4,
                id: None,
                text_a: 3,
                text_b: None,
                label: Some(1),
            },
            (Self::Cola | Self::Sst2, false) => Layout {
                header: true,
                columns: 2,
                id: Some(0),
                text_a: 1,
                text_b: None,
                label: None,
            },
            (Self::Sst2, true) => Layout {
                header: true,
                columns: 2,
                id: None,
                text_a: 0,
                text_b: None,
                label: Some(1),
            },
            (Self::Mrpc, true) => pair(5, None, 3, 4, Some(0)),
            (Self::Mrpc, false) => pair(5, Some(0), 3, 4, None),
            (Self::Stsb, true) => pair(10, Some(0), 7, 8, Some(9)),
            (Self::Stsb, false) => pair(9, Some(0), 7, 8, None),
            (Self::Qqp, true) => pair(6, Some(0), 3, 4, Some(5)),
            (Self::Qqp, false) => pair(3, Some(0), 1, 2, None),
            (Self::Mnli, _) => {
                let columns = match split {
                    Split::Train => 12,
                    Split::Dev | Split::DevMismatched => 16,
                    Split::Test | Split::TestMismatched => 10,
                };
                pair(columns, Some(0), 8, 9, Some(columns - 1))
            }
            (Self::Ax, _) => pair(3, Some(0), 1, 2, None),
            (Self::Qnli | Self::Rte | Self::Wnli, true) => pair(4, Some(0), 1, 2, Some(3)),
            (Self::Qnli | Self::Rte | Self::Wnli, false) => pair(3, Some(0), 1, 2, None),
        }
    }

    /// The test-server prediction file names for this task's test splits (spec 6.2).
    pub fn submission_files(self) -> &'static [(Split, &'static str)] {
        match self {
            Self::Cola => &[(Split::Test, "CoLA.tsv")],
            Self::Sst2 => &[(Split::Test, "SST-2.tsv")],
            Self::Mrpc => &[(Split::Test, "MRPC.tsv")],
            Self::Stsb => &[(Split::Test, "STS-B.tsv")],
            Self::Qqp => &[(Split::Test, "QQP.tsv")],
            Self::Mnli => &[
                (Split::Test, "MNLI-m.tsv"),
                (Split::TestMismatched, "MNLI-mm.tsv"),
            ],
            Self::Qnli => &[(Split::Test, "QNLI.tsv")],
            Self::Rte => &[(Split::Test, "RTE.tsv")],
            Self::Wnli => &[(Split::Test, "WNLI.tsv")],
            Self::Ax => &[(Split::Test, "AX.tsv")],
        }
    }

    /// The task folder under `glue_dir`: the first of [`Self::folders`] that exists; a clear
    /// error naming the expected folder otherwise.
    pub fn folder(self, glue_dir: &Path) -> Result<PathBuf, EvalError> {
        if !glue_dir.is_dir() {
            return Err(EvalError::io(
                glue_dir,
                std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    "the GLUE directory does not exist",
                ),
            ));
        }
        self.folders()
            .iter()
            .map(|f| glue_dir.join(f))
            .find(|p| p.is_dir())
            .ok_or_else(|| EvalError::Missing {
                task: self.name().to_string(),
                dir: glue_dir.to_path_buf(),
                folder: self.folders()[0].to_string(),
                what: "task folder".to_string(),
            })
    }

    /// The path of `split`'s file, checked to exist.
    pub fn path(self, glue_dir: &Path, split: Split) -> Result<PathBuf, EvalError> {
        let folder = self.folder(glue_dir)?;
        let missing = |what: String| EvalError::Missing {
            task: self.name().to_string(),
            dir: glue_dir.to_path_buf(),
            folder: folder
                .file_name()
                .map_or_else(String::new, |f| f.to_string_lossy().into_owned()),
            what,
        };
        let name = self
            .file_name(split)
            .ok_or_else(|| missing(format!("{split:?} split (the task has none)")))?;
        let path = folder.join(name);
        if path.is_file() {
            Ok(path)
        } else {
            Err(missing(name.to_string()))
        }
    }
}

impl fmt::Display for Task {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Task {
    type Err = EvalError;

    /// Case-insensitive GLUE name; also `sst`, `sts`, `sst2`, `stsb`, `diagnostic`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let lower = s.to_lowercase();
        Self::ALL
            .into_iter()
            .find(|t| t.name().to_lowercase() == lower || t.folders().iter().any(|f| *f == lower))
            .ok_or_else(|| EvalError::UnknownTask(s.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_back_case_insensitively() {
        for task in Task::ALL {
            assert_eq!(task.name().parse::<Task>().expect("name"), task);
            assert_eq!(
                task.name().to_lowercase().parse::<Task>().expect("lower"),
                task
            );
        }
        assert_eq!("sts".parse::<Task>().expect("sts"), Task::Stsb);
        assert_eq!("diagnostic".parse::<Task>().expect("ax"), Task::Ax);
        let err = "squad".parse::<Task>().expect_err("unknown").to_string();
        assert!(err.contains("unknown GLUE task `squad`"), "{err}");
        assert!(err.contains("rte"), "{err}");
    }

    #[test]
    fn recipes_follow_the_paper() {
        assert_eq!(Task::Rte.epochs(), 10);
        assert_eq!(Task::Stsb.epochs(), 10);
        assert_eq!(Task::Cola.epochs(), 3);
        assert!(Task::Mrpc.symmetric() && Task::Stsb.symmetric() && !Task::Qqp.symmetric());
        assert_eq!(Task::Stsb.num_outputs(), 1);
        assert_eq!(Task::Mnli.num_outputs(), 3);
        assert_eq!(Task::Mnli.layout(Split::Dev).label, Some(15));
        assert_eq!(Task::Mnli.layout(Split::Train).label, Some(11));
        assert_eq!(Task::Stsb.layout(Split::Test).label, None);
    }

    #[test]
    fn a_missing_task_folder_names_the_expected_path() {
        let dir = tempfile::tempdir().expect("tempdir");
        let err = Task::Rte
            .path(dir.path(), Split::Train)
            .expect_err("missing")
            .to_string();
        assert!(err.contains("RTE: no task folder"), "{err}");
        assert!(err.contains("/RTE/"), "{err}");
        std::fs::create_dir(dir.path().join("RTE")).expect("mkdir");
        let err = Task::Rte
            .path(dir.path(), Split::Dev)
            .expect_err("missing file")
            .to_string();
        assert!(err.contains("no dev.tsv"), "{err}");
    }
}
