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

/// Where a split's rows are and how they are laid out: labelled training rows, labelled
/// validation rows (`dev`, MNLI's `dev_matched` and `dev_mismatched`) and unlabelled test rows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Layouts {
    /// `train.tsv`.
    pub train: Layout,
    /// The dev files.
    pub dev: Layout,
    /// The test files.
    pub test: Layout,
}

/// A validation split evaluated besides the task's dev file, with the prefix of its score
/// names (MNLI mismatched: `mismatched_accuracy`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExtraEvaluation {
    /// The split.
    pub split: Split,
    /// Prefix of its score names in the report.
    pub prefix: &'static str,
}

/// A test-server prediction file written from a task's best model: the file of `split` of
/// `task` (the task itself, or AX for MNLI) is predicted and written as `name`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Submission {
    /// Whose test file is predicted.
    pub task: Task,
    /// Which of its files.
    pub split: Split,
    /// The prediction file's name.
    pub name: &'static str,
}

/// Everything that describes one GLUE task, as data. Adding a task is a [`Task`] variant and
/// its entry in [`Task::spec`]; the loaders, the fine-tuning run ([`crate::glue`]), the
/// metrics and the prediction files read it from here.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TaskSpec {
    /// The GLUE name (`CoLA`, `SST-2`, ...), also the `glue_data` folder name.
    pub name: &'static str,
    /// Folder names that may hold the task: the `glue_data` name first, then the reference
    /// code's lower-case names.
    pub folders: &'static [&'static str],
    /// The file of each split the task has, relative to its folder.
    pub files: &'static [(Split, &'static str)],
    /// Column layouts.
    pub layouts: Layouts,
    /// Class labels as the files write them, in class-index order; empty for regression.
    pub labels: &'static [&'static str],
    /// Whether the examples are sentence pairs.
    pub pair: bool,
    /// The official GLUE metrics (the leaderboard averages them into the task's score).
    pub metrics: &'static [Metric],
    /// The metric the paper reports (and averages into its GLUE score).
    pub paper_metric: Metric,
    /// Fine-tuning epochs of the paper's recipe.
    pub epochs: usize,
    /// Train on the training set doubled with A/B swapped (`double_unordered`, spec 5.1).
    pub symmetric: bool,
    /// Whether the official files are known to hold malformed rows (skipped and counted).
    pub skips_malformed_rows: bool,
    /// Whether the task has training data (AX is predicted with the MNLI model).
    pub trainable: bool,
    /// Validation splits scored besides the dev file.
    pub extra_evaluations: &'static [ExtraEvaluation],
    /// Test-server files written from the task's best model.
    pub submissions: &'static [Submission],
}

/// `[header]`, `columns` fields: id, text A, text B and label columns (0-based).
const fn layout(
    header: bool,
    columns: usize,
    id: Option<usize>,
    text_a: usize,
    text_b: Option<usize>,
    label: Option<usize>,
) -> Layout {
    Layout {
        header,
        columns,
        id,
        text_a,
        text_b,
        label,
    }
}

/// A sentence-pair layout with a header.
const fn pair(
    columns: usize,
    id: Option<usize>,
    a: usize,
    b: usize,
    label: Option<usize>,
) -> Layout {
    layout(true, columns, id, a, Some(b), label)
}

const STANDARD_FILES: &[(Split, &str)] = &[
    (Split::Train, "train.tsv"),
    (Split::Dev, "dev.tsv"),
    (Split::Test, "test.tsv"),
];
const BINARY: &[&str] = &["0", "1"];
const NLI: &[&str] = &["contradiction", "entailment", "neutral"];
const ENTAILMENT: &[&str] = &["entailment", "not_entailment"];
const ACCURACY: &[Metric] = &[Metric::Accuracy];

/// The fields most tasks share; each entry overrides what differs.
const BASE: TaskSpec = TaskSpec {
    name: "",
    folders: &[],
    files: STANDARD_FILES,
    layouts: Layouts {
        train: pair(4, Some(0), 1, 2, Some(3)),
        dev: pair(4, Some(0), 1, 2, Some(3)),
        test: pair(3, Some(0), 1, 2, None),
    },
    labels: BINARY,
    pair: true,
    metrics: ACCURACY,
    paper_metric: Metric::Accuracy,
    epochs: 3,
    symmetric: false,
    skips_malformed_rows: false,
    trainable: true,
    extra_evaluations: &[],
    submissions: &[],
};

const fn submission(task: Task, name: &'static str) -> [Submission; 1] {
    [Submission {
        task,
        split: Split::Test,
        name,
    }]
}

const COLA: TaskSpec = TaskSpec {
    name: "CoLA",
    folders: &["CoLA", "cola"],
    layouts: Layouts {
        train: layout(false, 4, None, 3, None, Some(1)),
        dev: layout(false, 4, None, 3, None, Some(1)),
        test: layout(true, 2, Some(0), 1, None, None),
    },
    pair: false,
    metrics: &[Metric::Mcc],
    paper_metric: Metric::Mcc,
    submissions: &submission(Task::Cola, "CoLA.tsv"),
    ..BASE
};

const SST2: TaskSpec = TaskSpec {
    name: "SST-2",
    folders: &["SST-2", "sst", "sst-2", "sst2"],
    layouts: Layouts {
        train: layout(true, 2, None, 0, None, Some(1)),
        dev: layout(true, 2, None, 0, None, Some(1)),
        test: layout(true, 2, Some(0), 1, None, None),
    },
    pair: false,
    submissions: &submission(Task::Sst2, "SST-2.tsv"),
    ..BASE
};

const MRPC: TaskSpec = TaskSpec {
    name: "MRPC",
    folders: &["MRPC", "mrpc"],
    layouts: Layouts {
        train: pair(5, None, 3, 4, Some(0)),
        dev: pair(5, None, 3, 4, Some(0)),
        test: pair(5, Some(0), 3, 4, None),
    },
    metrics: &[Metric::F1, Metric::Accuracy],
    symmetric: true,
    submissions: &submission(Task::Mrpc, "MRPC.tsv"),
    ..BASE
};

const STSB: TaskSpec = TaskSpec {
    name: "STS-B",
    folders: &["STS-B", "sts", "sts-b", "stsb"],
    layouts: Layouts {
        train: pair(10, Some(0), 7, 8, Some(9)),
        dev: pair(10, Some(0), 7, 8, Some(9)),
        test: pair(9, Some(0), 7, 8, None),
    },
    labels: &[],
    metrics: &[Metric::Pearson, Metric::Spearman],
    paper_metric: Metric::Spearman,
    epochs: 10,
    symmetric: true,
    submissions: &submission(Task::Stsb, "STS-B.tsv"),
    ..BASE
};

const QQP: TaskSpec = TaskSpec {
    name: "QQP",
    folders: &["QQP", "qqp"],
    layouts: Layouts {
        train: pair(6, Some(0), 3, 4, Some(5)),
        dev: pair(6, Some(0), 3, 4, Some(5)),
        test: pair(3, Some(0), 1, 2, None),
    },
    metrics: &[Metric::F1, Metric::Accuracy],
    skips_malformed_rows: true,
    submissions: &submission(Task::Qqp, "QQP.tsv"),
    ..BASE
};

const MNLI: TaskSpec = TaskSpec {
    name: "MNLI",
    folders: &["MNLI", "mnli"],
    files: &[
        (Split::Train, "train.tsv"),
        (Split::Dev, "dev_matched.tsv"),
        (Split::DevMismatched, "dev_mismatched.tsv"),
        (Split::Test, "test_matched.tsv"),
        (Split::TestMismatched, "test_mismatched.tsv"),
    ],
    layouts: Layouts {
        train: pair(12, Some(0), 8, 9, Some(11)),
        dev: pair(16, Some(0), 8, 9, Some(15)),
        test: pair(10, Some(0), 8, 9, None),
    },
    labels: NLI,
    skips_malformed_rows: true,
    extra_evaluations: &[ExtraEvaluation {
        split: Split::DevMismatched,
        prefix: "mismatched_",
    }],
    submissions: &[
        Submission {
            task: Task::Mnli,
            split: Split::Test,
            name: "MNLI-m.tsv",
        },
        Submission {
            task: Task::Mnli,
            split: Split::TestMismatched,
            name: "MNLI-mm.tsv",
        },
        Submission {
            task: Task::Ax,
            split: Split::Test,
            name: "AX.tsv",
        },
    ],
    ..BASE
};

const QNLI: TaskSpec = TaskSpec {
    name: "QNLI",
    folders: &["QNLI", "qnli"],
    labels: ENTAILMENT,
    submissions: &submission(Task::Qnli, "QNLI.tsv"),
    ..BASE
};

const RTE: TaskSpec = TaskSpec {
    name: "RTE",
    folders: &["RTE", "rte"],
    labels: ENTAILMENT,
    epochs: 10,
    submissions: &submission(Task::Rte, "RTE.tsv"),
    ..BASE
};

const WNLI: TaskSpec = TaskSpec {
    name: "WNLI",
    folders: &["WNLI", "wnli"],
    submissions: &submission(Task::Wnli, "WNLI.tsv"),
    ..BASE
};

const AX: TaskSpec = TaskSpec {
    name: "AX",
    folders: &["diagnostic", "AX", "ax"],
    files: &[(Split::Test, "diagnostic.tsv")],
    layouts: Layouts {
        train: pair(3, Some(0), 1, 2, None),
        dev: pair(3, Some(0), 1, 2, None),
        test: pair(3, Some(0), 1, 2, None),
    },
    labels: NLI,
    metrics: &[Metric::Mcc],
    paper_metric: Metric::Mcc,
    trainable: false,
    ..BASE
};

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

    /// The task's description: the one table of per-task facts.
    pub fn spec(self) -> &'static TaskSpec {
        match self {
            Self::Cola => &COLA,
            Self::Sst2 => &SST2,
            Self::Mrpc => &MRPC,
            Self::Stsb => &STSB,
            Self::Qqp => &QQP,
            Self::Mnli => &MNLI,
            Self::Qnli => &QNLI,
            Self::Rte => &RTE,
            Self::Wnli => &WNLI,
            Self::Ax => &AX,
        }
    }

    /// The GLUE name (`CoLA`, `SST-2`, ...), also the `glue_data` folder name.
    pub fn name(self) -> &'static str {
        self.spec().name
    }

    /// All accepted names, for error messages.
    pub fn names() -> String {
        Self::ALL.map(|t| t.name().to_lowercase()).join(", ")
    }

    /// Folder names under the GLUE directory that may hold the task: the `glue_data` name and
    /// the reference code's lower-case name.
    pub fn folders(self) -> &'static [&'static str] {
        self.spec().folders
    }

    /// Whether the task is a regression (STS-B: no class labels).
    pub fn is_regression(self) -> bool {
        self.spec().labels.is_empty()
    }

    /// Whether the examples are sentence pairs.
    pub fn is_pair(self) -> bool {
        self.spec().pair
    }

    /// Class labels as the files write them, in class-index order (the reference's order);
    /// empty for STS-B.
    pub fn labels(self) -> &'static [&'static str] {
        self.spec().labels
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
        self.spec().metrics
    }

    /// The metric the paper reports (and averages into its GLUE score): MCC for CoLA,
    /// Spearman for STS-B, accuracy elsewhere.
    pub fn paper_metric(self) -> Metric {
        self.spec().paper_metric
    }

    /// The reference trains this task on its training set doubled with A/B swapped
    /// (`double_unordered`, spec 5.1): MRPC and STS-B.
    pub fn symmetric(self) -> bool {
        self.spec().symmetric
    }

    /// Fine-tuning epochs of the paper's recipe: 10 for RTE and STS-B, 3 otherwise.
    pub fn epochs(self) -> usize {
        self.spec().epochs
    }

    /// Whether the official files are known to hold malformed rows, which are then skipped and
    /// counted instead of failing the load (QQP and MNLI, as the reference's reader does).
    pub fn skips_malformed_rows(self) -> bool {
        self.spec().skips_malformed_rows
    }

    /// The file of `split`, relative to the task folder; `None` if the task has no such split.
    pub fn file_name(self, split: Split) -> Option<&'static str> {
        self.spec()
            .files
            .iter()
            .find(|(s, _)| *s == split)
            .map(|&(_, name)| name)
    }

    /// The column layout of `split` in the `glue_data` files (spec 6.2).
    pub fn layout(self, split: Split) -> Layout {
        let layouts = &self.spec().layouts;
        match split {
            Split::Train => layouts.train,
            Split::Dev | Split::DevMismatched => layouts.dev,
            Split::Test | Split::TestMismatched => layouts.test,
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
    fn the_spec_table_gives_the_glue_data_files_and_submissions() {
        assert_eq!(Task::Mnli.file_name(Split::Dev), Some("dev_matched.tsv"));
        assert_eq!(
            Task::Mnli.file_name(Split::TestMismatched),
            Some("test_mismatched.tsv")
        );
        assert_eq!(Task::Ax.file_name(Split::Test), Some("diagnostic.tsv"));
        assert_eq!(Task::Ax.file_name(Split::Train), None);
        assert_eq!(Task::Rte.file_name(Split::DevMismatched), None);
        assert!(!Task::Cola.layout(Split::Train).header);
        assert_eq!(Task::Cola.layout(Split::Test).id, Some(0));
        assert_eq!(Task::Qqp.layout(Split::Test).columns, 3);
        assert_eq!(Task::Mnli.layout(Split::TestMismatched).columns, 10);
        for task in Task::ALL {
            let spec = task.spec();
            assert_eq!(spec.name, task.name());
            assert_eq!(
                spec.folders[0],
                if task == Task::Ax {
                    "diagnostic"
                } else {
                    spec.name
                }
            );
            if spec.trainable && task != Task::Mnli {
                assert_eq!(spec.submissions.len(), 1, "{task}");
                assert_eq!(spec.submissions[0].name, format!("{}.tsv", task.name()));
            }
        }
        let mnli: Vec<_> = Task::Mnli
            .spec()
            .submissions
            .iter()
            .map(|s| (s.task, s.split, s.name))
            .collect();
        assert_eq!(
            mnli,
            [
                (Task::Mnli, Split::Test, "MNLI-m.tsv"),
                (Task::Mnli, Split::TestMismatched, "MNLI-mm.tsv"),
                (Task::Ax, Split::Test, "AX.tsv"),
            ]
        );
        assert_eq!(
            Task::Mnli.spec().extra_evaluations[0].split,
            Split::DevMismatched
        );
        assert!(!Task::Ax.spec().trainable);
        assert!(Task::Stsb.is_regression() && !Task::Mrpc.is_regression());
        assert!(Task::Qnli.is_pair() && !Task::Sst2.is_pair());
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
