//! Encoder forward (inference) for the discriminator at the `tiny` and `small` presets on the
//! flex CPU backend, batch 8 × 128 tokens. Reports throughput in tokens.

use burn::backend::Flex;
use burn::prelude::*;
use criterion::{Criterion, Throughput, criterion_main};
use electra_benches::synthetic_batch;
use electra_model::{ElectraConfig, ElectraForPreTraining};

type B = Flex;

fn encoder_forward(c: &mut Criterion) {
    let device = Default::default();
    let (batch, seq) = (8, 128);
    let mut group = c.benchmark_group("encoder_forward");
    group.sample_size(10);
    group.throughput(Throughput::Elements((batch * seq) as u64));
    for preset in ["tiny", "small"] {
        let config = ElectraConfig::preset(preset).expect("preset exists");
        B::seed(&device, 0);
        let model = ElectraForPreTraining::<B>::new(&config, &device);
        let (ids, types, mask) = synthetic_batch::<B>(batch, seq, config.vocab_size, &device);
        group.bench_function(preset, |bench| {
            bench.iter(|| {
                let logits = model.forward(ids.clone(), types.clone(), mask.clone());
                // Reading the data back forces the computation to finish.
                logits.into_data()
            })
        });
    }
    group.finish();
}

// criterion_group! generates an undocumented public function.
#[allow(missing_docs)]
mod group {
    criterion::criterion_group!(benches, super::encoder_forward);
}
criterion_main!(group::benches);
