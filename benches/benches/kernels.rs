//! The CPU kernels of a `small` training step on their own, at the step's shapes (batch 8 × 128
//! tokens, hidden 256, FFN 1024, 4 heads): what each element-wise pass and each fused layer
//! costs per call, for profiling the part of a step outside the matrix products. Throughput in
//! elements of the output.

use criterion::{Criterion, Throughput, criterion_main};
use electra_model::kernels::attention::{Heads, attention, attention_backward};
use electra_model::kernels::dense::{self, Weight};
use electra_model::kernels::{cpu, keep::Keep};

const TOKENS: usize = 8 * 128;
const HIDDEN: usize = 256;
const FFN: usize = 1024;

fn values(n: usize) -> Vec<f32> {
    (0..n)
        .map(|i| ((i * 7919) % 1000) as f32 / 250.0 - 2.0)
        .collect()
}

fn element_wise(c: &mut Criterion) {
    let mut group = c.benchmark_group("kernels");
    group.sample_size(20);
    let (x, dy) = (values(TOKENS * FFN), values(TOKENS * FFN));
    group.throughput(Throughput::Elements(x.len() as u64));
    group.bench_function("gelu [1024, 1024]", |b| b.iter(|| cpu::gelu(&x)));
    group.bench_function("gelu_backward [1024, 1024]", |b| {
        b.iter(|| cpu::gelu_backward(&x, &dy))
    });
    group.bench_function("dropout mask [1024, 1024]", |b| {
        b.iter(|| Keep::new(0.1, 7).multipliers(x.len()))
    });
    let (h, gamma, beta) = (
        values(TOKENS * HIDDEN),
        vec![1.0f32; HIDDEN],
        vec![0.0f32; HIDDEN],
    );
    group.throughput(Throughput::Elements(h.len() as u64));
    group.bench_function("layer_norm [1024, 256]", |b| {
        b.iter(|| cpu::layer_norm(&h, &gamma, &beta, 1e-12))
    });
    let (_, stats) = cpu::layer_norm(&h, &gamma, &beta, 1e-12);
    group.bench_function("layer_norm_backward [1024, 256]", |b| {
        b.iter(|| cpu::layer_norm_backward(&h, &gamma, &stats, &h))
    });
    group.finish();
}

fn layers(c: &mut Criterion) {
    let mut group = c.benchmark_group("kernels");
    group.sample_size(10);
    let (x, w, bias) = (values(TOKENS * HIDDEN), values(HIDDEN * FFN), values(FFN));
    let weight = Weight {
        data: &w,
        d_in: HIDDEN,
        d_out: FFN,
        transposed: false,
    };
    group.throughput(Throughput::Elements((TOKENS * FFN) as u64));
    group.bench_function("dense_gelu [1024, 256] -> [1024, 1024]", |b| {
        b.iter(|| dense::dense_gelu(&x, weight, &bias))
    });
    let shape = Heads {
        batch: 8,
        seq: 128,
        heads: 4,
        head_dim: 64,
    };
    let (qkv, mask) = (values(TOKENS * 3 * HIDDEN), vec![0.0f32; TOKENS]);
    group.throughput(Throughput::Elements((TOKENS * HIDDEN) as u64));
    group.bench_function("attention [1024, 768] -> [1024, 256], training", |b| {
        b.iter(|| attention(&qkv, &mask, shape, 0.125, Some(Keep::new(0.1, 3)), true))
    });
    group.bench_function("attention, inference", |b| {
        b.iter(|| attention(&qkv, &mask, shape, 0.125, None, false))
    });
    let (ctx, probs) = attention(&qkv, &mask, shape, 0.125, Some(Keep::new(0.1, 3)), true);
    let probs = probs.unwrap_or_default();
    group.bench_function("attention backward", |b| {
        b.iter(|| attention_backward(&qkv, &probs, &ctx, shape, 0.125, Some(Keep::new(0.1, 3))))
    });
    group.finish();
}

// criterion_group! generates an undocumented public function.
#[allow(missing_docs)]
mod group {
    criterion::criterion_group!(benches, super::element_wise, super::layers);
}
criterion_main!(group::benches);
