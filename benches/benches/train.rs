//! The training path on the flex CPU backend, `tiny` preset, batch 8 × 128 tokens (throughput
//! in tokens):
//!
//! - `encoder_forward_backward`: discriminator (embeddings, tower, RTD head) forward, a
//!   scalar loss, backward and `GradientsParams::from_grads`;
//! - `electra_step`: the whole training step as `measure::measure` times it (masking,
//!   generator, sampling, discriminator, losses, backward, clipping, Adam);
//! - `masking`: spec-1.2 masking of the batch on the host.
//!
//! The end-to-end numbers per preset (and against PyTorch) come from the `throughput` binary;
//! this suite is for quick A/B checks of a change.

use burn::backend::{Autodiff, Flex};
use burn::optim::GradientsParams;
use burn::prelude::*;
use criterion::{Criterion, Throughput, criterion_main};
use electra_benches::measure::{BENCH_LR, run_config, synthetic_host_batch};
use electra_benches::synthetic_batch;
use electra_model::ElectraForPreTraining;
use electra_objective::{ElectraPretrainingModel, mask_batch, step_rng};
use electra_train::ElectraAdam;

type AB = Autodiff<Flex>;

const BATCH: usize = 8;
const SEQ: usize = 128;

fn train(c: &mut Criterion) {
    let device = Default::default();
    let config = run_config("tiny", SEQ).expect("tiny preset");
    let mut group = c.benchmark_group("train_tiny");
    group.sample_size(10);
    group.throughput(Throughput::Elements((BATCH * SEQ) as u64));

    AB::seed(&device, 0);
    let disc = ElectraForPreTraining::<AB>::new(&config.model, &device);
    let (ids, types, mask) = synthetic_batch::<AB>(BATCH, SEQ, config.model.vocab_size, &device);
    group.bench_function("encoder_forward_backward", |bench| {
        bench.iter(|| {
            let logits = disc.forward(ids.clone(), types.clone(), mask.clone());
            let grads = logits.mean().backward();
            GradientsParams::from_grads(grads, &disc).len()
        })
    });

    let batch = synthetic_host_batch(BATCH, SEQ, config.model.vocab_size);
    let mut model = Some(
        ElectraPretrainingModel::<AB>::new(&config.model, &config.objective, &device)
            .expect("model"),
    );
    let mut optimizer = ElectraAdam::<AB>::new(config.optimizer.clone()).expect("optimizer");
    let mut step = 0u64;
    group.bench_function("electra_step", |bench| {
        bench.iter(|| {
            let m = model.take().expect("model is put back after every step");
            let out = m.step(&batch, step).expect("step");
            let loss = out.loss.clone().into_scalar().elem::<f64>();
            let grads = GradientsParams::from_grads(out.loss.backward(), &m);
            let (next, _) = optimizer.step(BENCH_LR, m, grads, &|_| 1.0);
            model = Some(next);
            step += 1;
            loss
        })
    });

    group.bench_function("masking", |bench| {
        let mut step = 0u64;
        bench.iter(|| {
            let mut rng = step_rng(config.objective.seed, step);
            step += 1;
            mask_batch(&batch, &config.objective, config.model.vocab_size, &mut rng).active()
        })
    });
    group.finish();
}

// criterion_group! generates an undocumented public function.
#[allow(missing_docs)]
mod group {
    criterion::criterion_group!(benches, super::train);
}
criterion_main!(group::benches);
