//! A span-extraction task generated from text, in the official SQuAD format, to show that the
//! question-answering heads learn without the real (unreachable offline) SQuAD files: each
//! question quotes a few consecutive words of its context ("what follows \"w1 w2\" ?") and the
//! answer is the span of one or more words that follows them. The quote occurs once in the
//! context, so the answer is well defined; a model must find the quoted words in the context
//! and point just after them, which no position or word-frequency shortcut gives. For 2.0 a
//! share of the questions quotes words that are not in the context (unanswerable).
//!
//! Contexts come from any sentences: the built-in demo corpus (tests, CI) or a real corpus
//! (a manual run on `shared/data/corpus`, see docs/squad.md). Everything is seeded.

use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// How the task is generated.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct QuoteTask {
    /// Words quoted by a question (2).
    pub quote_words: usize,
    /// Longest answer, in words (2; each question draws 1 to this many).
    pub max_answer_words: usize,
    /// Words per context, at least (12) and at most (30): consecutive sentences are joined
    /// until the minimum is reached, then cut at the maximum.
    pub min_context_words: usize,
    /// See `min_context_words`.
    pub max_context_words: usize,
    /// Questions asked about each context (2).
    pub questions_per_context: usize,
    /// Share of unanswerable questions (0: SQuAD 1.1; > 0 writes a 2.0 file).
    pub unanswerable_fraction: f64,
    /// Ask for the quoted words themselves ("where is \"w1 w2\" ?") instead of the span that
    /// follows them: one matching step instead of two, learnt in far fewer steps.
    pub answer_is_quote: bool,
}

impl Default for QuoteTask {
    fn default() -> Self {
        Self {
            quote_words: 2,
            max_answer_words: 2,
            min_context_words: 12,
            max_context_words: 30,
            questions_per_context: 2,
            unanswerable_fraction: 0.0,
            answer_is_quote: false,
        }
    }
}

/// A word of a context and its character range.
#[derive(Clone, Debug)]
struct Word {
    text: String,
    start: usize,
    end: usize,
}

/// The words of `text`: maximal runs of alphanumeric characters, with character offsets.
fn words(text: &str) -> Vec<Word> {
    let mut out = Vec::new();
    let mut current: Option<Word> = None;
    for (i, c) in text.chars().enumerate() {
        if c.is_alphanumeric() {
            match current.as_mut() {
                Some(w) => {
                    w.text.push(c);
                    w.end = i + 1;
                }
                None => {
                    current = Some(Word {
                        text: c.to_string(),
                        start: i,
                        end: i + 1,
                    })
                }
            }
        } else if let Some(w) = current.take() {
            out.push(w);
        }
    }
    out.extend(current);
    out
}

fn quote(words: &[Word]) -> String {
    words
        .iter()
        .map(|w| w.text.to_lowercase())
        .collect::<Vec<_>>()
        .join(" ")
}

impl QuoteTask {
    /// Contexts from `sentences` (in order): consecutive sentences joined with a space until
    /// `min_context_words`, then cut after `max_context_words` words.
    fn contexts(&self, sentences: &[String]) -> Vec<String> {
        let mut out = Vec::new();
        let mut current = String::new();
        for s in sentences {
            if !current.is_empty() {
                current.push(' ');
            }
            current.push_str(s.trim());
            let ws = words(&current);
            if ws.len() >= self.min_context_words {
                let cut = ws
                    .get(self.max_context_words)
                    .map_or(current.chars().count(), |w| w.start);
                out.push(
                    current
                        .chars()
                        .take(cut)
                        .collect::<String>()
                        .trim_end()
                        .to_string(),
                );
                current.clear();
            }
        }
        out
    }

    /// An answerable question about `ws`, if some quote occurs once.
    fn answerable(&self, ws: &[Word], context: &str, rng: &mut ChaCha8Rng) -> Option<Value> {
        let q = self.quote_words;
        let quotes: Vec<String> = ws.windows(q).map(quote).collect();
        let unique = |i: usize| quotes.iter().filter(|x| **x == quotes[i]).count() == 1;
        let (quoted, first, last) = if self.answer_is_quote {
            let starts: Vec<usize> = (0..quotes.len()).filter(|&i| unique(i)).collect();
            let &i = starts.choose(rng)?;
            (i, i, i + q - 1)
        } else {
            let answer_words = rng.random_range(1..=self.max_answer_words.max(1));
            let last_start = ws.len().checked_sub(answer_words)?;
            let starts: Vec<usize> = (q..=last_start).filter(|&s| unique(s - q)).collect();
            let &start = starts.choose(rng)?;
            (start - q, start, start + answer_words - 1)
        };
        let (first, last) = (&ws[first], &ws[last]);
        let text: String = context
            .chars()
            .skip(first.start)
            .take(last.end - first.start)
            .collect();
        let question = if self.answer_is_quote {
            format!("where is \"{}\" ?", quotes[quoted])
        } else {
            format!("what follows \"{}\" ?", quotes[quoted])
        };
        Some(json!({
            "question": question,
            "answers": [{"text": text, "answer_start": first.start}],
            "is_impossible": false,
        }))
    }

    /// An unanswerable question: a quote taken from `other` that `ws` does not contain.
    fn unanswerable(&self, ws: &[Word], other: &[Word], rng: &mut ChaCha8Rng) -> Option<Value> {
        let q = self.quote_words;
        let here: Vec<String> = ws.windows(q).map(quote).collect();
        let candidates: Vec<String> = other
            .windows(q)
            .map(quote)
            .filter(|x| !here.contains(x))
            .collect();
        let quoted = candidates.choose(rng)?;
        let verb = if self.answer_is_quote {
            "where is"
        } else {
            "what follows"
        };
        Some(json!({
            "question": format!("{verb} \"{quoted}\" ?"),
            "answers": [],
            "is_impossible": true,
        }))
    }

    /// The task over `sentences` as the text of an official SQuAD file (`v2.0` when
    /// `unanswerable_fraction > 0`, else `1.1`); question ids are `{prefix}-{n}`.
    pub fn generate(&self, sentences: &[String], seed: u64, prefix: &str) -> String {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let contexts = self.contexts(sentences);
        let word_lists: Vec<Vec<Word>> = contexts.iter().map(|c| words(c)).collect();
        let mut paragraphs = Vec::new();
        let mut n = 0usize;
        for (i, (context, ws)) in contexts.iter().zip(&word_lists).enumerate() {
            let mut qas = Vec::new();
            for _ in 0..self.questions_per_context {
                let other = &word_lists[(i + 1) % word_lists.len()];
                let qa = if rng.random_bool(self.unanswerable_fraction.clamp(0.0, 1.0)) {
                    self.unanswerable(ws, other, &mut rng)
                } else {
                    self.answerable(ws, context, &mut rng)
                };
                if let Some(mut qa) = qa {
                    qa["id"] = Value::from(format!("{prefix}-{n}"));
                    n += 1;
                    qas.push(qa);
                }
            }
            if !qas.is_empty() {
                paragraphs.push(json!({"context": context, "qas": qas}));
            }
        }
        let version = if self.unanswerable_fraction > 0.0 {
            "v2.0"
        } else {
            "1.1"
        };
        let file = json!({
            "version": version,
            "data": [{"title": format!("quote task {prefix}"), "paragraphs": paragraphs}],
        });
        serde_json::to_string_pretty(&file).unwrap_or_default()
    }
}

/// `count` sentences of the built-in demo corpus (seeded), for tests and demos.
pub fn demo_sentences(seed: u64, count: usize) -> Vec<String> {
    electra_data::DemoCorpus::new(seed, count)
        .documents()
        .flatten()
        .take(count)
        .collect()
}

/// `count` sentences of 5 to 8 words drawn (seeded) from the first `words` words of the demo
/// lexicon that have more than two letters: a small vocabulary, so that a tiny model learns to
/// match a quoted word within a CI-sized run (`tests/squad_learn.rs`).
pub fn lexicon_sentences(seed: u64, count: usize, words: usize) -> Vec<String> {
    let vocabulary: Vec<String> = electra_data::demo::lexicon()
        .words()
        .into_iter()
        .filter(|w| w.len() > 2)
        .take(words.max(1))
        .collect();
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    (0..count)
        .map(|_| {
            let len = rng.random_range(5..9);
            let sentence: Vec<&str> = (0..len)
                .filter_map(|_| vocabulary.choose(&mut rng).map(String::as_str))
                .collect();
            format!("{}.", sentence.join(" "))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::squad::data::{SquadFile, Version, answer_span};
    use std::path::Path;

    /// Every generated answer is at its offset and right after its quote, which occurs once;
    /// unanswerable quotes do not occur; the same seed gives the same file.
    #[test]
    fn generated_questions_are_well_formed() {
        let task = QuoteTask {
            unanswerable_fraction: 0.3,
            ..QuoteTask::default()
        };
        let sentences = demo_sentences(3, 200);
        let text = task.generate(&sentences, 9, "t");
        assert_eq!(text, task.generate(&sentences, 9, "t"));
        let file = SquadFile::parse(&text, Path::new("gen.json")).expect("official format");
        assert_eq!(file.resolve_version(None), Version::V2_0);
        assert!(file.len() > 100, "{} questions", file.len());
        let impossible = file.questions.iter().filter(|q| q.is_impossible()).count();
        assert!(
            impossible > 10 && impossible < file.len() / 2,
            "{impossible}"
        );
        for q in &file.questions {
            let context = file.context(q);
            let quoted = q.question.split('"').nth(1).expect("a quote");
            let lower: Vec<String> = words(context)
                .iter()
                .map(|w| w.text.to_lowercase())
                .collect();
            let joined = format!(" {} ", lower.join(" "));
            let occurrences = joined.matches(&format!(" {quoted} ")).count();
            if q.is_impossible() {
                assert_eq!(occurrences, 0, "{}", q.question);
                continue;
            }
            assert_eq!(occurrences, 1, "{}", q.question);
            let answer = &q.answers[0];
            let (start, _) = answer_span(context, answer).expect("offset");
            let before = words(&context[..start]);
            let tail = quote(&before[before.len() - task.quote_words..]);
            assert_eq!(tail, quoted, "the answer follows its quote");
        }
    }
}
