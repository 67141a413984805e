//! Property tests over the files the SQuAD code reads: SQuAD files (`electra squad --train
//! --dev`, `squad score`), question files (`squad predict`), and prediction and no-answer
//! files (`squad score`). Arbitrary bytes and structured-but-wrong JSON (the official layout
//! with keys missing, of the wrong type or out of range; offsets past the context; empty,
//! non-ASCII and whitespace-only contexts; duplicate ids) must give `Ok` or an `Err`, never a
//! panic; what parses is also windowed for training and evaluation, and scored. Fixed, small
//! case counts (`PROPTEST_CASES` overrides them).

use std::path::Path;
use std::sync::OnceLock;

use electra_data::Tokenizer;
use electra_fs::testing::cases as config;
use proptest::prelude::*;
use serde_json::{Value, json};

use crate::squad::data::{SquadFile, Version};
use crate::squad::features::{Purpose, QaSet, WindowConfig};
use crate::squad::metrics::{AnswerTexts, NullOdds, evaluate};
use crate::squad::predict::parse_questions;

fn tokenizer() -> &'static Tokenizer {
    static TOKENIZER: OnceLock<Tokenizer> = OnceLock::new();
    TOKENIZER.get_or_init(|| electra_data::demo::demo_tokenizer().expect("demo tokenizer"))
}

/// A JSON value of any kind, small.
fn scalar() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        (0u64..40).prop_map(Value::from),
        any::<f64>()
            .prop_map(|x| serde_json::Number::from_f64(x).map_or(Value::Null, Value::Number)),
        "\\PC{0,12}".prop_map(Value::from),
        Just(Value::from("")),
        Just(Value::from("   ")),
        Just(Value::from("the cat sat on the mat")),
        Just(Value::from(vec![1, 2])),
    ]
}

/// Text for contexts, questions and answers: words, empty, whitespace, non-ASCII.
fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        Just(" \t\n".to_string()),
        Just("the cat sat on the mat .".to_string()),
        Just("Ünïcode café: Paris is in France.".to_string()),
        "[a-z ]{0,40}",
        "\\PC{0,30}",
    ]
}

/// A question object: right keys with right or wrong values, keys dropped.
fn question() -> impl Strategy<Value = Value> {
    let answer = (
        prop_oneof![3 => text().prop_map(Value::from), 1 => scalar()],
        prop_oneof![3 => (0u64..40).prop_map(Value::from), 1 => scalar()],
        any::<u8>(),
    )
        .prop_map(|(t, s, drop)| {
            let mut a = json!({"text": t, "answer_start": s});
            if drop % 7 == 0 {
                a.as_object_mut().map(|o| o.remove("answer_start"));
            }
            a
        });
    (
        prop_oneof![4 => "[a-c]{1,2}".prop_map(Value::from), 1 => scalar()],
        prop_oneof![4 => text().prop_map(Value::from), 1 => scalar()],
        prop_oneof![4 => proptest::collection::vec(answer, 0..3).prop_map(Value::from), 1 => scalar()],
        prop_oneof![Just(Value::Null), any::<bool>().prop_map(Value::from), scalar()],
        any::<u8>(),
    )
        .prop_map(|(id, q, answers, impossible, drop)| {
            let mut qa = json!({"id": id, "question": q, "answers": answers, "is_impossible": impossible});
            let keys = ["id", "question", "answers", "is_impossible"];
            if drop % 5 == 0 {
                qa.as_object_mut().map(|o| o.remove(keys[usize::from(drop / 5) % 4]));
            }
            qa
        })
}

/// An official-layout file with wrong parts, or arbitrary bytes.
fn squad_text() -> impl Strategy<Value = String> {
    let paragraph = (
        prop_oneof![4 => text().prop_map(Value::from), 1 => scalar()],
        proptest::collection::vec(question(), 0..4),
    )
        .prop_map(|(c, qas)| json!({"context": c, "qas": qas}));
    let layout = (
        prop_oneof![
            Just(Value::from("v2.0")),
            Just(Value::from("1.1")),
            scalar()
        ],
        proptest::collection::vec(proptest::collection::vec(paragraph, 0..3), 0..3),
    )
        .prop_map(|(v, articles)| {
            let data: Vec<Value> = articles
                .into_iter()
                .map(|ps| json!({"title": "t", "paragraphs": ps}))
                .collect();
            json!({"version": v, "data": data}).to_string()
        });
    prop_oneof![
        4 => layout,
        1 => proptest::collection::vec(any::<u8>(), 0..200)
            .prop_map(|b| String::from_utf8_lossy(&b).into_owned()),
    ]
}

fn small_windows() -> WindowConfig {
    WindowConfig {
        max_seq_length: 16,
        doc_stride: 3,
        max_query_length: 4,
        max_windows: 20,
    }
}

proptest! {
    #![proptest_config(config(128))]

    /// SQuAD files: parsed; what parses is windowed for training and evaluation, as both
    /// versions.
    #[test]
    fn squad_files_never_panic(text in squad_text()) {
        let path = Path::new("x.json");
        if let Ok(file) = SquadFile::parse(&text, path) {
            for version in [Version::V1_1, Version::V2_0] {
                for purpose in [Purpose::Train, Purpose::Evaluate] {
                    if let Ok(set) = QaSet::build(file.clone(), version, tokenizer(), &small_windows(), purpose) {
                        for w in 0..set.len() {
                            let _ = set.input(w);
                            let _ = set.targets(w);
                        }
                    }
                }
            }
        }
        let _ = parse_questions(&text, path);
    }

    /// `squad score`: any predictions and no-answer scores against any file that parses.
    #[test]
    fn scoring_never_panics(
        text in squad_text(),
        predictions in proptest::collection::vec(("[a-c]{1,2}", text()), 0..6),
        odds in proptest::collection::vec(("[a-c]{1,2}", any::<f64>()), 0..6),
        threshold in prop_oneof![Just(1.0), Just(-2.75), any::<f64>()],
    ) {
        if let Ok(file) = SquadFile::parse(&text, Path::new("x.json")) {
            let predictions: AnswerTexts = predictions.into_iter().collect();
            let odds: NullOdds = odds.into_iter().collect();
            for version in [Version::V1_1, Version::V2_0] {
                let _ = evaluate(&file, version, &predictions, None, threshold);
                let _ = evaluate(&file, version, &predictions, Some(&odds), threshold);
            }
        }
    }
}
