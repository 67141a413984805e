//! From questions to model inputs, as the reference's `QATask.featurize` builds them:
//!
//! 1. **Tokens with offsets.** Each context is tokenised once (the WordPiece tokenizer gives
//!    every token the byte range it covers in the original text); each question is tokenised
//!    and cut to `max_query_length` tokens (64; the reference truncates silently, we count the
//!    cut questions in [`QaSet::truncated_questions`]).
//! 2. **Windows.** A context longer than `max_seq_length − query − 3` tokens is cut into
//!    windows of that many tokens, each starting `doc_stride` tokens (128) after the previous
//!    one, the last ending at the context's end ([`doc_spans`]). Each window is one input
//!    `[CLS] query [SEP] window [SEP]`, segment 0 up to the first `[SEP]`, 1 after. A context
//!    that needs more than `max_windows` windows is an error naming the question (a guard
//!    against a mis-formatted file; raise the limit to accept it).
//! 3. **Max context.** A token seen in several windows is answered from the window where it
//!    has the most context: the largest `min(left, right) + 0.01 · window length`, the first
//!    window on a tie ([`is_max_context`]). Post-processing only starts answers there.
//! 4. **Labels** (training). The first answer's character span is mapped to the tokens it
//!    touches: the first token ending after its start, the last token starting before its end.
//!    (The reference goes through whitespace-separated words and then searches for a better
//!    WordPiece match, `_improve_answer_span`; token offsets give that match directly: "1895"
//!    in "(1895-1943)." is the token `1895`, and "Japan" in "Japanese" the token `japanese`.)
//!    A window that does not hold the whole answer, and every window of a 2.0 unanswerable
//!    question, is labelled at `[CLS]` (position 0). A training question whose `answer_start`
//!    does not point at its text (see [`answer_span`]) is skipped and listed in
//!    [`QaSet::skipped`], as the reference skips answers it cannot recover.

use burn::prelude::*;
use electra_data::Tokenizer;
use electra_model::InputTensors;
use serde::{Deserialize, Serialize};

use crate::error::EvalError;
use crate::squad::data::{SquadFile, Version, answer_span};

/// How questions and contexts become windows; the defaults are the reference's.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WindowConfig {
    /// Tokens per input, `[CLS]` and both `[SEP]`s included (512).
    pub max_seq_length: usize,
    /// Tokens between the starts of consecutive windows of one context (128).
    pub doc_stride: usize,
    /// Question tokens kept (64); longer questions are cut.
    pub max_query_length: usize,
    /// Windows one context may need before it is refused (100).
    pub max_windows: usize,
}

impl Default for WindowConfig {
    fn default() -> Self {
        Self {
            max_seq_length: 512,
            doc_stride: 128,
            max_query_length: 64,
            max_windows: 100,
        }
    }
}

impl WindowConfig {
    /// These settings for a model with `positions` position embeddings: `max_seq_length` cut
    /// to `positions`, and then `max_query_length` to half of it, so that a model shorter
    /// than the reference's 512 tokens still gets windows.
    pub fn fitted(&self, positions: usize) -> Self {
        let max_seq_length = self.max_seq_length.min(positions);
        Self {
            max_seq_length,
            max_query_length: self.max_query_length.min(max_seq_length / 2),
            ..self.clone()
        }
    }

    /// Checks the ranges; the error names the field.
    pub fn validate(&self) -> Result<(), EvalError> {
        if self.max_seq_length < self.max_query_length + 4 {
            return Err(EvalError::InvalidConfig(format!(
                "max_seq_length ({}) must leave room for max_query_length ({}) question tokens, \
                 [CLS], two [SEP] and at least one context token",
                self.max_seq_length, self.max_query_length
            )));
        }
        if self.doc_stride == 0 || self.max_windows == 0 {
            return Err(EvalError::InvalidConfig(
                "doc_stride and max_windows must be > 0".into(),
            ));
        }
        Ok(())
    }
}

/// The windows over `tokens` context tokens with at most `max_tokens` each, `stride` apart:
/// `(start, length)` pairs, as the reference's `doc_spans` loop makes them.
pub fn doc_spans(tokens: usize, max_tokens: usize, stride: usize) -> Vec<(usize, usize)> {
    let mut spans = Vec::new();
    let mut start = 0;
    while start < tokens {
        let length = (tokens - start).min(max_tokens);
        spans.push((start, length));
        if start + length == tokens {
            break;
        }
        start += length.min(stride);
    }
    spans
}

/// Whether `spans[index]` is the window where context token `position` has the most context
/// (the reference's `_check_is_max_context`).
pub fn is_max_context(spans: &[(usize, usize)], index: usize, position: usize) -> bool {
    let mut best: Option<(f64, usize)> = None;
    for (i, &(start, length)) in spans.iter().enumerate() {
        let end = start + length - 1;
        if position < start || position > end {
            continue;
        }
        let score = (position - start).min(end - position) as f64 + 0.01 * length as f64;
        if best.is_none_or(|(b, _)| score > b) {
            best = Some((score, i));
        }
    }
    best.is_some_and(|(_, i)| i == index)
}

/// A context's tokens and the byte range of each in the context.
#[derive(Clone, Debug, Default)]
pub struct ContextTokens {
    /// Token ids.
    pub ids: Vec<u32>,
    /// Byte ranges in the context.
    pub offsets: Vec<(usize, usize)>,
}

/// One question, tokenised and labelled.
#[derive(Clone, Debug)]
pub struct QaExample {
    /// Index into the file's questions.
    pub question: usize,
    /// Index into the file's paragraphs (and [`QaSet::contexts`]).
    pub paragraph: usize,
    /// Question token ids (cut to `max_query_length`).
    pub query: Vec<u32>,
    /// Training target: the answer's first and last context token, or `None` for a 2.0
    /// unanswerable question (and for evaluation sets).
    pub answer: Option<(usize, usize)>,
    /// 2.0's `is_impossible` (the answerability classifier's target).
    pub is_impossible: bool,
    /// This example's windows: a range of [`QaSet::windows`].
    pub windows: std::ops::Range<usize>,
}

/// One window of one example: one model input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Window {
    /// Index into [`QaSet::examples`].
    pub example: usize,
    /// First context token.
    pub start: usize,
    /// Context tokens.
    pub length: usize,
}

/// A SQuAD file turned into windows, ready to batch.
#[derive(Clone, Debug)]
pub struct QaSet {
    /// The file.
    pub file: SquadFile,
    /// The version its questions are read as.
    pub version: Version,
    /// Every paragraph's tokens.
    pub contexts: Vec<ContextTokens>,
    /// Every question used (all of them for evaluation; training skips unusable ones).
    pub examples: Vec<QaExample>,
    /// Every window, grouped by example in example order.
    pub windows: Vec<Window>,
    /// Training questions left out, with why (answer offsets that do not match).
    pub skipped: Vec<(String, String)>,
    /// Questions longer than `max_query_length` tokens (cut).
    pub truncated_questions: usize,
    /// `[CLS]`, `[SEP]` and `[PAD]` ids.
    pub special: electra_data::SpecialTokens,
}

/// Whether a set carries training labels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Purpose {
    /// Labels from the first answer (or `[CLS]` for unanswerable 2.0 questions).
    Train,
    /// No labels: every question is windowed.
    Evaluate,
}

impl QaSet {
    /// Tokenises and windows `file` read as `version`.
    pub fn build(
        file: SquadFile,
        version: Version,
        tokenizer: &Tokenizer,
        config: &WindowConfig,
        purpose: Purpose,
    ) -> Result<Self, EvalError> {
        config.validate()?;
        let texts: Vec<&str> = file.paragraphs.iter().map(|p| p.context.as_str()).collect();
        let contexts: Vec<ContextTokens> = tokenizer
            .encode_batch_with_offsets(&texts)?
            .into_iter()
            .map(|t| ContextTokens {
                ids: t.ids,
                offsets: t.offsets,
            })
            .collect();
        let questions: Vec<String> = file.questions.iter().map(|q| q.question.clone()).collect();
        let queries = tokenizer.encode_batch(&questions)?;
        let mut set = Self {
            version,
            contexts,
            examples: Vec::with_capacity(file.questions.len()),
            windows: Vec::new(),
            skipped: Vec::new(),
            truncated_questions: 0,
            special: tokenizer.special_tokens(),
            file,
        };
        for (index, mut query) in queries.into_iter().enumerate() {
            if query.len() > config.max_query_length {
                query.truncate(config.max_query_length);
                set.truncated_questions += 1;
            }
            let label = match purpose {
                Purpose::Evaluate => Some((None, false)),
                Purpose::Train => set.label(index)?,
            };
            let Some((answer, is_impossible)) = label else {
                continue;
            };
            set.add_example(index, query, answer, is_impossible, config)?;
        }
        if set.truncated_questions > 0 {
            tracing::warn!(
                file = %set.file.path.display(),
                questions = set.truncated_questions,
                "questions longer than max_query_length = {} tokens were cut",
                config.max_query_length
            );
        }
        Ok(set)
    }

    fn error(&self, question: usize, message: String) -> EvalError {
        EvalError::Squad {
            path: self.file.path.clone(),
            at: self.file.questions[question].location(),
            message,
        }
    }

    /// The training label of question `index`: `Some((answer tokens, is_impossible))`, or
    /// `None` when it is skipped (recorded in `skipped`).
    fn label(&mut self, index: usize) -> Result<Option<LabelOf>, EvalError> {
        let q = &self.file.questions[index];
        if self.version == Version::V2_0 && q.is_impossible() {
            return Ok(Some((None, true)));
        }
        let Some(answer) = q.answers.first() else {
            let hint = match self.version {
                Version::V1_1 => {
                    "SQuAD 1.1 training needs an answer for every question \
                                  (train a file with unanswerable questions as --version 2.0)"
                }
                Version::V2_0 => "it has no answer and is not marked `is_impossible`: true",
            };
            return Err(self.error(index, format!("cannot be trained on: {hint}")));
        };
        let context = self.file.context(q);
        let tokens = &self.contexts[q.paragraph];
        let span = answer_span(context, answer).and_then(|(start, end)| {
            let first = tokens.offsets.iter().position(|&(_, e)| e > start);
            let last = tokens.offsets.iter().rposition(|&(s, _)| s < end);
            match (first, last) {
                (Some(a), Some(b)) if a <= b => Ok((a, b)),
                _ => Err(format!("the answer {:?} covers no token", answer.text)),
            }
        });
        match span {
            Ok(tokens) => Ok(Some((Some(tokens), false))),
            Err(reason) => {
                tracing::warn!(
                    "{}: {}: skipped for training: {reason}",
                    self.file.path.display(),
                    q.location()
                );
                self.skipped.push((q.id.clone(), reason));
                Ok(None)
            }
        }
    }

    fn add_example(
        &mut self,
        question: usize,
        query: Vec<u32>,
        answer: Option<(usize, usize)>,
        is_impossible: bool,
        config: &WindowConfig,
    ) -> Result<(), EvalError> {
        let paragraph = self.file.questions[question].paragraph;
        let n = self.contexts[paragraph].ids.len();
        if n == 0 {
            return Err(self.error(
                question,
                "the context has no tokens (only characters the tokenizer drops)".into(),
            ));
        }
        let room = config.max_seq_length - query.len() - 3;
        let spans = doc_spans(n, room, config.doc_stride);
        if spans.len() > config.max_windows {
            return Err(self.error(
                question,
                format!(
                    "its context of {n} tokens needs {} windows of {room} tokens (stride {}); \
                     the limit is max_windows = {} (--max-windows)",
                    spans.len(),
                    config.doc_stride,
                    config.max_windows
                ),
            ));
        }
        let example = self.examples.len();
        let first = self.windows.len();
        self.windows
            .extend(spans.iter().map(|&(start, length)| Window {
                example,
                start,
                length,
            }));
        self.examples.push(QaExample {
            question,
            paragraph,
            query,
            answer,
            is_impossible,
            windows: first..self.windows.len(),
        });
        Ok(())
    }

    /// Number of windows (model inputs).
    pub fn len(&self) -> usize {
        self.windows.len()
    }

    /// Whether there are no windows.
    pub fn is_empty(&self) -> bool {
        self.windows.is_empty()
    }

    /// The input length of window `w` (`[CLS] query [SEP] window [SEP]`).
    pub fn input_len(&self, w: usize) -> usize {
        let window = &self.windows[w];
        self.examples[window.example].query.len() + window.length + 3
    }

    /// Where window `w`'s context tokens start in its input (`query + 2`).
    pub fn doc_offset(&self, w: usize) -> usize {
        self.examples[self.windows[w].example].query.len() + 2
    }

    /// Window `w`'s input ids and segment ids.
    pub fn input(&self, w: usize) -> (Vec<u32>, Vec<u32>) {
        let window = self.windows[w];
        let example = &self.examples[window.example];
        let context = &self.contexts[example.paragraph].ids;
        let mut ids = Vec::with_capacity(self.input_len(w));
        ids.push(self.special.cls);
        ids.extend_from_slice(&example.query);
        ids.push(self.special.sep);
        let segment_a = ids.len();
        ids.extend_from_slice(&context[window.start..window.start + window.length]);
        ids.push(self.special.sep);
        let mut types = vec![0; segment_a];
        types.resize(ids.len(), 1);
        (ids, types)
    }

    /// Window `w`'s training targets: start and end positions in its input (0 = `[CLS]` when
    /// the window does not hold the answer or there is none) and `is_impossible`.
    pub fn targets(&self, w: usize) -> (usize, usize, bool) {
        let window = self.windows[w];
        let example = &self.examples[window.example];
        let offset = self.doc_offset(w);
        match example.answer {
            Some((a, b)) if a >= window.start && b < window.start + window.length => (
                a - window.start + offset,
                b - window.start + offset,
                example.is_impossible,
            ),
            _ => (0, 0, example.is_impossible),
        }
    }

    /// The spans of the windows of example `e`.
    pub fn spans(&self, e: usize) -> Vec<(usize, usize)> {
        self.windows[self.examples[e].windows.clone()]
            .iter()
            .map(|w| (w.start, w.length))
            .collect()
    }

    /// The padded batch of windows `indices` (`[b, s]`, `s` the longest input), and the
    /// reference's answer mask `[b·s]`: 1 at `[CLS]` and every segment-1 token (the context
    /// and the final `[SEP]`), 0 elsewhere and at padding.
    pub fn batch<B: Backend>(&self, indices: &[usize], device: &B::Device) -> QaBatch<B> {
        let b = indices.len();
        let s = indices
            .iter()
            .map(|&w| self.input_len(w))
            .max()
            .unwrap_or(1);
        let mut ids = vec![i64::from(self.special.pad); b * s];
        let mut types = vec![0i64; b * s];
        let mut mask = vec![0i64; b * s];
        let mut answer_mask = vec![0f32; b * s];
        for (row, &w) in indices.iter().enumerate() {
            let (input, segments) = self.input(w);
            for (col, (&t, &ty)) in input.iter().zip(&segments).enumerate() {
                ids[row * s + col] = i64::from(t);
                types[row * s + col] = i64::from(ty);
                mask[row * s + col] = 1;
                answer_mask[row * s + col] = ty as f32;
            }
            answer_mask[row * s] = 1.0;
        }
        let tensor = |v: Vec<i64>| {
            Tensor::<B, 1, Int>::from_data(TensorData::new(v, [b * s]), device).reshape([b, s])
        };
        QaBatch {
            input: InputTensors {
                input_ids: tensor(ids),
                token_type_ids: tensor(types),
                attention_mask: tensor(mask),
            },
            answer_mask,
            lengths: indices.iter().map(|&w| self.input_len(w)).collect(),
            seq_len: s,
        }
    }
}

type LabelOf = (Option<(usize, usize)>, bool);

/// A batch of windows on the device, with what the heads need on the host.
#[derive(Debug, Clone)]
pub struct QaBatch<B: Backend> {
    /// `[b, s]` ids, segments and attention mask.
    pub input: InputTensors<B>,
    /// The answer mask, `[b·s]` row-major (see [`QaSet::batch`]).
    pub answer_mask: Vec<f32>,
    /// Each row's real length.
    pub lengths: Vec<usize>,
    /// The padded length `s`.
    pub seq_len: usize,
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    /// The reference's loop: windows of `max` tokens, `stride` apart, the last one ending at
    /// the end; a context that fits is one window.
    #[test]
    fn windows_follow_the_reference_loop() {
        assert_eq!(doc_spans(5, 10, 3), vec![(0, 5)]);
        assert_eq!(doc_spans(10, 10, 3), vec![(0, 10)]);
        assert_eq!(doc_spans(12, 10, 3), vec![(0, 10), (3, 9)]);
        assert_eq!(
            doc_spans(25, 10, 4),
            vec![(0, 10), (4, 10), (8, 10), (12, 10), (16, 9)]
        );
        // A stride longer than the window skips nothing it should not: the step is the length.
        assert_eq!(doc_spans(25, 10, 50), vec![(0, 10), (10, 10), (20, 5)]);
        assert!(doc_spans(0, 10, 3).is_empty());
    }

    /// The reference comment's example: "bought" (position 7 of "the man went to the store and
    /// bought a gallon of milk") is in span B (start 3, length 5) and span C (start 6, length
    /// 5); it has more context in C.
    #[test]
    fn max_context_prefers_the_most_centred_window() {
        let spans = [(0, 5), (3, 5), (6, 5)];
        assert!(!is_max_context(&spans, 1, 7));
        assert!(is_max_context(&spans, 2, 7));
        // Ties go to the first window.
        let even = [(0, 4), (2, 4)];
        assert!(is_max_context(&even, 0, 2) != is_max_context(&even, 1, 2));
        assert!(is_max_context(&[(0, 3)], 0, 0));
    }

    fn tokenizer() -> Tokenizer {
        let vocab: Vec<String> = [
            "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "where", "is", "the", "cat", "?", "it",
            "sat", "on", "mat", "and", "then", "slept", ".", "(", ")", "1895", "-", "1943",
            "japanese",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        Tokenizer::from_vocab(vocab, Path::new("<test>")).expect("vocab")
    }

    fn file(qas: &str, context: &str) -> SquadFile {
        let text = format!(
            r#"{{"version": "v2.0", "data": [{{"paragraphs": [{{"context": {context:?}, "qas": [{qas}]}}]}}]}}"#
        );
        SquadFile::parse(&text, Path::new("t.json")).expect("parse")
    }

    const CONTEXT: &str = "It sat on the mat (1895-1943) and then slept.";

    /// Inputs are `[CLS] q [SEP] window [SEP]` with segment 1 from the window on; labels are
    /// the answer's tokens inside the window and `[CLS]` elsewhere.
    #[test]
    fn windows_carry_the_answer_or_cls() {
        let f = file(
            r#"{"id": "a", "question": "Where is the cat?", "answers": [{"text": "1895", "answer_start": 19}]},
               {"id": "b", "question": "Where?", "is_impossible": true, "answers": []}"#,
            CONTEXT,
        );
        // Context tokens: it sat on the mat ( 1895 - 1943 ) and then slept . (14)
        let config = WindowConfig {
            max_seq_length: 14,
            doc_stride: 3,
            max_query_length: 10,
            max_windows: 100,
        };
        let set =
            QaSet::build(f, Version::V2_0, &tokenizer(), &config, Purpose::Train).expect("build");
        assert_eq!(set.contexts[0].ids.len(), 14);
        let a = &set.examples[0];
        assert_eq!(
            a.answer,
            Some((6, 6)),
            "the token `1895`, not `(1895-1943)`"
        );
        assert_eq!(a.query.len(), 5);
        // Room 14 − 5 − 3 = 6 context tokens a window.
        assert_eq!(set.spans(0), vec![(0, 6), (3, 6), (6, 6), (9, 5)]);
        let (ids, types) = set.input(0);
        assert_eq!(ids.len(), 14);
        assert_eq!((ids[0], ids[6], ids[13]), (2, 3, 3));
        assert_eq!(types, [0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1]);
        let targets: Vec<(usize, usize, bool)> =
            a.windows.clone().map(|w| set.targets(w)).collect();
        assert_eq!(
            targets,
            vec![(0, 0, false), (10, 10, false), (7, 7, false), (0, 0, false)]
        );
        let b = &set.examples[1];
        assert!(b.is_impossible && b.answer.is_none());
        assert_eq!(set.spans(1), vec![(0, 9), (3, 9), (6, 8)]);
        assert!(b.windows.clone().all(|w| set.targets(w) == (0, 0, true)));
        let batch = set.batch::<burn::backend::Flex>(&[3, 0], &Default::default());
        assert_eq!((batch.seq_len, batch.lengths.clone()), (14, vec![13, 14]));
        // [CLS] and segment 1 (window and final [SEP]); the query and padding are masked out.
        let row = |r: usize| batch.answer_mask[r * 14..(r + 1) * 14].to_vec();
        let (one, zero) = (1.0f32, 0.0f32);
        let mut want = vec![one];
        want.extend([zero; 6]);
        want.extend([one; 6]);
        want.push(zero);
        assert_eq!(row(0), want);
        want[13] = one;
        assert_eq!(row(1), want);
    }

    /// Training skips a question whose offset does not point at its answer (listed with the
    /// reason); evaluation keeps every question; questions are cut to max_query_length; and a
    /// context needing too many windows is an error naming the question.
    #[test]
    fn bad_answers_long_questions_and_huge_contexts() {
        let qas = r#"{"id": "ok", "question": "the cat the cat the cat?", "answers": [{"text": "mat", "answer_start": 14}]},
                     {"id": "off", "question": "?", "answers": [{"text": "mat", "answer_start": 3}]}"#;
        let tok = tokenizer();
        let config = WindowConfig {
            max_query_length: 4,
            ..WindowConfig::default()
        };
        let train = QaSet::build(
            file(qas, CONTEXT),
            Version::V1_1,
            &tok,
            &config,
            Purpose::Train,
        )
        .expect("train");
        assert_eq!(train.examples.len(), 1);
        assert_eq!(train.skipped[0].0, "off");
        assert!(
            train.skipped[0].1.contains("does not point at"),
            "{:?}",
            train.skipped
        );
        assert_eq!(train.truncated_questions, 1);
        assert_eq!(train.examples[0].query.len(), 4);
        let eval = QaSet::build(
            file(qas, CONTEXT),
            Version::V1_1,
            &tok,
            &config,
            Purpose::Evaluate,
        )
        .expect("eval");
        assert_eq!(eval.examples.len(), 2);
        let small = WindowConfig {
            max_seq_length: 10,
            doc_stride: 1,
            max_query_length: 2,
            max_windows: 5,
        };
        let err = QaSet::build(
            file(qas, CONTEXT),
            Version::V1_1,
            &tok,
            &small,
            Purpose::Evaluate,
        )
        .expect_err("windows")
        .to_string();
        assert!(
            err.contains("question \"ok\"") && err.contains("max_windows = 5"),
            "{err}"
        );
        let err = QaSet::build(
            file(r#"{"id": "x", "question": "?", "answers": []}"#, CONTEXT),
            Version::V1_1,
            &tok,
            &config,
            Purpose::Train,
        )
        .expect_err("no answer")
        .to_string();
        assert!(
            err.contains("question \"x\"") && err.contains("--version 2.0"),
            "{err}"
        );
    }
}
