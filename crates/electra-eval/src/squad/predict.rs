//! `electra squad predict`: answers to a user's own questions with a fine-tuned model.
//!
//! **Input** (JSON, UTF-8): an official SQuAD file (`{"data": [{"paragraphs": [{"context",
//! "qas": [{"id", "question"}]}]}]}`, answers optional), a list of
//! `{"id", "question", "context"}` objects (`id` optional: the 0-based position), or one such
//! object. **Output**: a JSON list in input order, one object per question: `id`, `question`,
//! `answer` (the text as written in the context; "" when a 2.0 model's no-answer score exceeds
//! the threshold), `start` and `end` (its character range in the context, Python's offsets;
//! absent for ""), `probability` (of the answer among the n-best), and for 2.0 models
//! `null_odds` and `best_span` (the best answer before the threshold).

use std::path::Path;

use burn::prelude::*;
use electra_data::Tokenizer;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::error::EvalError;
use crate::squad::data::{SquadFile, Version};
use crate::squad::features::{Purpose, QaSet};
use crate::squad::finetune::{SquadConfig, infer};
use crate::squad::model::ElectraForSquad;
use crate::squad::postprocess::{self, NbestEntry};

/// One answered question.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Answered {
    /// The question's id.
    pub id: String,
    /// The question.
    pub question: String,
    /// The answer ("" for no answer).
    pub answer: String,
    /// Its character range in the context.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub start: Option<usize>,
    /// End of that range (exclusive).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub end: Option<usize>,
    /// Its probability among the n-best answers.
    pub probability: f64,
    /// 2.0: the no-answer score (higher: more likely unanswerable).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub null_odds: Option<f64>,
    /// 2.0: the best span, whatever the threshold.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub best_span: Option<String>,
    /// The n-best answers, when asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nbest: Option<Vec<NbestEntry>>,
}

/// Reads questions in any of the input forms (module docs); `path` names the file in errors.
pub fn parse_questions(text: &str, path: &Path) -> Result<SquadFile, EvalError> {
    let value: Value = serde_json::from_str(text)
        .map_err(|e| EvalError::format(path, e.line(), format!("not valid JSON: {e}")))?;
    if value.get("data").is_some() {
        return SquadFile::parse(text, path);
    }
    let items = match value {
        Value::Array(items) => items,
        object @ Value::Object(_) => vec![object],
        other => {
            return Err(EvalError::Squad {
                path: path.to_path_buf(),
                at: "the top level".into(),
                message: format!(
                    "expected an official SQuAD file, a list of {{\"question\", \"context\"}} \
                     objects or one such object, found {}",
                    if other.is_null() { "null" } else { "a scalar" }
                ),
            });
        }
    };
    let mut paragraphs = Vec::new();
    for (i, item) in items.into_iter().enumerate() {
        let mut qa = json!({});
        let context = item.get("context").cloned().unwrap_or(Value::Null);
        for key in ["id", "question"] {
            if let Some(v) = item.get(key) {
                qa[key] = v.clone();
            }
        }
        if qa.get("id").is_none() {
            qa["id"] = Value::from(i.to_string());
        }
        paragraphs.push(json!({"context": context, "qas": [qa]}));
    }
    let official = json!({"data": [{"paragraphs": paragraphs}]});
    SquadFile::parse(&official.to_string(), path).map_err(|e| match e {
        // The official layout's paths (data[0].paragraphs[i]) name list item i here.
        EvalError::Squad { path, at, message } => EvalError::Squad {
            path,
            at: at
                .replace("data[0].paragraphs[", "item [")
                .replace("].qas[0]", "]"),
            message,
        },
        other => other,
    })
}

/// Reads a question file (see [`parse_questions`]).
pub fn read_questions(path: &Path) -> Result<SquadFile, EvalError> {
    let text = crate::error::read_utf8(path)?;
    parse_questions(&text, path)
}

/// Answers every question of `file` with `model` (read as `version`): 2.0 answers are ""
/// where the no-answer score exceeds `null_threshold`. `nbest` keeps the n-best lists.
#[allow(clippy::too_many_arguments)]
pub fn answer<B: Backend>(
    model: &ElectraForSquad<B>,
    tokenizer: &Tokenizer,
    file: SquadFile,
    version: Version,
    config: &SquadConfig,
    null_threshold: f64,
    nbest: bool,
    device: &B::Device,
) -> Result<Vec<Answered>, EvalError> {
    let set = QaSet::build(file, version, tokenizer, &config.windows, Purpose::Evaluate)?;
    let outputs = infer(model, &set, config, device, &mut |_| {});
    let predictions = postprocess::predictions(&set, &outputs, &config.answers);
    Ok(predictions
        .into_iter()
        .zip(&set.examples)
        .map(|(p, example)| {
            let no_answer = p.null_odds.is_some_and(|o| o > null_threshold);
            let chosen = p.nbest.iter().find(|n| n.text == p.text);
            Answered {
                question: set.file.questions[example.question].question.clone(),
                answer: if no_answer {
                    String::new()
                } else {
                    p.text.clone()
                },
                start: p.char_span.filter(|_| !no_answer).map(|s| s.0),
                end: p.char_span.filter(|_| !no_answer).map(|s| s.1),
                probability: chosen.map_or(0.0, |n| n.probability),
                null_odds: p.null_odds,
                best_span: p.null_odds.map(|_| p.text.clone()),
                nbest: nbest.then(|| p.nbest.clone()),
                id: p.id,
            }
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_input_form_reads_as_questions() {
        let path = Path::new("in.json");
        let one = parse_questions(r#"{"question": "Who?", "context": "Ann ran."}"#, path)
            .expect("object");
        assert_eq!((one.len(), one.questions[0].id.as_str()), (1, "0"));
        let list = parse_questions(
            r#"[{"id": "a", "question": "Who?", "context": "Ann ran."},
                {"question": "What?", "context": "Bob sat."}]"#,
            path,
        )
        .expect("list");
        assert_eq!(list.questions[1].id, "1");
        assert_eq!(list.context(&list.questions[1]), "Bob sat.");
        let official = parse_questions(
            r#"{"data": [{"paragraphs": [{"context": "c", "qas": [{"id": "x", "question": "q"}]}]}]}"#,
            path,
        )
        .expect("official");
        assert_eq!(official.questions[0].id, "x");
        let err = parse_questions(r#"[{"question": "Who?"}]"#, path)
            .expect_err("no context")
            .to_string();
        assert!(
            err.contains("item [0]") && err.contains("`context`"),
            "{err}"
        );
        let err = parse_questions("3", path).expect_err("scalar").to_string();
        assert!(err.contains("expected an official SQuAD file"), "{err}");
    }
}
