//! The pre-training loop on a tiny model: losses fall, checkpoints resume exactly, a
//! different config is refused, and a non-finite loss stops the run keeping the last good
//! checkpoint.

mod common;

use common::{Cycle, SEQ, losses, run, tiny_config};
use electra_objective::EmbeddingSharing;
use electra_train::TrainError;
use electra_train::trainer::BatchSource;

#[test]
fn resuming_continues_the_loss_curve_bit_for_bit() {
    let config = tiny_config(6);
    let straight = tempfile::tempdir().expect("tempdir");
    let s = run(&config, straight.path(), None).expect("uninterrupted run");
    assert_eq!(s.final_step, 6);

    let split = tempfile::tempdir().expect("tempdir");
    let first = run(&config, split.path(), Some(4)).expect("first half");
    assert_eq!(first.final_step, 4);
    let second = run(&config, split.path(), None).expect("resumed");
    assert_eq!((second.start_step, second.final_step), (4, 6));

    let (a, b) = (losses(straight.path()), losses(split.path()));
    assert_eq!(a.len(), 6);
    assert_eq!(
        a, b,
        "the resumed curve must equal the uninterrupted one exactly"
    );
}

#[test]
fn loss_falls_on_a_learnable_corpus() {
    let config = tiny_config(40);
    let dir = tempfile::tempdir().expect("tempdir");
    run(&config, dir.path(), None).expect("run");
    let l = losses(dir.path());
    let head: f64 = l[..5].iter().map(|x| x.1).sum::<f64>() / 5.0;
    let tail: f64 = l[l.len() - 5..].iter().map(|x| x.1).sum::<f64>() / 5.0;
    assert!(tail < 0.8 * head, "loss did not fall: {head} -> {tail}");
}

#[test]
fn a_run_directory_refuses_a_different_config() {
    let dir = tempfile::tempdir().expect("tempdir");
    run(&tiny_config(3), dir.path(), None).expect("first");
    let mut other = tiny_config(3);
    other.seed = 7;
    let err = run(&other, dir.path(), None).expect_err("different config");
    assert!(err.to_string().contains("different config"), "{err}");
}

#[test]
fn export_then_import_gives_the_trained_networks_exactly() {
    export_then_import(EmbeddingSharing::Tied);
}

/// GDES exports `E_G + E_Δ` as the discriminator's embeddings: the HF discriminator computes
/// exactly what the pre-training model's discriminator computed in training (through
/// `sg(E_G) + E_Δ`), which fails if export drops `E_Δ` (trained away from zero by then).
#[test]
fn a_gdes_export_folds_the_delta_into_the_discriminator() {
    export_then_import(EmbeddingSharing::Gdes);
}

/// Untied: the generator exports with its own block and its own (narrower) width.
#[test]
fn an_untied_export_keeps_each_network_its_own_embeddings() {
    export_then_import(EmbeddingSharing::Untied);
}

fn export_then_import(sharing: EmbeddingSharing) {
    use burn::backend::Flex;
    use burn::prelude::*;
    use electra_model::{additive_attention_mask, hf};
    use electra_objective::ElectraPretrainingModel;
    use electra_train::{checkpoint, export};

    let mut config = tiny_config(2);
    config.objective.embedding_sharing = sharing;
    // Untied, the generator (H_g = 8) embeds at its own width, narrower than E = 16.
    config.objective.generator_hidden_multiplier = 0.25;
    let dir = tempfile::tempdir().expect("tempdir");
    let summary = run(&config, dir.path(), None).expect("run");
    // Building models draws from the process-wide backend RNG: keep other tests' runs out.
    let _guard = common::BACKEND_RNG
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    let out = tempfile::tempdir().expect("tempdir");
    let device = Default::default();
    let exported = export::export_run::<Flex>(dir.path(), out.path(), &device).expect("export");

    let mut objective = config.objective.clone();
    objective.seed = config.objective_seed();
    let mut trained =
        ElectraPretrainingModel::<Flex>::new(&config.model, &objective, &device).expect("model");
    checkpoint::load_model(&summary.checkpoint, &mut trained).expect("checkpoint");

    let batch = Cycle::new(4).next_batch(4).expect("batch");
    let ids = Tensor::<Flex, 1, Int>::from_data(
        TensorData::new(batch.input_ids.clone(), [4 * SEQ]),
        &device,
    )
    .reshape([4, SEQ]);
    let mask = Tensor::<Flex, 1, Int>::from_data(
        TensorData::new(batch.attention_mask.clone(), [4 * SEQ]),
        &device,
    )
    .reshape([4, SEQ]);
    let types = ids.zeros_like();

    let (disc, _) = hf::load_pretraining::<Flex>(&exported.discriminator, &device).expect("disc");
    // The discriminator as pre-training ran it (not through export's own code).
    let hidden = trained.discriminator_hidden(
        ids.clone(),
        types.clone(),
        additive_attention_mask(mask.clone()),
    );
    let head = trained.discriminator_predictions.as_ref().expect("head");
    assert_eq!(
        disc.forward(ids.clone(), types.clone(), mask.clone())
            .into_data(),
        head.forward(hidden).into_data(),
        "{sharing:?}"
    );
    if sharing == EmbeddingSharing::Gdes {
        let delta = trained.embedding_deltas.as_ref().expect("E_Δ");
        let trained_delta: f32 = delta.word_embeddings.weight.val().abs().max().into_scalar();
        assert!(trained_delta > 0.0, "E_Δ moved in training");
    }
    let gen_dir = exported.generator.expect("generator exported");
    let (generator, gen_config) = hf::load_masked_lm::<Flex>(&gen_dir, &device).expect("generator");
    let want_width = match sharing {
        EmbeddingSharing::Untied => 8,
        _ => config.model.embedding_size,
    };
    assert_eq!(gen_config.model.embedding_size, want_width, "{sharing:?}");
    let ours = export::generator(&trained).expect("generator");
    assert_eq!(
        generator
            .forward(ids.clone(), types.clone(), mask.clone())
            .into_data(),
        ours.forward(ids, types, mask).into_data()
    );
}

/// Untied and GDES runs resume bit for bit too: their extra tensors (the generator's own block,
/// `E_Δ`) and their optimizer moments are in every checkpoint.
#[test]
fn untied_and_gdes_runs_resume_bit_for_bit() {
    for sharing in [EmbeddingSharing::Untied, EmbeddingSharing::Gdes] {
        let mut config = tiny_config(5);
        config.objective.embedding_sharing = sharing;
        let straight = tempfile::tempdir().expect("tempdir");
        run(&config, straight.path(), None).expect("uninterrupted run");
        let split = tempfile::tempdir().expect("tempdir");
        run(&config, split.path(), Some(3)).expect("first part");
        let checkpoint = split.path().join("checkpoints/step-00000003");
        let names = std::fs::read_dir(&checkpoint)
            .expect("checkpoint")
            .filter_map(|e| {
                let path = e.ok()?.path();
                (path.extension()? == "safetensors").then(|| std::fs::read(path).ok())?
            })
            .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
            .collect::<String>();
        let extra = match sharing {
            EmbeddingSharing::Gdes => "embedding_deltas.word_embeddings",
            _ => "generator_embeddings.word_embeddings",
        };
        assert!(
            names.contains(extra),
            "{sharing:?}: {extra} not in the checkpoint"
        );
        run(&config, split.path(), None).expect("resumed");
        assert_eq!(
            losses(straight.path()),
            losses(split.path()),
            "{sharing:?}: the resumed curve must equal the uninterrupted one exactly"
        );
    }
}

#[test]
fn a_non_finite_loss_stops_the_run_and_keeps_the_last_good_checkpoint() {
    let mut config = tiny_config(20);
    // An absurd learning rate with no warmup or clipping blows the weights up to inf/NaN.
    config.schedule.peak = 1e30;
    config.schedule.warmup_steps = 0;
    config.optimizer.clip_norm = None;
    config.train.checkpoint_every = 1;
    let dir = tempfile::tempdir().expect("tempdir");
    let err = run(&config, dir.path(), None).expect_err("must stop");
    let TrainError::NonFinite {
        step, checkpoint, ..
    } = &err
    else {
        panic!("expected NonFinite, got {err}");
    };
    let checkpoint = checkpoint
        .as_ref()
        .expect("a good checkpoint was written before");
    assert!(
        checkpoint.ends_with(format!("step-{:08}", step - 1)),
        "{err}"
    );
    assert!(err.to_string().contains("not finite"), "{err}");
    // The bad state was not checkpointed.
    let newest = electra_train::checkpoint::list_checkpoints(dir.path())
        .expect("list")
        .pop()
        .expect("one");
    assert_eq!(newest.0, step - 1);
}

#[test]
fn mlm_baselines_export_their_discriminator_sized_network_as_a_masked_lm() {
    use burn::backend::Flex;
    use burn::prelude::*;
    use electra_model::hf::{self, Architecture};
    use electra_objective::{ElectraPretrainingModel, ObjectiveKind};
    use electra_train::{checkpoint, export, pretrained};

    for kind in [ObjectiveKind::Mlm, ObjectiveKind::ReplaceMlm] {
        let mut config = tiny_config(2);
        config.objective.objective = kind;
        let dir = tempfile::tempdir().expect("tempdir");
        let summary = run(&config, dir.path(), None).expect("run");
        // Building models draws from the process-wide backend RNG: keep other tests' runs out.
        let _guard = common::BACKEND_RNG
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let out = tempfile::tempdir().expect("tempdir");
        let device = Default::default();
        let exported = export::export_run::<Flex>(dir.path(), out.path(), &device)
            .unwrap_or_else(|e| panic!("{}: export failed: {e}", kind.name()));
        assert_eq!(exported.discriminator_architecture, Architecture::MaskedLm);
        assert_eq!(
            exported.generator.is_some(),
            kind == ObjectiveKind::ReplaceMlm,
            "{}",
            kind.name()
        );

        let mut objective = config.objective.clone();
        objective.seed = config.objective_seed();
        let mut trained = ElectraPretrainingModel::<Flex>::new(&config.model, &objective, &device)
            .expect("model");
        checkpoint::load_model(&summary.checkpoint, &mut trained).expect("checkpoint");

        let batch = Cycle::new(4).next_batch(4).expect("batch");
        let ids = Tensor::<Flex, 1, Int>::from_data(
            TensorData::new(batch.input_ids.clone(), [4 * SEQ]),
            &device,
        )
        .reshape([4, SEQ]);
        let mask = Tensor::<Flex, 1, Int>::from_data(
            TensorData::new(batch.attention_mask.clone(), [4 * SEQ]),
            &device,
        )
        .reshape([4, SEQ]);
        let types = ids.zeros_like();

        // The export is the trained encoder and MLM head, at the discriminator's size.
        let (masked_lm, hf_config) =
            hf::load_masked_lm::<Flex>(&exported.discriminator, &device).expect("load");
        assert_eq!(hf_config.model, config.model, "{}", kind.name());
        let ours = export::discriminator_masked_lm(&trained).expect("mlm head");
        assert_eq!(
            masked_lm
                .forward(ids.clone(), types.clone(), mask.clone())
                .into_data(),
            ours.forward(ids.clone(), types.clone(), mask.clone())
                .into_data(),
            "{}",
            kind.name()
        );
        // What fine-tuning loads from the run directory is the same encoder.
        let (encoder, _) = pretrained::load_encoder::<Flex>(dir.path(), &device).expect("encoder");
        assert_eq!(
            encoder
                .forward(ids.clone(), types.clone(), mask.clone())
                .into_data(),
            masked_lm.electra.forward(ids, types, mask).into_data(),
            "{}",
            kind.name()
        );
        // There is no replaced-token head to pretend to.
        assert!(export::discriminator(&trained).is_err());
    }
}

#[test]
fn a_damaged_newest_checkpoint_falls_back_to_the_newest_intact_one() {
    use electra_train::pretrained;

    let mut config = tiny_config(9);
    config.train.keep_checkpoints = 2;
    let straight = tempfile::tempdir().expect("tempdir");
    run(&config, straight.path(), None).expect("uninterrupted run");

    let dir = tempfile::tempdir().expect("tempdir");
    run(&config, dir.path(), Some(6)).expect("first part");
    // Kept: steps 3 and 6. Truncate the newest checkpoint's weights.
    let newest = dir
        .path()
        .join("checkpoints/step-00000006/model.safetensors");
    let bytes = std::fs::read(&newest).expect("read");
    std::fs::write(&newest, &bytes[..bytes.len() / 2]).expect("truncate");

    // Loading the run directory (export, fine-tuning) takes step 3; an explicit checkpoint
    // still fails, naming the file. (Building models draws from the process-wide backend
    // RNG: keep other tests' runs out.)
    {
        let _guard = common::BACKEND_RNG
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let device = Default::default();
        let loaded =
            pretrained::load_newest::<burn::backend::Flex>(dir.path(), &device).expect("fallback");
        assert_eq!(loaded.step, 3);
        let mut model = loaded.model;
        let err = electra_train::checkpoint::load_model(
            &dir.path().join("checkpoints/step-00000006"),
            &mut model,
        )
        .expect_err("damaged");
        assert!(err.to_string().contains("model.safetensors"), "{err}");
    }

    // Resuming continues from step 3, exactly as the uninterrupted run did.
    let resumed = run(&config, dir.path(), None).expect("resumed from the older checkpoint");
    assert_eq!((resumed.start_step, resumed.final_step), (3, 9));
    assert_eq!(losses(straight.path()), losses(dir.path()));

    // With no intact checkpoint left, the error lists every one tried.
    for step in [6, 9] {
        let path = dir
            .path()
            .join(format!("checkpoints/step-{step:08}/model.safetensors"));
        std::fs::write(&path, b"").expect("empty");
    }
    let err = run(&config, dir.path(), None).expect_err("nothing intact");
    let text = err.to_string();
    assert!(
        text.contains("no intact checkpoint")
            && text.contains("step-00000006")
            && text.contains("step-00000009"),
        "{text}"
    );
}
