//! Fine-tuning end to end on a tiny randomly initialised encoder: it learns a trivially
//! separable synthetic task, and the layer-wise learning-rate multipliers reach the optimizer.

use std::path::Path;
use std::sync::Mutex;

use burn::backend::{Autodiff, Flex};
use burn::prelude::*;
use electra_data::Tokenizer;
use electra_eval::data::{Example, Label};
use electra_eval::features::encode;
use electra_eval::finetune::{FinetuneConfig, Finetuner, NoProgress, evaluate, train};
use electra_eval::metrics::Predictions;
use electra_eval::task::{Metric, Task};
use electra_model::{ElectraConfig, ElectraModel};
use electra_optim::AdamConfig;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

type AB = Autodiff<Flex>;

/// The backend RNG is process-wide: tests that seed it and train take turns.
static TRAINING: Mutex<()> = Mutex::new(());

const FILLER: [&str; 12] = [
    "the", "a", "film", "story", "actor", "plot", "was", "is", "very", "quite", "and", "so",
];

fn tokenizer() -> Tokenizer {
    let mut vocab: Vec<String> = [
        "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "great", "awful",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    vocab.extend(FILLER.iter().map(|s| s.to_string()));
    Tokenizer::from_vocab(vocab, Path::new("<test vocab>")).expect("vocab")
}

fn tiny_config(vocab_size: usize) -> ElectraConfig {
    ElectraConfig::micro(vocab_size)
}

/// Sentences of filler words with "great" (label 1) or "awful" (label 0) somewhere.
fn synthetic(n: usize, seed: u64) -> Vec<Example> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    (0..n)
        .map(|i| {
            let label = rng.random_range(0..2usize);
            let len = rng.random_range(3..8);
            let mut words: Vec<&str> = (0..len)
                .map(|_| FILLER[rng.random_range(0..FILLER.len())])
                .collect();
            let at = rng.random_range(0..=words.len());
            words.insert(at, if label == 1 { "great" } else { "awful" });
            Example {
                id: i.to_string(),
                text_a: words.join(" "),
                text_b: None,
                label: Some(Label::Class(label)),
            }
        })
        .collect()
}

#[test]
fn fine_tuning_learns_a_separable_task() {
    let _guard = TRAINING.lock().unwrap_or_else(|e| e.into_inner());
    let device = Default::default();
    let tok = tokenizer();
    let config = tiny_config(tok.vocab_size());
    AB::seed(&device, 3);
    let encoder = ElectraModel::<AB>::new(&config, &device);
    let train_set = encode(&tok, &synthetic(160, 1), 32).expect("train");
    let dev_set = encode(&tok, &synthetic(64, 2), 32).expect("dev");
    let ft = FinetuneConfig {
        learning_rate: Some(2e-3),
        epochs: Some(6),
        ..FinetuneConfig::default()
    };
    let trained = train(
        encoder,
        &config,
        Task::Sst2,
        &train_set,
        &ft,
        7,
        &device,
        &mut NoProgress,
    )
    .expect("train");
    assert_eq!(trained.history.len(), 5 * 6);
    let epoch_mean = |e: usize| {
        let l: Vec<f64> = trained
            .history
            .iter()
            .filter(|r| r.epoch == e)
            .map(|r| r.loss)
            .collect();
        l.iter().sum::<f64>() / l.len() as f64
    };
    let (first, last) = (epoch_mean(0), epoch_mean(5));
    assert!(last < 0.5 * first, "loss {first} -> {last}");
    // Warmup: the first step has learning rate 0, the peak is near 10 % of the steps.
    assert_eq!(trained.history[0].lr, 0.0);
    let (scores, predictions) =
        evaluate(&trained.model, Task::Sst2, &dev_set, 64, &device).expect("eval");
    let acc = scores[&Metric::Accuracy];
    assert!(acc > 0.9, "dev accuracy {acc} (chance 0.5)");
    let Predictions::Classes(classes) = predictions else {
        panic!("classes expected")
    };
    assert_eq!(classes.len(), 64);
}

/// With zero moments the reference Adam moves each weight by `lr·mult·(1−β1)·g /
/// (√(1−β2)·|g| + ε)`, which is `lr·mult·3.1623` for any non-zero gradient when ε is tiny; the
/// largest move in a tensor therefore reveals the multiplier the optimizer applied to it.
#[test]
fn layerwise_multipliers_reach_the_optimizer() {
    let _guard = TRAINING.lock().unwrap_or_else(|e| e.into_inner());
    let device = Default::default();
    let tok = tokenizer();
    let config = tiny_config(tok.vocab_size());
    let set = encode(&tok, &synthetic(16, 5), 32).expect("set");
    let indices: Vec<usize> = (0..16).collect();
    let alpha = 0.5;
    for corrected in [false, true] {
        AB::seed(&device, 11);
        let encoder = ElectraModel::<AB>::new(&config, &device);
        let ft = FinetuneConfig {
            layerwise_lr_decay: Some(alpha),
            corrected_layerwise_decay: corrected,
            // A negligible ε makes every weight with a gradient move by exactly lr·mult·3.1623.
            optimizer: AdamConfig {
                epsilon: 1e-12,
                clip_norm: None,
                weight_decay: 0.0,
                ..AdamConfig::default()
            },
            ..FinetuneConfig::default()
        };
        let recipe = ft.recipe(Task::Sst2, &config);
        let mut tuner =
            Finetuner::new(encoder, &config, Task::Sst2, &recipe, &ft, &device).expect("tuner");
        // L = 2: depth 0 embeddings, 1 and 2 the layers, 4 the head.
        let expected: [(&str, f64); 4] = if corrected {
            [
                ("classifier.weight", 1.0),
                ("electra.encoder.layers.1.intermediate.weight", alpha),
                (
                    "electra.encoder.layers.0.intermediate.weight",
                    alpha.powi(2),
                ),
                ("electra.embeddings.word_embeddings.weight", alpha.powi(3)),
            ]
        } else {
            [
                ("classifier.weight", 1.0),
                (
                    "electra.encoder.layers.1.intermediate.weight",
                    alpha.powi(2),
                ),
                (
                    "electra.encoder.layers.0.intermediate.weight",
                    alpha.powi(3),
                ),
                ("electra.embeddings.word_embeddings.weight", alpha.powi(4)),
            ]
        };
        for (path, m) in expected {
            assert_eq!(tuner.multipliers().get(path).copied(), Some(m), "{path}");
        }
        let before = snapshot(&tuner.model);
        let lr = 1e-3;
        tuner.step(&set, &indices, lr, &device).expect("step");
        let after = snapshot(&tuner.model);
        for (path, m) in expected {
            let (b, a) = (&before[path], &after[path]);
            let moved = b
                .iter()
                .zip(a)
                .map(|(x, y)| (x - y).abs())
                .fold(0.0, f64::max);
            let ratio = moved / (lr * (0.1 / 0.001f64.sqrt()));
            assert!(
                (ratio - m).abs() < 1e-3 * m,
                "{path} (corrected {corrected}): effective multiplier {ratio}, expected {m}"
            );
        }
    }
}

fn snapshot<B: Backend>(
    model: &electra_eval::model::ElectraForSequenceClassification<B>,
) -> std::collections::HashMap<&'static str, Vec<f64>> {
    let flat =
        |t: Tensor<B, 2>| -> Vec<f64> { t.into_data().iter::<f32>().map(f64::from).collect() };
    let mut out = std::collections::HashMap::new();
    out.insert("classifier.weight", flat(model.classifier.weight.val()));
    for (i, name) in [
        (1, "electra.encoder.layers.1.intermediate.weight"),
        (0, "electra.encoder.layers.0.intermediate.weight"),
    ] {
        out.insert(
            name,
            flat(model.electra.encoder.layers[i].intermediate.weight.val()),
        );
    }
    out.insert(
        "electra.embeddings.word_embeddings.weight",
        flat(model.electra.embeddings.word_embeddings.weight.val()),
    );
    out
}

/// A discriminator imported from a Hugging Face directory is trained as a whole: after one
/// step the encoder's weights (not only the new head) have moved.
#[test]
fn an_imported_hf_discriminator_is_fine_tuned_end_to_end() {
    let _guard = TRAINING.lock().unwrap_or_else(|e| e.into_inner());
    let device = Default::default();
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../electra-model/tests/fixtures/hf-tiny/discriminator");
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut vocab: Vec<String> = [
        "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "great", "awful",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    vocab.extend(FILLER.iter().map(|s| s.to_string()));
    let vocab_path = tmp.path().join("vocab.txt");
    std::fs::write(&vocab_path, vocab.join("\n") + "\n").expect("vocab");
    AB::seed(&device, 5);
    let pre = electra_eval::pretrained::load::<AB>(&dir, Some(&vocab_path), false, &device)
        .expect("load");
    assert!(
        pre.description
            .contains("Hugging Face ElectraForPreTraining")
    );
    let set = encode(&pre.tokenizer, &synthetic(16, 9), 32).expect("set");
    let ft = FinetuneConfig::default();
    let recipe = ft.recipe(Task::Sst2, &pre.config);
    let mut tuner =
        Finetuner::new(pre.encoder, &pre.config, Task::Sst2, &recipe, &ft, &device).expect("tuner");
    let before = snapshot(&tuner.model);
    let indices: Vec<usize> = (0..16).collect();
    tuner.step(&set, &indices, 1e-3, &device).expect("step");
    let after = snapshot(&tuner.model);
    for path in [
        "electra.embeddings.word_embeddings.weight",
        "electra.encoder.layers.0.intermediate.weight",
        "electra.encoder.layers.1.intermediate.weight",
        "classifier.weight",
    ] {
        let moved = before[path]
            .iter()
            .zip(&after[path])
            .map(|(x, y)| (x - y).abs())
            .fold(0.0, f64::max);
        assert!(moved > 1e-5, "{path} did not move ({moved})");
    }
}

/// Counts what a GLUE run reports to its observer.
#[derive(Default)]
struct Heard {
    skipped: Vec<Task>,
    seeds: Vec<(Task, u64)>,
}

impl electra_eval::finetune::Progress for Heard {}

impl electra_eval::glue::GlueObserver for Heard {
    fn task_skipped(&mut self, task: Task, _note: &str) {
        self.skipped.push(task);
    }
    fn seed_finished(&mut self, task: Task, result: &electra_eval::report::SeedResult) {
        self.seeds.push((task, result.seed));
    }
}

/// An MNLI row of `columns` fields: index, texts in columns 8 and 9, the label last.
fn mnli_row(i: usize, columns: usize, label: Option<&str>) -> String {
    let mut fields = vec![i.to_string(); columns];
    fields[8] = format!("the film {} great", FILLER[i % FILLER.len()]);
    fields[9] = format!("a story {} awful", FILLER[(i + 3) % FILLER.len()]);
    if let Some(label) = label {
        fields[columns - 1] = label.to_string();
    }
    fields.join("\t")
}

fn mnli_file(path: &Path, rows: usize, columns: usize, labelled: bool) {
    let labels = ["contradiction", "entailment", "neutral"];
    let mut text = vec!["header".to_string(); 1];
    text.extend((0..rows).map(|i| mnli_row(i, columns, labelled.then(|| labels[i % 3]))));
    std::fs::write(path, text.join("\n") + "\n").expect("write");
}

#[test]
fn a_glue_run_scores_mnli_mismatched_and_writes_the_mnli_and_ax_files() {
    let _guard = TRAINING.lock().unwrap_or_else(|e| e.into_inner());
    let device = Default::default();
    let glue = tempfile::tempdir().expect("glue");
    let mnli = glue.path().join("MNLI");
    std::fs::create_dir_all(&mnli).expect("mnli");
    mnli_file(&mnli.join("train.tsv"), 12, 12, true);
    mnli_file(&mnli.join("dev_matched.tsv"), 6, 16, true);
    mnli_file(&mnli.join("dev_mismatched.tsv"), 5, 16, true);
    mnli_file(&mnli.join("test_matched.tsv"), 4, 10, false);
    mnli_file(&mnli.join("test_mismatched.tsv"), 3, 10, false);
    let ax = glue.path().join("diagnostic");
    std::fs::create_dir_all(&ax).expect("ax");
    std::fs::write(
        ax.join("diagnostic.tsv"),
        "index\tsentence1\tsentence2\n0\tthe film\ta plot\n1\tgreat\tawful\n",
    )
    .expect("ax file");
    let tok = tokenizer();
    let config = tiny_config(tok.vocab_size());
    AB::seed(&device, 3);
    let pre = electra_eval::pretrained::Pretrained {
        encoder: ElectraModel::<AB>::new(&config, &device),
        config,
        tokenizer: tok,
        description: "tiny".into(),
    };
    let out = tempfile::tempdir().expect("out");
    let run = electra_eval::glue::GlueRun {
        glue_dir: glue.path().to_path_buf(),
        tasks: vec![Task::Cola, Task::Mnli],
        seeds: vec![1, 2],
        config: FinetuneConfig {
            epochs: Some(1),
            batch_size: 4,
            max_seq_len: 16,
            ..FinetuneConfig::default()
        },
        strict: false,
        predictions_dir: out.path().join("predictions"),
    };
    let mut heard = Heard::default();
    let report = electra_eval::glue::run(&pre, &run, &device, &mut heard).expect("run");

    // CoLA has no folder: skipped with a note, the run goes on.
    assert_eq!(heard.skipped, vec![Task::Cola]);
    assert!(report.skipped[0].contains("CoLA"), "{:?}", report.skipped);
    assert_eq!(heard.seeds, vec![(Task::Mnli, 1), (Task::Mnli, 2)]);
    let mnli = &report.tasks[0];
    assert_eq!((mnli.task.as_str(), mnli.seeds.len()), ("MNLI", 2));
    assert_eq!((mnli.train_examples, mnli.validation_examples), (12, 6));
    for seed in &mnli.seeds {
        let keys: Vec<&str> = seed.scores.keys().map(String::as_str).collect();
        assert_eq!(keys, ["accuracy", "mismatched_accuracy"]);
    }
    let names: Vec<String> = mnli
        .prediction_files
        .iter()
        .map(|p| {
            Path::new(p)
                .file_name()
                .unwrap()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    assert_eq!(names, ["MNLI-m.tsv", "MNLI-mm.tsv", "AX.tsv"]);
    let rows = |name: &str| {
        std::fs::read_to_string(out.path().join("predictions").join(name))
            .expect("predictions")
            .lines()
            .count()
    };
    assert_eq!(
        (rows("MNLI-m.tsv"), rows("MNLI-mm.tsv"), rows("AX.tsv")),
        (5, 4, 3)
    );
    let ax_text = std::fs::read_to_string(out.path().join("predictions/AX.tsv")).expect("ax");
    for line in ax_text.lines().skip(1) {
        let label = line.split('\t').nth(1).expect("label");
        assert!(Task::Ax.labels().contains(&label), "{line}");
    }
    assert!(report.paper_average.is_some());
}

/// Issue 26: inference batches sorted by length (each padded to its own longest example) give
/// the predictions of batches in file order, in file order: the attention mask makes padding
/// inert, so only float summation order may differ. Checked on a regression head (scores
/// compared to 1e-5) and a classification head (identical classes).
#[test]
fn length_sorted_inference_gives_the_predictions_of_file_order() {
    use electra_eval::finetune::predict_batched;
    use electra_eval::model::ElectraForSequenceClassification;
    use electra_eval::tuning::batching;
    let _guard = TRAINING.lock().unwrap_or_else(|e| e.into_inner());
    let device = Default::default();
    let tok = tokenizer();
    let config = tiny_config(tok.vocab_size());
    let set = encode(&tok, &synthetic(40, 13), 32).expect("set");
    let lengths: Vec<usize> = set.items.iter().map(|e| e.input_ids.len()).collect();
    assert!(lengths.iter().min() < lengths.iter().max(), "lengths vary");
    let sorted = batching::by_length(&lengths, 8);
    let in_order = batching::in_order(set.len(), 8);
    assert_ne!(sorted, in_order);
    for (task, outputs) in [(Task::Stsb, 1), (Task::Sst2, 2)] {
        Flex::seed(&device, 21);
        let model = ElectraForSequenceClassification::<Flex>::new(
            ElectraModel::new(&config, &device),
            &config,
            outputs,
            &device,
        );
        let a = predict_batched(&model, task, &set, &sorted, &device);
        let b = predict_batched(&model, task, &set, &in_order, &device);
        match (a, b) {
            (Predictions::Scores(a), Predictions::Scores(b)) => {
                assert_eq!(a.len(), 40);
                for (x, y) in a.iter().zip(&b) {
                    assert!((x - y).abs() < 1e-5, "{x} vs {y}");
                }
                let distinct = a.iter().filter(|v| (*v - a[0]).abs() > 1e-4).count();
                assert!(distinct > 0, "the scores differ between examples");
            }
            (Predictions::Classes(a), Predictions::Classes(b)) => assert_eq!(a, b),
            _ => panic!("the same kind of predictions"),
        }
    }
}
