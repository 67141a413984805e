//! `electra pretrain --init-generator DIR --init-discriminator DIR` end to end: the HF export
//! of a short demo run (a generator and a discriminator that store their shared embeddings
//! twice, as Google's released pairs do) is continued on the demo text under GDES. The sizes
//! come from the two checkpoints (no model flags), the log says how the two copies compare
//! and which it keeps, the run's `config.toml` records `[init]`, and the continued run
//! exports again.

use std::path::Path;

mod common;
use common::{QUICK_RUN as SMALL, TINY_MODEL, electra, electra_ok};

fn s(path: &Path) -> &str {
    path.to_str().expect("utf8")
}

#[test]
fn a_released_pair_continues_on_new_text_and_exports_again() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let first = tmp.path().join("first");
    let mut args = vec!["pretrain", "--steps", "2", "--out", s(&first)];
    args.extend_from_slice(&TINY_MODEL);
    args.extend_from_slice(SMALL);
    electra_ok(&args);
    let released = tmp.path().join("released");
    electra_ok(&["export", s(&first), "--out", s(&released)]);
    let (generator, discriminator) = (released.join("generator"), released.join("discriminator"));

    // The two come together.
    let lone = electra(&[
        "pretrain",
        "--init-generator",
        s(&generator),
        "--out",
        s(&tmp.path().join("lone")),
    ]);
    assert!(!lone.status.success());
    let err = String::from_utf8_lossy(&lone.stderr);
    assert!(err.contains("--init-discriminator"), "{err}");

    let continued = tmp.path().join("continued");
    let mut args = vec![
        "pretrain",
        "--steps",
        "2",
        "--out",
        s(&continued),
        "--init-generator",
        s(&generator),
        "--init-discriminator",
        s(&discriminator),
        "--set",
        "objective.embedding_sharing=gdes",
    ];
    args.extend_from_slice(SMALL);
    let out = electra_ok(&args);
    let log = String::from_utf8_lossy(&out.stderr);
    // The export wrote the one shared block into both checkpoints: the copies agree.
    assert!(log.contains("agree bit for bit"), "{log}");
    assert!(
        log.contains("kept: both: the generator's copy is E_G"),
        "{log}"
    );
    let config = std::fs::read_to_string(continued.join("config.toml")).expect("config.toml");
    assert!(config.contains("[init]"), "{config}");
    assert!(config.contains(s(&generator)) && config.contains(s(&discriminator)));
    // The model's sizes are the checkpoints' (TINY_MODEL's), not the demo preset's.
    assert!(
        config.contains("hidden_size = 32") && config.contains("embedding_size = 16"),
        "{config}"
    );
    assert!(config.contains("embedding_sharing = \"gdes\""), "{config}");

    let again = tmp.path().join("again");
    electra_ok(&["export", s(&continued), "--out", s(&again)]);
    for model in ["discriminator", "generator"] {
        assert!(
            again.join(model).join("model.safetensors").is_file(),
            "{model}"
        );
    }
}
