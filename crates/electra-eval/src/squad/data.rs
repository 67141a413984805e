//! Reading SQuAD files: the official JSON of v1.1 and v2.0,
//! `{"version": ..., "data": [{"title", "paragraphs": [{"context", "qas": [{"id", "question",
//! "answers": [{"text", "answer_start"}], "is_impossible", "plausible_answers"}]}]}]}`.
//!
//! Everything a question carries is kept (its id, text, every answer and plausible answer,
//! `is_impossible`, the paragraph and article it belongs to), in file order. `answer_start` is
//! a character offset into the context as Python counts characters (Unicode code points), as
//! the official files define it. Keys the format does not define are ignored.
//!
//! A file that is not UTF-8 or not JSON, or that lacks a required key or has one of the wrong
//! type, is an error naming the file and where: the question id when there is one, and the
//! JSON path (`data[3].paragraphs[2].qas[5]`). So are an empty context (nothing to answer
//! from) and a question id given twice (predictions are keyed by id). An `answer_start` that
//! does not point at its answer's text is not an error here: training skips such questions
//! (see [`answer_span`]), and scoring never reads offsets.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use serde_json::{Map, Value};

use crate::error::EvalError;

/// The SQuAD version, which decides the metrics (1.1: every question has an answer; 2.0: some
/// have none, predicted as the empty string).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum Version {
    /// SQuAD 1.1.
    #[serde(rename = "1.1")]
    V1_1,
    /// SQuAD 2.0.
    #[serde(rename = "2.0")]
    V2_0,
}

impl Version {
    /// `1.1` or `2.0`.
    pub fn name(self) -> &'static str {
        match self {
            Self::V1_1 => "1.1",
            Self::V2_0 => "2.0",
        }
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Version {
    type Err = EvalError;

    /// `1.1`, `v1.1`, `2.0`, `v2.0` or `2`.
    fn from_str(s: &str) -> Result<Self, EvalError> {
        match s.trim().trim_start_matches(['v', 'V']) {
            "1.1" => Ok(Self::V1_1),
            "2.0" | "2" => Ok(Self::V2_0),
            other => Err(EvalError::InvalidConfig(format!(
                "unknown SQuAD version `{other}`: expected 1.1 or 2.0"
            ))),
        }
    }
}

/// One answer: its text and where it starts in the context.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Answer {
    /// The answer as annotated.
    pub text: String,
    /// Character (code point) offset of its start in the context.
    pub answer_start: usize,
}

/// One question.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Question {
    /// The question's id (what predictions are keyed by).
    pub id: String,
    /// The question text.
    pub question: String,
    /// Index of its paragraph in [`SquadFile::paragraphs`].
    pub paragraph: usize,
    /// The gold answers (several in dev files; none for 2.0's unanswerable questions).
    pub answers: Vec<Answer>,
    /// Whether the file gave `answers` at all (test files and user questions do not).
    pub has_answers_key: bool,
    /// 2.0's `is_impossible` (absent in 1.1 files).
    pub is_impossible: Option<bool>,
    /// 2.0's `plausible_answers` of unanswerable questions (kept, not used).
    pub plausible_answers: Vec<Answer>,
    /// Where the question is in the file (`data[i].paragraphs[j].qas[k]`), for messages.
    pub at: String,
}

impl Question {
    /// How messages name this question: its id and JSON path.
    pub fn location(&self) -> String {
        format!("question {:?} ({})", self.id, self.at)
    }

    /// Whether training treats it as unanswerable (2.0's `is_impossible`, as the reference
    /// reads it; a 1.1 question never is).
    pub fn is_impossible(&self) -> bool {
        self.is_impossible.unwrap_or(false)
    }
}

/// One paragraph: a context shared by its questions.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Paragraph {
    /// The article's title (empty when absent).
    pub title: String,
    /// The text answers are extracted from.
    pub context: String,
}

/// A SQuAD file read.
#[derive(Clone, Debug)]
pub struct SquadFile {
    /// Where it was read from.
    pub path: PathBuf,
    /// The top-level `version`, as written (`"1.1"`, `"v2.0"`, ...).
    pub version: Option<String>,
    /// Every paragraph, in file order.
    pub paragraphs: Vec<Paragraph>,
    /// Every question, in file order.
    pub questions: Vec<Question>,
}

impl SquadFile {
    /// Reads `path` (see the module docs for what is an error).
    pub fn read(path: &Path) -> Result<Self, EvalError> {
        let text = crate::error::read_utf8(path)?;
        Self::parse(&text, path)
    }

    /// Parses the text of a SQuAD file (`path` names it in errors).
    pub fn parse(text: &str, path: &Path) -> Result<Self, EvalError> {
        let value: Value = serde_json::from_str(text)
            .map_err(|e| EvalError::format(path, e.line(), format!("not valid JSON: {e}")))?;
        Reader::new(path).file(&value)
    }

    /// The version to score and train with: `explicit` if given, else the file's `version`
    /// (`1.1`, `v2.0`, ...), else 2.0 when any question has `is_impossible`, else 1.1.
    pub fn resolve_version(&self, explicit: Option<Version>) -> Version {
        if let Some(v) = explicit {
            return v;
        }
        if let Some(v) = self.version.as_deref().and_then(|v| v.parse().ok()) {
            return v;
        }
        if self.questions.iter().any(|q| q.is_impossible.is_some()) {
            Version::V2_0
        } else {
            Version::V1_1
        }
    }

    /// The context of `question`.
    pub fn context(&self, question: &Question) -> &str {
        &self.paragraphs[question.paragraph].context
    }

    /// Number of questions.
    pub fn len(&self) -> usize {
        self.questions.len()
    }

    /// Whether there are no questions.
    pub fn is_empty(&self) -> bool {
        self.questions.is_empty()
    }
}

/// The byte range of `answer` in `context`, or why its `answer_start` does not point at its
/// text (the start is past the end of the context, or the context holds other text there).
pub fn answer_span(context: &str, answer: &Answer) -> Result<(usize, usize), String> {
    let start = context
        .char_indices()
        .nth(answer.answer_start)
        .map(|(b, _)| b)
        .or((answer.answer_start == context.chars().count()).then_some(context.len()))
        .ok_or_else(|| {
            format!(
                "answer_start {} is past the end of the context ({} characters)",
                answer.answer_start,
                context.chars().count()
            )
        })?;
    let end = start + answer.text.len();
    if context.get(start..end) == Some(answer.text.as_str()) {
        Ok((start, end))
    } else {
        let found: String = context[start..]
            .chars()
            .take(answer.text.chars().count())
            .collect();
        Err(format!(
            "answer_start {} does not point at the answer {:?}: the context has {:?} there",
            answer.answer_start, answer.text, found
        ))
    }
}

/// Walks the JSON, naming where it is in every error.
struct Reader<'a> {
    path: &'a Path,
}

impl<'a> Reader<'a> {
    fn new(path: &'a Path) -> Self {
        Self { path }
    }

    fn error(&self, at: impl Into<String>, message: impl Into<String>) -> EvalError {
        EvalError::Squad {
            path: self.path.to_path_buf(),
            at: at.into(),
            message: message.into(),
        }
    }

    fn object<'v>(&self, value: &'v Value, at: &str) -> Result<&'v Map<String, Value>, EvalError> {
        value
            .as_object()
            .ok_or_else(|| self.error(at, format!("expected an object, found {}", kind(value))))
    }

    fn array<'v>(
        &self,
        map: &'v Map<String, Value>,
        key: &str,
        at: &str,
    ) -> Result<&'v [Value], EvalError> {
        match map.get(key) {
            Some(Value::Array(items)) => Ok(items),
            Some(other) => Err(self.error(
                at,
                format!("key `{key}`: expected a list, found {}", kind(other)),
            )),
            None => Err(self.error(at, format!("missing key `{key}` (a list)"))),
        }
    }

    fn string(&self, map: &Map<String, Value>, key: &str, at: &str) -> Result<String, EvalError> {
        match map.get(key) {
            Some(Value::String(s)) => Ok(s.clone()),
            Some(other) => Err(self.error(
                at,
                format!("key `{key}`: expected a string, found {}", kind(other)),
            )),
            None => Err(self.error(at, format!("missing key `{key}` (a string)"))),
        }
    }

    fn file(&self, value: &Value) -> Result<SquadFile, EvalError> {
        let top = self.object(value, "the top level")?;
        let version = match top.get("version") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(Value::Number(n)) => Some(n.to_string()),
            Some(other) => {
                return Err(self.error(
                    "key `version`",
                    format!("expected a string such as \"v2.0\", found {}", kind(other)),
                ));
            }
        };
        let mut file = SquadFile {
            path: self.path.to_path_buf(),
            version,
            paragraphs: Vec::new(),
            questions: Vec::new(),
        };
        let mut seen: HashMap<String, String> = HashMap::new();
        for (i, article) in self.array(top, "data", "the top level")?.iter().enumerate() {
            let at = format!("data[{i}]");
            let article = self.object(article, &at)?;
            let title = match article.get("title") {
                Some(Value::String(t)) => t.clone(),
                _ => String::new(),
            };
            for (j, paragraph) in self.array(article, "paragraphs", &at)?.iter().enumerate() {
                let at = format!("data[{i}].paragraphs[{j}]");
                self.paragraph(paragraph, &at, &title, &mut file, &mut seen)?;
            }
        }
        Ok(file)
    }

    fn paragraph(
        &self,
        value: &Value,
        at: &str,
        title: &str,
        file: &mut SquadFile,
        seen: &mut HashMap<String, String>,
    ) -> Result<(), EvalError> {
        let paragraph = self.object(value, at)?;
        let context = self.string(paragraph, "context", at)?;
        let index = file.paragraphs.len();
        let qas = self.array(paragraph, "qas", at)?;
        for (k, qa) in qas.iter().enumerate() {
            let q_at = format!("{at}.qas[{k}]");
            let question = self.question(qa, &q_at, index)?;
            if context.trim().is_empty() {
                return Err(self.error(
                    question.location(),
                    "the paragraph's context is empty: there is nothing to answer from",
                ));
            }
            if let Some(first) = seen.insert(question.id.clone(), q_at.clone()) {
                return Err(self.error(
                    question.location(),
                    format!("the id is used twice (also at {first}); predictions are keyed by id"),
                ));
            }
            file.questions.push(question);
        }
        file.paragraphs.push(Paragraph {
            title: title.to_string(),
            context,
        });
        Ok(())
    }

    fn question(&self, value: &Value, at: &str, paragraph: usize) -> Result<Question, EvalError> {
        let qa = self.object(value, at)?;
        let id = match qa.get("id") {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Number(n)) => n.to_string(),
            Some(other) => {
                return Err(self.error(
                    at,
                    format!("key `id`: expected a string, found {}", kind(other)),
                ));
            }
            None => return Err(self.error(at, "missing key `id` (the question's id)")),
        };
        let location = format!("question {id:?} ({at})");
        let question = self.string(qa, "question", &location)?;
        let has_answers_key = qa.contains_key("answers");
        let answers = if has_answers_key {
            self.answers(qa, "answers", &location)?
        } else {
            Vec::new()
        };
        let plausible_answers = if qa.contains_key("plausible_answers") {
            self.answers(qa, "plausible_answers", &location)?
        } else {
            Vec::new()
        };
        let is_impossible = match qa.get("is_impossible") {
            None | Some(Value::Null) => None,
            Some(Value::Bool(b)) => Some(*b),
            Some(other) => {
                return Err(self.error(
                    location,
                    format!(
                        "key `is_impossible`: expected true or false, found {}",
                        kind(other)
                    ),
                ));
            }
        };
        Ok(Question {
            id,
            question,
            paragraph,
            answers,
            has_answers_key,
            is_impossible,
            plausible_answers,
            at: at.to_string(),
        })
    }

    fn answers(
        &self,
        qa: &Map<String, Value>,
        key: &str,
        location: &str,
    ) -> Result<Vec<Answer>, EvalError> {
        let mut out = Vec::new();
        for (n, answer) in self.array(qa, key, location)?.iter().enumerate() {
            let at = format!("{location}, {key}[{n}]");
            let answer = self.object(answer, &at)?;
            let text = self.string(answer, "text", &at)?;
            let answer_start = match answer.get("answer_start") {
                Some(Value::Number(n)) => n.as_u64().and_then(|v| usize::try_from(v).ok()),
                None => return Err(self.error(at, "missing key `answer_start` (an integer)")),
                Some(_) => None,
            }
            .ok_or_else(|| {
                self.error(
                    &at,
                    format!(
                        "key `answer_start`: expected a character offset (an integer ≥ 0), found {}",
                        answer.get("answer_start").map_or("nothing".into(), kind)
                    ),
                )
            })?;
            out.push(Answer { text, answer_start });
        }
        Ok(out)
    }
}

/// A JSON value's kind and, for scalars, the value, for messages.
fn kind(value: &Value) -> String {
    match value {
        Value::Null => "null".to_string(),
        Value::Bool(b) => format!("{b}"),
        Value::Number(n) => format!("the number {n}"),
        Value::String(s) => format!("the string {s:?}"),
        Value::Array(_) => "a list".to_string(),
        Value::Object(_) => "an object".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<SquadFile, EvalError> {
        SquadFile::parse(text, Path::new("x/dev.json"))
    }

    const V2: &str = r#"{"version": "v2.0", "data": [{"title": "T", "paragraphs": [
        {"context": "Ünïcode café: Paris is in France.", "qas": [
          {"id": "a", "question": "Where is Paris?", "is_impossible": false,
           "answers": [{"text": "France", "answer_start": 26}, {"text": "in France", "answer_start": 23}]},
          {"id": "b", "question": "Where is Rome?", "is_impossible": true, "answers": [],
           "plausible_answers": [{"text": "France", "answer_start": 26}]}]}]}]}"#;

    #[test]
    fn a_v2_file_is_read_without_loss() {
        let f = parse(V2).expect("parse");
        assert_eq!(f.version.as_deref(), Some("v2.0"));
        assert_eq!(f.resolve_version(None), Version::V2_0);
        assert_eq!(f.resolve_version(Some(Version::V1_1)), Version::V1_1);
        assert_eq!(f.paragraphs[0].title, "T");
        let (a, b) = (&f.questions[0], &f.questions[1]);
        assert_eq!((a.id.as_str(), a.answers.len()), ("a", 2));
        assert_eq!(a.is_impossible, Some(false));
        assert!(b.is_impossible() && b.answers.is_empty() && b.has_answers_key);
        assert_eq!(b.plausible_answers[0].text, "France");
        assert_eq!(b.at, "data[0].paragraphs[0].qas[1]");
        // Character offsets, not bytes: "Ü", "ï" and "é" take two bytes each.
        let ctx = f.context(a);
        let (s, e) = answer_span(ctx, &a.answers[0]).expect("span");
        assert_eq!(&ctx[s..e], "France");
        assert_eq!(s, 29);
    }

    #[test]
    fn the_version_falls_back_to_is_impossible() {
        let v1 = r#"{"data": [{"paragraphs": [{"context": "c d", "qas": [
            {"id": "1", "question": "q", "answers": [{"text": "d", "answer_start": 2}]}]}]}]}"#;
        assert_eq!(parse(v1).expect("v1").resolve_version(None), Version::V1_1);
        let numeric = V2.replace("\"v2.0\"", "2.0");
        assert_eq!(
            parse(&numeric).expect("num").version.as_deref(),
            Some("2.0")
        );
        let unversioned = V2.replace("\"version\": \"v2.0\", ", "");
        assert_eq!(
            parse(&unversioned).expect("none").resolve_version(None),
            Version::V2_0
        );
    }

    #[test]
    fn answers_that_do_not_match_their_offset_are_described() {
        let context = "abc def";
        let ok = Answer {
            text: "def".into(),
            answer_start: 4,
        };
        assert_eq!(answer_span(context, &ok), Ok((4, 7)));
        let shifted = Answer {
            text: "def".into(),
            answer_start: 3,
        };
        let msg = answer_span(context, &shifted).expect_err("shifted");
        assert!(msg.contains("\" de\""), "{msg}");
        let past = Answer {
            text: "x".into(),
            answer_start: 99,
        };
        assert!(
            answer_span(context, &past)
                .expect_err("past")
                .contains("past the end")
        );
    }

    /// Each malformed input is an error naming the file, the question id when there is one,
    /// the JSON path and what was expected.
    #[test]
    fn malformed_files_name_the_file_the_question_and_the_key() {
        let cases: [(&str, &[&str]); 9] = [
            ("{\"data\": [", &["x/dev.json:1:", "not valid JSON"]),
            ("[]", &["the top level", "expected an object"]),
            ("{\"version\": \"1.1\"}", &["missing key `data`"]),
            (
                r#"{"data": [{"paragraphs": [{"qas": []}]}]}"#,
                &["data[0].paragraphs[0]", "missing key `context`"],
            ),
            (
                r#"{"data": [{"paragraphs": [{"context": "c", "qas": [{"id": "q7"}]}]}]}"#,
                &["question \"q7\"", "qas[0]", "missing key `question`"],
            ),
            (
                r#"{"data": [{"paragraphs": [{"context": "c", "qas": [{"id": "q8", "question": "?", "answers": [{"text": "c"}]}]}]}]}"#,
                &[
                    "question \"q8\"",
                    "answers[0]",
                    "missing key `answer_start`",
                ],
            ),
            (
                r#"{"data": [{"paragraphs": [{"context": "c", "qas": [{"id": "q9", "question": "?", "answers": [{"text": "c", "answer_start": -1}]}]}]}]}"#,
                &["question \"q9\"", "an integer ≥ 0", "the number -1"],
            ),
            (
                r#"{"data": [{"paragraphs": [{"context": "  ", "qas": [{"id": "q1", "question": "?"}]}]}]}"#,
                &["question \"q1\"", "context is empty"],
            ),
            (
                r#"{"data": [{"paragraphs": [{"context": "c", "qas": [{"id": "d", "question": "?"}, {"id": "d", "question": "?"}]}]}]}"#,
                &["question \"d\"", "used twice", "qas[0]"],
            ),
        ];
        for (text, needles) in cases {
            let err = parse(text).expect_err(text).to_string();
            assert!(err.starts_with("x/dev.json:"), "{err}");
            for needle in needles {
                assert!(
                    err.contains(needle),
                    "{text}\n-> {err}\n(missing {needle:?})"
                );
            }
        }
    }

    #[test]
    fn non_utf8_is_an_error_with_the_line() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("bad.json");
        std::fs::write(&path, b"{\"data\":\n [\xff]}").expect("write");
        let err = SquadFile::read(&path).expect_err("utf8").to_string();
        assert!(
            err.contains("bad.json:2:") && err.contains("invalid UTF-8"),
            "{err}"
        );
    }
}
