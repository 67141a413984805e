//! The roofline of a training step: how fast `gemm` itself runs the step's matrix products on
//! this machine, one thread.
//!
//! A step's time is its matrix products plus everything else (element-wise kernels, the
//! autodiff graph, allocation, the optimizer). How close a step comes to the time of its
//! products alone says how much is left to win outside them: the step's achieved
//! matrix-product FLOP/s ([`crate::flops`] over the measured step time) divided by the FLOP/s
//! `gemm` reaches on exactly those products ([`measure`]). The products are listed by
//! [`step_products`] with the operand layouts the kernels use (`electra_model::kernels::dense`
//! and `attention`): the forward product, the input gradient `dy·Wᵀ` (a transposed view) and
//! the weight gradient `xᵀ·dy` of every dense layer, the six per-head products of attention, and
//! the tied output layer with its `[V, E]` table read transposed. Their FLOPs add up to
//! [`crate::flops::StepFlops::step`] (tested).

use std::time::Instant;

use electra_gemm::{MatMut, MatRef, Parallelism, matmul};
use electra_model::ElectraConfig;
use serde::Serialize;

/// One kind of matrix product of a step: `[m, k] · [k, n]`, `count` times.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Product {
    /// What it computes.
    pub name: String,
    /// Rows of the output.
    pub m: usize,
    /// Columns of the output.
    pub n: usize,
    /// The summed dimension.
    pub k: usize,
    /// The left operand is a transposed view (`xᵀ` of a weight gradient).
    pub lhs_transposed: bool,
    /// The right operand is a transposed view (`Wᵀ` of an input gradient, `Kᵀ`, a tied table).
    pub rhs_transposed: bool,
    /// How many times one step runs it.
    pub count: usize,
}

impl Product {
    /// FLOPs of all `count` runs (a multiply-add is 2).
    pub fn flops(&self) -> f64 {
        2.0 * (self.m * self.n * self.k * self.count) as f64
    }
}

fn product(name: &str, (m, n, k): (usize, usize, usize), t: (bool, bool), count: usize) -> Product {
    Product {
        name: name.into(),
        m,
        n,
        k,
        lhs_transposed: t.0,
        rhs_transposed: t.1,
        count,
    }
}

/// The forward, input-gradient and weight-gradient products of a dense layer `[rows, d_in] →
/// [rows, d_out]` (`tied`: the weight is a `[d_out, d_in]` table read transposed).
fn dense(
    name: &str,
    rows: usize,
    d_in: usize,
    d_out: usize,
    count: usize,
    tied: bool,
) -> [Product; 3] {
    [
        product(
            &format!("{name} forward"),
            (rows, d_out, d_in),
            (false, !tied),
            count,
        ),
        product(
            &format!("{name} input gradient"),
            (rows, d_in, d_out),
            (false, tied),
            count,
        ),
        product(
            &format!("{name} weight gradient"),
            (d_in, d_out, rows),
            (true, false),
            count,
        ),
    ]
}

/// The products of one tower's layers and projection (`layers` of them, `n` tokens in
/// sequences of `s`).
fn tower(name: &str, c: &ElectraConfig, batch: usize, s: usize) -> Vec<Product> {
    let (n, h, f, l) = (
        batch * s,
        c.hidden_size,
        c.intermediate_size,
        c.num_hidden_layers,
    );
    let (heads, d) = (c.num_attention_heads, c.hidden_size / c.num_attention_heads);
    let per_head = batch * heads * l;
    let mut out = Vec::new();
    if c.embedding_size != h {
        out.extend(dense(
            &format!("{name} embeddings_project"),
            n,
            c.embedding_size,
            h,
            1,
            false,
        ));
    }
    out.extend(dense(
        &format!("{name} query/key/value"),
        n,
        h,
        3 * h,
        l,
        false,
    ));
    out.extend(dense(
        &format!("{name} attention output"),
        n,
        h,
        h,
        l,
        false,
    ));
    out.extend(dense(&format!("{name} FFN in"), n, h, f, l, false));
    out.extend(dense(&format!("{name} FFN out"), n, f, h, l, false));
    let att =
        |what: &str, shape, t| product(&format!("{name} attention {what}"), shape, t, per_head);
    out.push(att("scores Q·Kᵀ", (s, s, d), (false, true)));
    out.push(att("context P·V", (s, d, s), (false, false)));
    out.push(att("dV = Pᵀ·dctx", (s, d, s), (true, false)));
    out.push(att("dP = dctx·Vᵀ", (s, s, d), (false, true)));
    out.push(att("dQ = dS·K", (s, d, s), (false, false)));
    out.push(att("dK = dSᵀ·Q", (s, d, s), (true, false)));
    out
}

/// Every matrix product of one ELECTRA training step (generator, its MLM head at `slots`
/// positions per sequence, discriminator and its head) at `batch × seq`.
pub fn step_products(
    disc: &ElectraConfig,
    generator: &ElectraConfig,
    batch: usize,
    seq: usize,
    slots: usize,
) -> Vec<Product> {
    let (n, slots) = (batch * seq, batch * slots);
    let mut out = tower("generator", generator, batch, seq);
    out.extend(dense(
        "generator head dense",
        slots,
        generator.hidden_size,
        generator.embedding_size,
        1,
        false,
    ));
    out.extend(dense(
        "generator output (tied)",
        slots,
        disc.embedding_size,
        disc.vocab_size,
        1,
        true,
    ));
    out.extend(tower("discriminator", disc, batch, seq));
    out.extend(dense(
        "discriminator head dense",
        n,
        disc.hidden_size,
        disc.hidden_size,
        1,
        false,
    ));
    out.extend(dense(
        "discriminator prediction",
        n,
        disc.hidden_size,
        1,
        1,
        false,
    ));
    out
}

/// `gemm`'s speed on one product, as the kernels call it.
#[derive(Clone, Debug, Serialize)]
pub struct Timed {
    /// The product.
    pub product: Product,
    /// Seconds of one run (the best of several).
    pub seconds: f64,
    /// GFLOP/s of one run.
    pub gflops: f64,
}

/// The roofline of a set of products.
#[derive(Clone, Debug, Serialize)]
pub struct Roofline {
    /// Each product's speed.
    pub products: Vec<Timed>,
    /// FLOPs of all products, every count included.
    pub flops: f64,
    /// Seconds `gemm` takes for them all (each product's best time × its count).
    pub seconds: f64,
    /// `flops / seconds` in GFLOP/s: the step's roofline.
    pub gflops: f64,
}

/// Times every product on one thread (the best of `repeats` runs after a warm-up each) in its
/// layout, on deterministic values.
pub fn measure(products: &[Product], repeats: usize) -> Roofline {
    let timed: Vec<Timed> = products.iter().map(|p| time_one(p, repeats)).collect();
    let flops: f64 = products.iter().map(Product::flops).sum();
    let seconds: f64 = timed
        .iter()
        .map(|t| t.seconds * t.product.count as f64)
        .sum();
    Roofline {
        products: timed,
        flops,
        seconds,
        gflops: flops / seconds / 1e9,
    }
}

fn time_one(p: &Product, repeats: usize) -> Timed {
    let values =
        |len: usize| -> Vec<f32> { (0..len).map(|i| (i % 17) as f32 * 0.01 - 0.08).collect() };
    let (a, b) = (values(p.m * p.k), values(p.k * p.n));
    let mut c = vec![0.0f32; p.m * p.n];
    // A transposed operand is stored as its transpose, row-major, and read through a view.
    let lhs = if p.lhs_transposed {
        MatRef::row_major(&a, p.k, p.m).t()
    } else {
        MatRef::row_major(&a, p.m, p.k)
    };
    let rhs = if p.rhs_transposed {
        MatRef::row_major(&b, p.n, p.k).t()
    } else {
        MatRef::row_major(&b, p.k, p.n)
    };
    let mut best = f64::INFINITY;
    for _ in 0..repeats.max(1) + 1 {
        let started = Instant::now();
        matmul(
            MatMut::row_major(&mut c, p.m, p.n),
            lhs,
            rhs,
            false,
            Parallelism::Serial,
        );
        best = best.min(started.elapsed().as_secs_f64());
    }
    let one = Product {
        count: 1,
        ..p.clone()
    };
    Timed {
        product: p.clone(),
        seconds: best,
        gflops: one.flops() / best / 1e9,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flops::StepFlops;
    use crate::measure::{describe, run_config};

    /// The product list is the FLOP count's: every product of the step, each as often as it
    /// runs (a product missing or counted twice would change the sum).
    #[test]
    fn the_products_add_up_to_the_step_flops() {
        for (preset, batch, seq) in [("tiny", 16, 128), ("small", 8, 128), ("small", 2, 512)] {
            let config = run_config(preset, seq).expect("preset");
            let d = describe(&config, seq).expect("describe");
            let products = step_products(&d.discriminator, &d.generator, batch, seq, d.slots);
            let listed: f64 = products.iter().map(Product::flops).sum();
            let counted =
                StepFlops::new(&d.discriminator, &d.generator, seq, d.slots).step() * batch as f64;
            assert!(
                (listed / counted - 1.0).abs() < 1e-12,
                "{preset}: {listed} vs {counted}"
            );
        }
    }

    #[test]
    fn a_roofline_times_every_product() {
        let products = vec![
            product("a", (16, 8, 32), (false, true), 3),
            product("b", (8, 8, 8), (true, false), 1),
        ];
        let r = measure(&products, 1);
        assert_eq!(r.products.len(), 2);
        assert_eq!(r.flops, 2.0 * (16 * 8 * 32 * 3 + 8 * 8 * 8) as f64);
        assert!(r.seconds > 0.0 && r.gflops > 0.0);
    }
}
