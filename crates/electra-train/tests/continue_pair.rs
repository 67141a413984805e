//! Continuing a released generator and discriminator through the training loop (`[init]`,
//! `electra pretrain --init-generator DIR --init-discriminator DIR`): the run starts from the
//! pair's weights on the autodiff backend, records where they came from, exports what it
//! trained, and resumes from its own checkpoints, not from the pair.
//!
//! The pair is `electra-run`'s fixture `tests/fixtures/hf-pair` (written by
//! `scripts/make_hf_fixtures.py`): its generator's copy of the shared embeddings differs from
//! the discriminator's in `position_embeddings[3][5]` and `LayerNorm.bias[7]`.

mod common;

use std::path::{Path, PathBuf};

use burn::backend::Flex;
use burn::prelude::*;
use common::{Cycle, SEQ, losses, run, tiny_config};
use electra_model::hf;
use electra_objective::EmbeddingSharing;
use electra_train::config::RunConfig;
use electra_train::trainer::BatchSource;
use electra_train::{export, init};

fn pair(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../electra-run/tests/fixtures/hf-pair")
        .join(name)
}

/// `tiny_config(steps)` continuing the fixture pair with `sharing`, resolved as `electra
/// pretrain` resolves it.
fn continued(steps: u64, sharing: EmbeddingSharing) -> RunConfig {
    let mut config = tiny_config(steps);
    config.objective.embedding_sharing = sharing;
    config.init.generator = Some(pair("generator"));
    config.init.discriminator = Some(pair("discriminator"));
    init::adopt_hf_pair(&mut config).expect("adopt the pair's sizes");
    config.validate().expect("valid");
    config
}

fn max_abs_diff(a: Tensor<Flex, 2>, b: Tensor<Flex, 2>) -> f32 {
    (a - b).abs().max().into_scalar()
}

/// One step at the schedule's `lr(0) = 0` changes no weight, so the run's export is the
/// released pair as the model kept it: the discriminator as released (tied keeps its copy;
/// GDES rebuilds it as `E_G + E_Δ`), and the generator with the discriminator's copy of the
/// block (tied) or its own (GDES). The step itself runs the autodiff backend on the model
/// assembled from the pair.
#[test]
fn a_continued_run_starts_from_the_pair_and_exports_it() {
    let device = Default::default();
    let batch = Cycle::new(4).next_batch(4).expect("batch");
    let t = |v: &[i64]| {
        Tensor::<Flex, 1, Int>::from_data(TensorData::new(v.to_vec(), [4 * SEQ]), &device)
            .reshape([4, SEQ])
    };
    let (ids, mask) = (t(&batch.input_ids), t(&batch.attention_mask));
    let types = ids.zeros_like();
    for sharing in [EmbeddingSharing::Tied, EmbeddingSharing::Gdes] {
        let config = continued(1, sharing);
        assert_eq!(config.model.hidden_size, 32, "the discriminator's sizes");
        let dir = tempfile::tempdir().expect("tempdir");
        run(&config, dir.path(), None).expect("continued run");
        let saved = std::fs::read_to_string(dir.path().join("config.toml")).expect("config");
        assert!(
            saved.contains("[init]") && saved.contains("hf-pair/generator"),
            "{saved}"
        );
        assert!(losses(dir.path())[0].1.is_finite());

        let _guard = common::BACKEND_RNG
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let out = tempfile::tempdir().expect("tempdir");
        let exported = export::export_run::<Flex>(dir.path(), out.path(), &device).expect("export");
        let (ours, _) = hf::load_pretraining::<Flex>(&exported.discriminator, &device).expect("d");
        let (released, _) =
            hf::load_pretraining::<Flex>(&pair("discriminator"), &device).expect("released d");
        let logits = |m: &electra_model::ElectraForPreTraining<Flex>| {
            m.forward(ids.clone(), types.clone(), mask.clone())
        };
        let d = max_abs_diff(logits(&ours), logits(&released));
        assert!(d < 1e-5, "{sharing:?}: discriminator moved by {d}");

        let gen_dir = exported.generator.expect("generator exported");
        let (ours, _) = hf::load_masked_lm::<Flex>(&gen_dir, &device).expect("g");
        let (released, _) =
            hf::load_masked_lm::<Flex>(&pair("generator"), &device).expect("released g");
        let logits = |m: &electra_model::ElectraForMaskedLM<Flex>| {
            let x = m.forward(ids.clone(), types.clone(), mask.clone());
            let [b, s, v] = x.dims();
            x.reshape([b * s, v])
        };
        let g = max_abs_diff(logits(&ours), logits(&released));
        match sharing {
            // E_G is the generator's own copy, untouched.
            EmbeddingSharing::Gdes => assert_eq!(g, 0.0, "GDES generator"),
            // Tied keeps the discriminator's copy, which the generator did not have.
            _ => assert!(
                g > 1e-6,
                "tied: the generator reads the discriminator's copy"
            ),
        }
    }
}

/// A continued run resumes from its own checkpoint (with trained weights and moments), not from
/// the released pair again: the split curve equals the uninterrupted one bit for bit.
#[test]
fn a_continued_gdes_run_resumes_bit_for_bit() {
    let config = continued(5, EmbeddingSharing::Gdes);
    let straight = tempfile::tempdir().expect("tempdir");
    run(&config, straight.path(), None).expect("uninterrupted");
    let split = tempfile::tempdir().expect("tempdir");
    run(&config, split.path(), Some(3)).expect("first part");
    run(&config, split.path(), None).expect("resumed");
    let (a, b) = (losses(straight.path()), losses(split.path()));
    assert_eq!(a.len(), 5);
    assert_eq!(a, b);
}
