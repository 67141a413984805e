//! From the head's outputs over a question's windows to its answer text, as the reference's
//! `SpanBasedQAScorer.write_predictions` does:
//!
//! 1. **Candidates.** Every (start, end) pair the head proposes in every window of the
//!    question: the reference head's beam (the best starts × each start's best ends, scored by
//!    their log-probabilities), or, for HF's head, the `n_best_size` best starts × the
//!    `n_best_size` best ends (scored by their logits, after the reference's answer mask:
//!    `[CLS]` and the window's segment 1 only). A pair is kept only if both ends are context
//!    tokens of the window, the start is not `[CLS]`, the window is the start token's
//!    max-context window, the end is not before the start, and the span has at most
//!    `max_answer_length` tokens (30).
//! 2. **N-best.** Candidates sorted by start + end score (stable), turned into text, and the
//!    first `n_best_size` (20) distinct texts kept, with their softmax probabilities.
//! 3. **Text.** A span's text is the context between its first token's start and its last
//!    token's end, exactly as written (the tokenizer's byte offsets). The reference rebuilds it
//!    from whitespace-separated words with a character-alignment heuristic
//!    (`get_final_text`) that falls back to whole words when the alignment fails; offsets make
//!    the heuristic unnecessary, and the official metrics normalise away the whitespace that
//!    could differ.
//! 4. **2.0's no-answer score** (`null_odds`). With the answerability classifier: the smallest
//!    "unanswerable" logit over the question's windows; without it: the smallest `[CLS]` score
//!    (start + end) minus the best non-empty answer's score. The prediction is the best
//!    non-empty answer; a threshold on the no-answer score turns it into "" (the official
//!    script's `--na-prob-thresh`; [`answers_at`]).
//!
//! A question with no valid candidate gets the reference's placeholder answer `"empty"`.

use serde::{Deserialize, Serialize};

use crate::squad::data::Version;
use crate::squad::features::{QaSet, is_max_context};
use crate::squad::model::{WindowOutput, top_k};

/// Post-processing settings; the defaults are the reference's.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AnswerConfig {
    /// Candidates kept per question, and best starts/ends of HF's head (20).
    pub n_best_size: usize,
    /// Longest answer in tokens (30).
    pub max_answer_length: usize,
}

impl Default for AnswerConfig {
    fn default() -> Self {
        Self {
            n_best_size: 20,
            max_answer_length: 30,
        }
    }
}

/// One n-best entry.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NbestEntry {
    /// The answer text, as written in the context.
    pub text: String,
    /// Softmax of the n-best scores.
    pub probability: f64,
    /// Start score (log-probability for the reference head, logit for HF's).
    pub start_logit: f64,
    /// End score.
    pub end_logit: f64,
    /// The answer's character range in the context (`[start, end)`, Python's offsets), absent
    /// for the placeholder.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub char_span: Option<(usize, usize)>,
}

/// The prediction for one question.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Prediction {
    /// The question id.
    pub id: String,
    /// The answer (1.1: the best; 2.0: the best non-empty one).
    pub text: String,
    /// Its character range in the context, if it is a span.
    pub char_span: Option<(usize, usize)>,
    /// 2.0's no-answer score (higher: more likely unanswerable).
    pub null_odds: Option<f64>,
    /// The n-best list, best first.
    pub nbest: Vec<NbestEntry>,
}

struct Candidate {
    window: usize,
    start: usize,
    end: usize,
    start_score: f64,
    end_score: f64,
}

/// The predictions of every example of `set` from `outputs` (one per window of the set).
pub fn predictions(
    set: &QaSet,
    outputs: &[WindowOutput],
    config: &AnswerConfig,
) -> Vec<Prediction> {
    (0..set.examples.len())
        .map(|e| predict_example(set, e, outputs, config))
        .collect()
}

fn predict_example(
    set: &QaSet,
    e: usize,
    outputs: &[WindowOutput],
    config: &AnswerConfig,
) -> Prediction {
    let example = &set.examples[e];
    let spans = set.spans(e);
    let mut score_null = 1_000_000f64;
    let mut classifier = false;
    let mut candidates = Vec::new();
    for (index, w) in example.windows.clone().enumerate() {
        let window = set.windows[w];
        let offset = set.doc_offset(w);
        let len = set.input_len(w);
        let valid = |start: usize, end: usize| {
            let in_context = |p: usize| p >= offset && p < offset + window.length;
            start < len
                && end < len
                && start != 0
                && in_context(start)
                && in_context(end)
                && is_max_context(&spans, index, window.start + start - offset)
                && end >= start
                && end - start < config.max_answer_length
        };
        let mut push = |start: usize, end: usize, s: f32, t: f32| {
            if valid(start, end) {
                candidates.push(Candidate {
                    window: w,
                    start,
                    end,
                    start_score: f64::from(s),
                    end_score: f64::from(t),
                });
            }
        };
        let null = match &outputs[w] {
            WindowOutput::Joint {
                starts,
                ends,
                null_score,
                from_classifier,
            } => {
                classifier = *from_classifier;
                for (&(start, s), ends) in starts.iter().zip(ends) {
                    for &(end, t) in ends {
                        push(start, end, s, t);
                    }
                }
                f64::from(*null_score)
            }
            WindowOutput::Independent { start, end } => {
                let masked = |v: &[f32]| -> Vec<f32> {
                    v.iter()
                        .enumerate()
                        .map(|(p, x)| {
                            if p == 0 || p >= offset {
                                *x
                            } else {
                                x - 1000.0
                            }
                        })
                        .collect()
                };
                let (ms, me) = (masked(start), masked(end));
                for &(a, s) in &top_k(&ms, config.n_best_size) {
                    for &(b, t) in &top_k(&me, config.n_best_size) {
                        push(a, b, s, t);
                    }
                }
                f64::from(start[0]) + f64::from(end[0])
            }
        };
        score_null = score_null.min(null);
    }
    candidates
        .sort_by(|a, b| (b.start_score + b.end_score).total_cmp(&(a.start_score + a.end_score)));
    let nbest = nbest(set, e, &candidates, config.n_best_size);
    let best_non_empty = nbest.iter().find(|n| !n.text.is_empty());
    let null_odds = match set.version {
        Version::V1_1 => None,
        Version::V2_0 if classifier => Some(score_null),
        Version::V2_0 => {
            Some(best_non_empty.map_or(score_null, |n| score_null - n.start_logit - n.end_logit))
        }
    };
    let chosen = match set.version {
        Version::V1_1 => nbest.first(),
        Version::V2_0 => best_non_empty,
    };
    Prediction {
        id: set.file.questions[example.question].id.clone(),
        text: chosen.map_or(String::new(), |n| n.text.clone()),
        char_span: chosen.and_then(|n| n.char_span),
        null_odds,
        nbest,
    }
}

/// The first `n` distinct texts of the sorted candidates (or the placeholder), with their
/// probabilities.
fn nbest(set: &QaSet, e: usize, candidates: &[Candidate], n: usize) -> Vec<NbestEntry> {
    let example = &set.examples[e];
    let context = set.file.paragraphs[example.paragraph].context.as_str();
    let tokens = &set.contexts[example.paragraph];
    let mut out: Vec<NbestEntry> = Vec::new();
    for c in candidates {
        if out.len() >= n {
            break;
        }
        let window = set.windows[c.window];
        let offset = set.doc_offset(c.window);
        let first = tokens.offsets[window.start + c.start - offset].0;
        let last = tokens.offsets[window.start + c.end - offset].1;
        let text = &context[first..last];
        if out.iter().any(|x| x.text == text) {
            continue;
        }
        let chars = |byte: usize| context[..byte].chars().count();
        out.push(NbestEntry {
            text: text.to_string(),
            probability: 0.0,
            start_logit: c.start_score,
            end_logit: c.end_score,
            char_span: Some((chars(first), chars(last))),
        });
    }
    if out.is_empty() {
        out.push(NbestEntry {
            text: "empty".to_string(),
            probability: 0.0,
            start_logit: 0.0,
            end_logit: 0.0,
            char_span: None,
        });
    }
    let scores: Vec<f64> = out.iter().map(|x| x.start_logit + x.end_logit).collect();
    let max = scores.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let exps: Vec<f64> = scores.iter().map(|s| (s - max).exp()).collect();
    let total: f64 = exps.iter().sum();
    for (entry, x) in out.iter_mut().zip(exps) {
        entry.probability = x / total;
    }
    out
}

/// The final answers at no-answer threshold `threshold` (2.0: "" where the no-answer score
/// exceeds it; 1.1: the predictions).
pub fn answers_at(predictions: &[Prediction], threshold: f64) -> Vec<(String, String)> {
    predictions
        .iter()
        .map(|p| {
            let text = match p.null_odds {
                Some(odds) if odds > threshold => String::new(),
                _ => p.text.clone(),
            };
            (p.id.clone(), text)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::squad::data::SquadFile;
    use crate::squad::features::{Purpose, WindowConfig};
    use electra_data::Tokenizer;
    use std::path::Path;

    fn set(version: Version, config: &WindowConfig) -> QaSet {
        let vocab: Vec<String> = [
            "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "who", "?", "the", "old", "cat", "sat",
            "on", "a", "mat", "and", "slept", ".",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let tok = Tokenizer::from_vocab(vocab, Path::new("<t>")).expect("vocab");
        let file = SquadFile::parse(
            r#"{"data": [{"paragraphs": [{"context": "The  old Cat sat on a mat and slept.",
                "qas": [{"id": "q", "question": "who?", "answers": []}]}]}]}"#,
            Path::new("t.json"),
        )
        .expect("file");
        QaSet::build(file, version, &tok, config, Purpose::Evaluate).expect("set")
    }

    /// Context tokens: the old cat sat on a mat and slept . (10); the query `who ?` puts them
    /// at input positions 4..14, the final [SEP] at 14.
    fn joint(starts: Vec<(usize, f32)>, ends: Vec<Vec<(usize, f32)>>, null: f32) -> WindowOutput {
        WindowOutput::Joint {
            starts,
            ends,
            null_score: null,
            from_classifier: true,
        }
    }

    #[test]
    fn candidates_are_filtered_ranked_and_printed_from_the_context() {
        let s = set(Version::V2_0, &WindowConfig::default());
        assert_eq!(s.input_len(0), 15);
        let out = joint(
            vec![(0, -0.1), (5, -0.5), (2, -0.7), (6, -1.0), (14, -1.2)],
            vec![
                vec![(0, -0.1)],            // [CLS]: never an answer
                vec![(6, -0.2), (4, -0.3)], // "old Cat"; end before start
                vec![(6, -0.1)],            // start in the query
                vec![(6, -0.9)],            // "Cat" (same window, lower score)
                vec![(14, -0.1)],           // final [SEP]: not context
            ],
            1.5,
        );
        let p = &predictions(&s, &[out], &AnswerConfig::default())[0];
        assert_eq!(p.text, "old Cat", "the context's own spacing and case");
        assert_eq!(p.char_span, Some((5, 12)));
        assert_eq!(p.nbest.len(), 2);
        assert_eq!(p.nbest[1].text, "Cat");
        let (a, b) = (p.nbest[0].probability, p.nbest[1].probability);
        assert!((a + b - 1.0).abs() < 1e-12 && a > b);
        assert_eq!(p.null_odds, Some(1.5), "the classifier's logit");
        assert_eq!(answers_at(std::slice::from_ref(p), 1.0)[0].1, "");
        assert_eq!(answers_at(std::slice::from_ref(p), 2.0)[0].1, "old Cat");
        // Too long for max_answer_length 1: only "Cat" is left.
        let short = AnswerConfig {
            max_answer_length: 1,
            ..AnswerConfig::default()
        };
        let out = joint(
            vec![(5, -0.5), (6, -1.0)],
            vec![vec![(6, -0.2)], vec![(6, -0.9)]],
            0.0,
        );
        assert_eq!(predictions(&s, &[out], &short)[0].text, "Cat");
        // Nothing valid: the reference's placeholder.
        let none = joint(vec![(0, 0.0)], vec![vec![(0, 0.0)]], 0.0);
        assert_eq!(predictions(&s, &[none], &short)[0].text, "empty");
    }

    /// HF's head: independent start/end logits, masked to [CLS] and segment 1; 2.0's
    /// no-answer score is [CLS]'s score minus the best answer's; 1.1 has none.
    #[test]
    fn independent_logits_and_the_null_score_difference() {
        let s = set(Version::V2_0, &WindowConfig::default());
        let mut start = vec![0.0f32; 15];
        let mut end = vec![0.0f32; 15];
        start[0] = 1.0;
        end[0] = 1.0;
        start[1] = 9.0; // a query token: masked
        end[2] = 9.0;
        start[7] = 3.0; // "sat"
        end[9] = 2.0; // "a"
        let out = WindowOutput::Independent { start, end };
        let p = &predictions(&s, std::slice::from_ref(&out), &AnswerConfig::default())[0];
        assert_eq!(p.text, "sat on a");
        assert_eq!(p.null_odds, Some(2.0 - 5.0));
        let v1 = set(Version::V1_1, &WindowConfig::default());
        let p = &predictions(&v1, &[out], &AnswerConfig::default())[0];
        assert_eq!((p.text.as_str(), p.null_odds), ("sat on a", None));
    }

    /// With two windows, a start is only taken from the window where it has the most
    /// context, and the question's null score is the smallest over its windows.
    #[test]
    fn max_context_and_the_smallest_null_score_over_windows() {
        let config = WindowConfig {
            max_seq_length: 12,
            doc_stride: 3,
            max_query_length: 2,
            max_windows: 10,
        };
        let s = set(Version::V2_0, &config);
        // Room 12 − 2 − 3 = 7: windows (0,7) and (3,7); offset 4 in both.
        assert_eq!(s.spans(0), vec![(0, 7), (3, 7)]);
        // Context token 4 ("on") is position 8 in window 0 (left 4, right 2) and position 5 in
        // window 1 (left 1, right 5): max context in window 0.
        let first = joint(vec![(8, -2.0)], vec![vec![(8, -2.0)]], 0.5);
        let second = joint(vec![(5, -0.1)], vec![vec![(5, -0.1)]], -0.5);
        let p = &predictions(&s, &[first, second], &AnswerConfig::default())[0];
        assert_eq!(p.text, "on");
        assert_eq!(p.nbest.len(), 1, "window 1's better-scored copy is dropped");
        assert_eq!(p.nbest[0].start_logit, -2.0);
        assert_eq!(p.null_odds, Some(-0.5));
    }
}
