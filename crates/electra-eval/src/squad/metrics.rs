//! SQuAD's exact match and F1, as the official evaluation scripts define them (v1.1:
//! `evaluate-v1.1.py`; v2.0: `evaluate-v2.0.py`, which the reference's
//! `squad_official_eval.py` copies), so that a user can score any system's predictions.
//!
//! **Normalisation** (both): lower-case (Unicode, as Python's `str.lower`), drop ASCII
//! punctuation (Python's `string.punctuation`), replace the words `a`, `an`, `the` by a space,
//! collapse whitespace (Python's `str.split`). A word is a maximal run of alphanumeric
//! characters or `_` (Python's `\w`; Rust's `char::is_alphanumeric` also counts the few
//! combining vowel signs and circled letters Unicode calls alphabetic, which Python does not).
//! **EM** is 1 when the normalised texts are equal; **F1** is the harmonic mean of token
//! precision and recall over the multiset of normalised tokens. Both take the maximum over the
//! gold answers and are averaged over questions, ×100.
//!
//! Where the two versions differ, each follows its script:
//! - v1.1: a question without a prediction scores 0 and counts in the total (a note is
//!   printed); two empty token lists have F1 0; a question without gold answers is an error
//!   (the script fails on it).
//! - v2.0: gold answers whose normalised text is empty are dropped, and a question left
//!   without any is answered correctly only by the empty string; two empty token lists have
//!   F1 1. A question without a prediction is an error (the script stops on it). With a
//!   no-answer file, a question whose no-answer score exceeds the threshold counts as
//!   predicted empty (`exact`, `f1`, and the `HasAns_`/`NoAns_` splits), and `best_exact` /
//!   `best_f1` give the best score over all thresholds and the threshold that reaches it,
//!   scanning questions by increasing no-answer score in the file's order for ties, exactly as
//!   `find_best_thresh` does.
//!
//! Sums run in the scripts' order (file order; no-answer order for the thresholds), so the
//! numbers equal theirs to the last bit on the fixtures of `tests/squad_metrics.rs`.

use std::collections::HashMap;
use std::fmt;
use std::path::Path;

use serde::Deserialize;
use serde::de::{MapAccess, Visitor};

use crate::error::EvalError;
use crate::squad::data::{SquadFile, Version};

/// Python's `string.punctuation`.
const PUNCTUATION: &str = r##"!"#$%&'()*+,-./:;<=>?@[\]^_`{|}~"##;

/// Python's `str.isspace`: Unicode whitespace and the four information separators.
fn is_space(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

fn is_word(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// The official `normalize_answer`: lower-case, no punctuation, no articles, single spaces.
pub fn normalize_answer(text: &str) -> String {
    let lower = text.to_lowercase();
    let no_punc: String = lower
        .chars()
        .filter(|c| !PUNCTUATION.contains(*c))
        .collect();
    // `\b(a|an|the)\b` → " ": a whole word (maximal run of word characters) equal to one of them.
    let mut no_articles = String::with_capacity(no_punc.len());
    let mut rest = no_punc.as_str();
    while let Some(c) = rest.chars().next() {
        let run = if is_word(c) {
            rest.find(|c: char| !is_word(c)).unwrap_or(rest.len())
        } else {
            c.len_utf8()
        };
        let piece = &rest[..run];
        if matches!(piece, "a" | "an" | "the") {
            no_articles.push(' ');
        } else {
            no_articles.push_str(piece);
        }
        rest = &rest[run..];
    }
    no_articles
        .split(is_space)
        .filter(|w| !w.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

fn tokens(text: &str) -> Vec<String> {
    normalize_answer(text)
        .split(' ')
        .filter(|w| !w.is_empty())
        .map(str::to_string)
        .collect()
}

/// Exact match of normalised texts (1 or 0).
pub fn exact(gold: &str, prediction: &str) -> f64 {
    f64::from(u8::from(
        normalize_answer(gold) == normalize_answer(prediction),
    ))
}

/// Token F1 of `prediction` against `gold`; `empty_agree` is v2.0's rule for empty token
/// lists (1 when both are empty, 0 when one is), v1.1 has none (0 whenever nothing is shared).
fn f1_with(gold: &str, prediction: &str, empty_agree: bool) -> f64 {
    let gold = tokens(gold);
    let pred = tokens(prediction);
    if empty_agree && (gold.is_empty() || pred.is_empty()) {
        return f64::from(u8::from(gold == pred));
    }
    let mut counts: HashMap<&str, i64> = HashMap::new();
    for t in &gold {
        *counts.entry(t.as_str()).or_default() += 1;
    }
    let mut same = 0i64;
    for t in &pred {
        if let Some(c) = counts.get_mut(t.as_str())
            && *c > 0
        {
            *c -= 1;
            same += 1;
        }
    }
    if same == 0 {
        return 0.0;
    }
    let precision = same as f64 / pred.len() as f64;
    let recall = same as f64 / gold.len() as f64;
    (2.0 * precision * recall) / (precision + recall)
}

/// v2.0's `compute_f1`.
pub fn f1_v2(gold: &str, prediction: &str) -> f64 {
    f1_with(gold, prediction, true)
}

/// v1.1's `f1_score`.
pub fn f1_v1(gold: &str, prediction: &str) -> f64 {
    f1_with(gold, prediction, false)
}

/// A JSON object of `id → T` in file order (later duplicates replace the value and keep the
/// first position, as Python's `json.load` does).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Keyed<T> {
    /// Entries in file order.
    pub entries: Vec<(String, T)>,
    index: HashMap<String, usize>,
}

impl<T> Keyed<T> {
    /// The value of `id`.
    pub fn get(&self, id: &str) -> Option<&T> {
        self.index.get(id).map(|&i| &self.entries[i].1)
    }

    /// Adds or replaces `id`.
    pub fn insert(&mut self, id: String, value: T) {
        match self.index.get(&id) {
            Some(&i) => self.entries[i].1 = value,
            None => {
                self.index.insert(id.clone(), self.entries.len());
                self.entries.push((id, value));
            }
        }
    }

    /// Number of ids.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

impl<T> FromIterator<(String, T)> for Keyed<T> {
    fn from_iter<I: IntoIterator<Item = (String, T)>>(iter: I) -> Self {
        let mut out = Self {
            entries: Vec::new(),
            index: HashMap::new(),
        };
        for (k, v) in iter {
            out.insert(k, v);
        }
        out
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Keyed<T> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Ordered<T>(std::marker::PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for Ordered<T> {
            type Value = Keyed<T>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object keyed by question id")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Keyed<T>, A::Error> {
                let mut out = Keyed {
                    entries: Vec::new(),
                    index: HashMap::new(),
                };
                while let Some((k, v)) = map.next_entry::<String, T>()? {
                    out.insert(k, v);
                }
                Ok(out)
            }
        }
        deserializer.deserialize_map(Ordered(std::marker::PhantomData))
    }
}

/// Predicted answer texts by question id (`predictions.json`).
pub type AnswerTexts = Keyed<String>;
/// No-answer scores by question id (`null_odds.json`, the official script's `na_prob` file).
pub type NullOdds = Keyed<f64>;

/// Reads a JSON object of `id → T` (`what` names the expected values in the error).
pub fn read_keyed<T: for<'de> Deserialize<'de>>(
    path: &Path,
    what: &str,
) -> Result<Keyed<T>, EvalError> {
    let text = crate::error::read_utf8(path)?;
    serde_json::from_str(&text).map_err(|e| {
        EvalError::format(
            path,
            e.line(),
            format!("expected a JSON object mapping question ids to {what}: {e}"),
        )
    })
}

/// v1.1's result.
#[derive(Clone, Debug, PartialEq)]
pub struct ScoresV1 {
    /// Exact match ×100.
    pub exact_match: f64,
    /// F1 ×100.
    pub f1: f64,
    /// Questions.
    pub total: usize,
    /// Ids without a prediction (scored 0).
    pub missing: Vec<String>,
}

/// EM and F1 over a group of questions.
#[derive(Clone, Debug, PartialEq)]
pub struct Group {
    /// Exact match ×100.
    pub exact: f64,
    /// F1 ×100.
    pub f1: f64,
    /// Questions.
    pub total: usize,
}

/// The best scores over no-answer thresholds.
#[derive(Clone, Debug, PartialEq)]
pub struct Best {
    /// Best exact match ×100.
    pub exact: f64,
    /// The threshold that reaches it.
    pub exact_thresh: f64,
    /// Best F1 ×100.
    pub f1: f64,
    /// The threshold that reaches it.
    pub f1_thresh: f64,
}

/// v2.0's result.
#[derive(Clone, Debug, PartialEq)]
pub struct ScoresV2 {
    /// All questions.
    pub all: Group,
    /// Questions with answers (`HasAns_`), if any.
    pub has_ans: Option<Group>,
    /// Questions without (`NoAns_`), if any.
    pub no_ans: Option<Group>,
    /// `best_exact`, `best_f1` and their thresholds (with a no-answer file).
    pub best: Option<Best>,
}

/// Either version's result.
#[derive(Clone, Debug, PartialEq)]
pub enum Scores {
    /// SQuAD 1.1.
    V1(ScoresV1),
    /// SQuAD 2.0.
    V2(ScoresV2),
}

impl Scores {
    /// Exact match ×100 (v2.0: at the threshold used).
    pub fn exact(&self) -> f64 {
        match self {
            Self::V1(s) => s.exact_match,
            Self::V2(s) => s.all.exact,
        }
    }

    /// F1 ×100 (v2.0: at the threshold used).
    pub fn f1(&self) -> f64 {
        match self {
            Self::V1(s) => s.f1,
            Self::V2(s) => s.all.f1,
        }
    }

    /// The official script's output, as JSON text (its keys, in its order).
    pub fn to_official_json(&self) -> String {
        let mut entries: Vec<(String, String)> = Vec::new();
        let float = |x: f64| serde_json::to_string(&x).unwrap_or_else(|_| "NaN".into());
        match self {
            Self::V1(s) => {
                entries.push(("exact_match".into(), float(s.exact_match)));
                entries.push(("f1".into(), float(s.f1)));
            }
            Self::V2(s) => {
                let mut group = |prefix: &str, g: &Group| {
                    entries.push((format!("{prefix}exact"), float(g.exact)));
                    entries.push((format!("{prefix}f1"), float(g.f1)));
                    entries.push((format!("{prefix}total"), g.total.to_string()));
                };
                group("", &s.all);
                if let Some(g) = &s.has_ans {
                    group("HasAns_", g);
                }
                if let Some(g) = &s.no_ans {
                    group("NoAns_", g);
                }
                if let Some(b) = &s.best {
                    entries.push(("best_exact".into(), float(b.exact)));
                    entries.push(("best_exact_thresh".into(), float(b.exact_thresh)));
                    entries.push(("best_f1".into(), float(b.f1)));
                    entries.push(("best_f1_thresh".into(), float(b.f1_thresh)));
                }
            }
        }
        let body: Vec<String> = entries
            .iter()
            .map(|(k, v)| format!("  \"{k}\": {v}"))
            .collect();
        format!("{{\n{}\n}}", body.join(",\n"))
    }
}

/// v1.1's `evaluate`.
pub fn evaluate_v1(data: &SquadFile, predictions: &AnswerTexts) -> Result<ScoresV1, EvalError> {
    let (mut exact_sum, mut f1_sum) = (0u64, 0.0f64);
    let mut missing = Vec::new();
    for q in &data.questions {
        if q.answers.is_empty() {
            return Err(EvalError::Squad {
                path: data.path.clone(),
                at: q.location(),
                message: "has no gold answers: SQuAD 1.1 scoring needs at least one \
                          (score a 2.0 file with --version 2.0)"
                    .into(),
            });
        }
        let Some(prediction) = predictions.get(&q.id) else {
            missing.push(q.id.clone());
            continue;
        };
        let best_exact = q.answers.iter().any(|a| exact(&a.text, prediction) == 1.0);
        exact_sum += u64::from(best_exact);
        f1_sum += q
            .answers
            .iter()
            .map(|a| f1_v1(&a.text, prediction))
            .fold(f64::NEG_INFINITY, f64::max);
    }
    let total = data.questions.len();
    Ok(ScoresV1 {
        exact_match: 100.0 * exact_sum as f64 / total as f64,
        f1: 100.0 * f1_sum / total as f64,
        total,
        missing,
    })
}

/// Per question: its id, whether it has answers, raw EM and F1.
struct Raw {
    id: String,
    has_ans: bool,
    exact: f64,
    f1: f64,
}

/// v2.0's `get_raw_scores` over every question (each must have a prediction).
fn raw_scores_v2(data: &SquadFile, predictions: &AnswerTexts) -> Result<Vec<Raw>, EvalError> {
    let mut out = Vec::with_capacity(data.questions.len());
    for q in &data.questions {
        let mut gold: Vec<&str> = q
            .answers
            .iter()
            .map(|a| a.text.as_str())
            .filter(|t| !normalize_answer(t).is_empty())
            .collect();
        if gold.is_empty() {
            gold.push("");
        }
        let prediction = predictions.get(&q.id).ok_or_else(|| EvalError::Squad {
            path: data.path.clone(),
            at: q.location(),
            message: "has no prediction (the official SQuAD 2.0 script stops on a missing \
                      prediction; predict every question)"
                .into(),
        })?;
        let best = |f: fn(&str, &str) -> f64| {
            gold.iter()
                .map(|g| f(g, prediction))
                .fold(f64::NEG_INFINITY, f64::max)
        };
        out.push(Raw {
            id: q.id.clone(),
            has_ans: !q.answers.is_empty(),
            exact: best(exact),
            f1: best(f1_v2),
        });
    }
    Ok(out)
}

fn group<'a>(scores: impl Iterator<Item = (f64, f64)> + 'a) -> Option<Group> {
    let (mut e, mut f, mut n) = (0.0, 0.0, 0usize);
    for (x, y) in scores {
        e += x;
        f += y;
        n += 1;
    }
    (n > 0).then(|| Group {
        exact: 100.0 * e / n as f64,
        f1: 100.0 * f / n as f64,
        total: n,
    })
}

/// v2.0's `main`: raw scores, the no-answer threshold `threshold` applied with `null_odds`
/// (the official default is 1.0; without a file every no-answer score is 0), the splits, and
/// the best thresholds when `null_odds` is given.
pub fn evaluate_v2(
    data: &SquadFile,
    predictions: &AnswerTexts,
    null_odds: Option<&NullOdds>,
    threshold: f64,
) -> Result<ScoresV2, EvalError> {
    let raw = raw_scores_v2(data, predictions)?;
    let mut thresholded = Vec::with_capacity(raw.len());
    for r in &raw {
        let odds = match null_odds {
            None => 0.0,
            Some(odds) => *odds.get(&r.id).ok_or_else(|| EvalError::Mismatch(format!(
                "the no-answer file has no score for question {:?} (the official script stops on it)",
                r.id
            )))?,
        };
        thresholded.push(if odds > threshold {
            let s = f64::from(u8::from(!r.has_ans));
            (s, s)
        } else {
            (r.exact, r.f1)
        });
    }
    let all = group(thresholded.iter().copied()).unwrap_or(Group {
        exact: f64::NAN,
        f1: f64::NAN,
        total: 0,
    });
    let split = |has: bool| {
        group(
            raw.iter()
                .zip(&thresholded)
                .filter(move |(r, _)| r.has_ans == has)
                .map(|(_, s)| *s),
        )
    };
    let best = null_odds.map(|odds| {
        let (exact, exact_thresh) = best_threshold(&raw, predictions, odds, |r| r.exact);
        let (f1, f1_thresh) = best_threshold(&raw, predictions, odds, |r| r.f1);
        Best {
            exact,
            exact_thresh,
            f1,
            f1_thresh,
        }
    });
    Ok(ScoresV2 {
        all,
        has_ans: split(true),
        no_ans: split(false),
        best,
    })
}

/// The official `find_best_thresh`: start from "every question predicted empty", then answer
/// questions one by one in increasing no-answer score (ties in the file's order), keeping the
/// best running score and the score of the question that reached it.
fn best_threshold(
    raw: &[Raw],
    predictions: &AnswerTexts,
    odds: &NullOdds,
    score: impl Fn(&Raw) -> f64,
) -> (f64, f64) {
    let by_id: HashMap<&str, &Raw> = raw.iter().map(|r| (r.id.as_str(), r)).collect();
    let mut order: Vec<&(String, f64)> = odds.entries.iter().collect();
    order.sort_by(|a, b| a.1.total_cmp(&b.1));
    let mut current = raw.iter().filter(|r| !r.has_ans).count() as f64;
    let (mut best, mut best_thresh) = (current, 0.0);
    for (id, value) in order {
        let Some(r) = by_id.get(id.as_str()) else {
            continue;
        };
        current += if r.has_ans {
            score(r)
        } else if predictions.get(id).is_some_and(|p| !p.is_empty()) {
            -1.0
        } else {
            0.0
        };
        if current > best {
            best = current;
            best_thresh = *value;
        }
    }
    (100.0 * best / raw.len() as f64, best_thresh)
}

/// Scores `predictions` against `data` as `version`'s official script does (`null_odds` and
/// `threshold` for 2.0 only).
pub fn evaluate(
    data: &SquadFile,
    version: Version,
    predictions: &AnswerTexts,
    null_odds: Option<&NullOdds>,
    threshold: f64,
) -> Result<Scores, EvalError> {
    match version {
        Version::V1_1 => {
            if null_odds.is_some() {
                return Err(EvalError::InvalidConfig(
                    "a no-answer file is for SQuAD 2.0; score with --version 2.0".into(),
                ));
            }
            Ok(Scores::V1(evaluate_v1(data, predictions)?))
        }
        Version::V2_0 => Ok(Scores::V2(evaluate_v2(
            data,
            predictions,
            null_odds,
            threshold,
        )?)),
    }
}

/// `electra squad score DATA PREDICTIONS [--na-prob NULL_ODDS]`: reads the files and scores
/// them (the version from `version`, else the data file's).
pub fn score_files(
    data: &Path,
    predictions: &Path,
    null_odds: Option<&Path>,
    version: Option<Version>,
    threshold: f64,
) -> Result<(Version, Scores), EvalError> {
    let data = SquadFile::read(data)?;
    let version = data.resolve_version(version);
    let predictions: AnswerTexts = read_keyed(predictions, "answer texts (strings)")?;
    let odds = null_odds
        .map(|p| read_keyed::<f64>(p, "no-answer scores (numbers)"))
        .transpose()?;
    let scores = evaluate(&data, version, &predictions, odds.as_ref(), threshold)?;
    Ok((version, scores))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each step of the official normalisation, one case per rule.
    #[test]
    fn normalisation_follows_the_official_script() {
        assert_eq!(normalize_answer("The Cat"), "cat");
        assert_eq!(normalize_answer("  An  apple,\ta  day!  "), "apple day");
        // Articles only as whole words; punctuation goes first, so "the-end" becomes "theend".
        assert_eq!(normalize_answer("theatre anthem"), "theatre anthem");
        assert_eq!(normalize_answer("the-end"), "theend");
        assert_eq!(normalize_answer("a.b"), "ab");
        assert_eq!(normalize_answer("the_a"), "thea");
        // Non-ASCII punctuation stays; Unicode lower-casing; Unicode whitespace splits.
        assert_eq!(normalize_answer("«Élan» the\u{a0}end"), "«élan» end");
        assert_eq!(normalize_answer("ΑΣ"), "ας");
        assert_eq!(normalize_answer("x\u{1f}y"), "x y");
        assert_eq!(normalize_answer("The"), "");
    }

    #[test]
    fn f1_counts_shared_tokens_as_a_multiset() {
        assert_eq!(
            f1_v2("the cat sat", "cat cat sat"),
            2.0 * (2.0 / 3.0) * 1.0 / (2.0 / 3.0 + 1.0)
        );
        // `a` is an article: gold "b c d", prediction "b": precision 1, recall 1/3.
        assert!((f1_v2("a b c d", "a b") - 0.5).abs() < 1e-15);
        assert_eq!(f1_v2("", ""), 1.0);
        assert_eq!(f1_v1("", ""), 0.0);
        assert_eq!(f1_v2("the", "x"), 0.0);
        assert_eq!(exact("The  Cat.", "cat"), 1.0);
    }
    /// `find_best_thresh` scans ties in the no-answer file's order: with an answered question
    /// first the running score peaks at their shared score; the other way round it never
    /// rises above the start.
    #[test]
    fn best_threshold_ties_follow_the_file_order() {
        let data = SquadFile::parse(
            r#"{"data": [{"paragraphs": [{"context": "x y", "qas": [
                {"id": "qa", "question": "?", "answers": [{"text": "x", "answer_start": 0}]},
                {"id": "qb", "question": "?", "answers": []}]}]}]}"#,
            Path::new("t.json"),
        )
        .expect("data");
        let preds: AnswerTexts = [("qa".into(), "x".into()), ("qb".into(), "y".into())]
            .into_iter()
            .collect();
        let run = |order: [&str; 2]| {
            let odds: NullOdds = order.iter().map(|id| (id.to_string(), 0.7)).collect();
            evaluate_v2(&data, &preds, Some(&odds), 1.0)
                .expect("score")
                .best
                .expect("best")
        };
        let answered_first = run(["qa", "qb"]);
        assert_eq!(
            (answered_first.exact, answered_first.exact_thresh),
            (100.0, 0.7)
        );
        let unanswered_first = run(["qb", "qa"]);
        assert_eq!(
            (unanswered_first.exact, unanswered_first.exact_thresh),
            (50.0, 0.0)
        );
    }
}
