//! Property tests over the files electra-eval reads: GLUE TSV files (every task and split,
//! in `electra finetune/glue` and `glue score`) and prediction files (`glue score`).
//! Arbitrary bytes and structured-but-wrong rows (the right number of fields with wrong
//! labels, ids and texts; missing or extra fields; `\r`, BOMs, quotes) must give `Ok` or an
//! `Err`, never a panic; what parses is also labelled, split, tokenized and scored. Fixed,
//! small case counts (`PROPTEST_CASES` overrides them).

use std::path::Path;
use std::sync::OnceLock;

use electra_data::Tokenizer;
use electra_fs::testing::cases as config;
use proptest::prelude::*;

use crate::glue::data::{carve_validation, parse};
use crate::glue::features::encode;
use crate::glue::report::{read_predictions, score_file};
use crate::glue::task::{Split, Task};

const SPLITS: [Split; 5] = [
    Split::Train,
    Split::Dev,
    Split::DevMismatched,
    Split::Test,
    Split::TestMismatched,
];

fn tokenizer() -> &'static Tokenizer {
    static TOKENIZER: OnceLock<Tokenizer> = OnceLock::new();
    TOKENIZER.get_or_init(|| electra_data::demo::demo_tokenizer().expect("demo tokenizer"))
}

/// A TSV field: labels of every task, numbers in and out of range, ids, text, junk.
fn field() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("0".to_string()),
        Just("1".to_string()),
        Just("2".to_string()),
        Just("-1".to_string()),
        Just("3.7".to_string()),
        Just("5.0001".to_string()),
        Just("nan".to_string()),
        Just("inf".to_string()),
        Just("1e400".to_string()),
        Just("entailment".to_string()),
        Just("not_entailment".to_string()),
        Just("neutral".to_string()),
        Just("contradiction".to_string()),
        Just(String::new()),
        Just("\"quoted".to_string()),
        Just("\u{feff}".to_string()),
        Just("The cat sat .".to_string()),
        "[ -~]{0,16}",
        "\\PC{0,10}",
    ]
}

/// GLUE-like text: a header and rows of 1..12 fields, or of exactly `columns` fields.
fn tsv(columns: usize) -> impl Strategy<Value = String> {
    let row = prop_oneof![
        3 => proptest::collection::vec(field(), columns..=columns),
        1 => proptest::collection::vec(field(), 1..12),
    ];
    let ending = prop_oneof![Just("\n"), Just("\r\n"), Just("")];
    (
        any::<bool>(),
        proptest::collection::vec((row.prop_map(|r| r.join("\t")), ending), 0..10),
    )
        .prop_map(|(bom, rows)| {
            let mut text = if bom {
                "\u{feff}".to_string()
            } else {
                String::new()
            };
            for (row, end) in rows {
                text.push_str(&row);
                text.push_str(if end.is_empty() { "\n" } else { end });
            }
            text
        })
}

fn glue_text() -> impl Strategy<Value = (usize, usize, String)> {
    (0..Task::ALL.len(), 0..SPLITS.len()).prop_flat_map(|(t, s)| {
        let columns = Task::ALL[t].layout(SPLITS[s]).columns;
        (
            Just(t),
            Just(s),
            prop_oneof![
                3 => tsv(columns),
                1 => proptest::collection::vec(any::<u8>(), 0..200)
                    .prop_map(|b| String::from_utf8_lossy(&b).into_owned()),
            ],
        )
    })
}

proptest! {
    #![proptest_config(config(128))]

    /// Every task and split: parsed; what parses is labelled, carved and tokenized.
    #[test]
    fn glue_files_never_panic((t, s, text) in glue_text(), fraction in prop_oneof![Just(0.1), Just(0.5), any::<f64>()]) {
        let (task, split) = (Task::ALL[t], SPLITS[s]);
        if let Ok(data) = parse(&text, Path::new("x.tsv"), task, split) {
            let _ = data.labels();
            let _ = carve_validation(&data, fraction, 7);
            let _ = encode(tokenizer(), &data.examples, 16);
        }
    }

    /// `glue score TASK PREDICTIONS GOLD`: any prediction file against any gold file.
    #[test]
    fn prediction_files_and_scoring_never_panic(
        t in 0..Task::ALL.len(),
        predictions in prop_oneof![
            3 => tsv(2).prop_map(|t| format!("index\tprediction\n{t}")),
            1 => tsv(2),
        ],
        gold in prop_oneof![
            Just(None),
            (0..Task::ALL.len()).prop_flat_map(|t| tsv(Task::ALL[t].layout(Split::Dev).columns)).prop_map(Some),
        ],
    ) {
        let task = Task::ALL[t];
        let dir = tempfile::tempdir().expect("tempdir");
        let pred_path = dir.path().join("pred.tsv");
        std::fs::write(&pred_path, &predictions).expect("write");
        let _ = read_predictions(&pred_path, task);
        // Without a gold file of its own, the predictions are scored against themselves laid
        // out as the task's dev file would be (mostly a layout error, sometimes a score).
        let gold_path = dir.path().join("dev.tsv");
        std::fs::write(&gold_path, gold.unwrap_or(predictions)).expect("write");
        let _ = score_file(task, &pred_path, &gold_path);
    }
}
