//! `electra_gemm::matmul` against a naive triple loop, on random shapes and layouts, and the
//! views' refusals of layouts that would let gemm read or write outside a slice.

use electra_gemm::{MatMut, MatRef, Parallelism, matmul};
use proptest::prelude::*;

/// A `rows × cols` layout inside a buffer: row-major or column-major, with padding.
#[derive(Clone, Copy, Debug)]
struct Layout {
    rows: usize,
    cols: usize,
    col_major: bool,
    pad: usize,
    offset: usize,
}

impl Layout {
    fn strides(&self) -> (usize, usize) {
        if self.col_major {
            (1, self.rows + self.pad)
        } else {
            (self.cols + self.pad, 1)
        }
    }
    fn len(&self) -> usize {
        let (rs, cs) = self.strides();
        self.offset + (self.rows - 1) * rs + (self.cols - 1) * cs + 1
    }
    fn index(&self, i: usize, j: usize) -> usize {
        let (rs, cs) = self.strides();
        self.offset + i * rs + j * cs
    }
}

fn layout(rows: usize, cols: usize) -> impl Strategy<Value = Layout> {
    (any::<bool>(), 0usize..3, 0usize..4).prop_map(move |(col_major, pad, offset)| Layout {
        rows,
        cols,
        col_major,
        pad,
        offset,
    })
}

fn values(n: usize, seed: u32) -> Vec<f32> {
    (0..n)
        .map(|i| {
            ((i as u32).wrapping_mul(2_654_435_761).wrapping_add(seed) % 1000) as f32 / 250.0 - 2.0
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Any layout of the three operands, with and without accumulation, serial or pooled,
    /// gives the naive product; elements of the destination buffer outside the view are
    /// untouched.
    #[test]
    fn the_product_equals_the_naive_loop(
        seed in 0u32..1000,
        accumulate in any::<bool>(),
        pool in any::<bool>(),
        layouts in (1usize..40, 1usize..40, 1usize..70).prop_flat_map(|(m, n, k)| {
            (Just((m, n, k)), layout(m, k), layout(k, n), layout(m, n))
        }),
    ) {
        let ((m, n, k), la, lb, lc) = layouts;
        let a = values(la.len(), seed);
        let b = values(lb.len(), seed + 1);
        let mut c = values(lc.len(), seed + 2);
        let before = c.clone();
        let (ars, acs) = la.strides();
        let (brs, bcs) = lb.strides();
        let (crs, ccs) = lc.strides();
        let parallelism = if pool { Parallelism::Pool } else { Parallelism::Serial };
        matmul(
            MatMut::new(&mut c[lc.offset..], m, n, crs, ccs),
            MatRef::new(&a[la.offset..], m, k, ars, acs),
            MatRef::new(&b[lb.offset..], k, n, brs, bcs),
            accumulate,
            parallelism,
        );
        let mut inside = vec![false; c.len()];
        for i in 0..m {
            for j in 0..n {
                let mut want = if accumulate { before[lc.index(i, j)] as f64 } else { 0.0 };
                for p in 0..k {
                    want += a[la.index(i, p)] as f64 * b[lb.index(p, j)] as f64;
                }
                let got = c[lc.index(i, j)] as f64;
                prop_assert!((got - want).abs() <= 1e-4 * (1.0 + want.abs()), "({i}, {j}): {got} vs {want}");
                inside[lc.index(i, j)] = true;
            }
        }
        for (idx, &was) in before.iter().enumerate() {
            if !inside[idx] {
                prop_assert_eq!(c[idx].to_bits(), was.to_bits(), "element {} outside the view changed", idx);
            }
        }
    }
}

/// A product large enough for gemm to split it across threads equals the serial one exactly
/// (gemm splits the output, never the sum).
#[test]
fn the_pooled_product_equals_the_serial_one_bit_for_bit() {
    let (m, n, k) = (300, 200, 260);
    let (a, b) = (values(m * k, 1), values(k * n, 2));
    let (mut serial, mut pooled) = (vec![0.0f32; m * n], vec![0.0f32; m * n]);
    for (out, parallelism) in [
        (&mut serial, Parallelism::Serial),
        (&mut pooled, Parallelism::Pool),
    ] {
        matmul(
            MatMut::row_major(out, m, n),
            MatRef::row_major(&a, m, k),
            MatRef::row_major(&b, k, n),
            false,
            parallelism,
        );
    }
    assert!(
        serial
            .iter()
            .zip(&pooled)
            .all(|(s, p)| s.to_bits() == p.to_bits())
    );
}

#[test]
fn a_transposed_view_multiplies_as_its_transpose() {
    // a [2, 3] row-major; aᵀ·a is [3, 3].
    let a = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0];
    let mut out = [0.0f32; 9];
    let view = MatRef::row_major(&a, 2, 3);
    matmul(
        MatMut::row_major(&mut out, 3, 3),
        view.t(),
        view,
        false,
        Parallelism::Serial,
    );
    assert_eq!(out, [17.0, 22.0, 27.0, 22.0, 29.0, 36.0, 27.0, 36.0, 45.0]);
}

#[test]
fn an_empty_inner_dimension_gives_zeros_or_leaves_the_sum() {
    let mut out = [5.0f32; 4];
    matmul(
        MatMut::row_major(&mut out, 2, 2),
        MatRef::row_major(&[], 2, 0),
        MatRef::row_major(&[], 0, 2),
        true,
        Parallelism::Serial,
    );
    assert_eq!(out, [5.0; 4]);
    matmul(
        MatMut::row_major(&mut out, 2, 2),
        MatRef::row_major(&[], 2, 0),
        MatRef::row_major(&[], 0, 2),
        false,
        Parallelism::Serial,
    );
    assert_eq!(out, [0.0; 4]);
}

#[test]
#[should_panic(expected = "reaches element 6 of a slice of 6")]
fn a_view_past_its_slice_is_refused() {
    let a = [0.0f32; 6];
    let _ = MatRef::new(&a, 2, 3, 4, 1);
}

#[test]
#[should_panic(expected = "addresses some element twice")]
fn an_output_whose_rows_overlap_is_refused() {
    let mut c = [0.0f32; 8];
    let _ = MatMut::new(&mut c, 3, 4, 2, 1);
}

#[test]
#[should_panic(expected = "matmul: [2, 3] · [2, 2] into [2, 2]")]
fn shapes_that_disagree_are_refused() {
    let (a, b) = ([0.0f32; 6], [0.0f32; 4]);
    let mut c = [0.0f32; 4];
    matmul(
        MatMut::row_major(&mut c, 2, 2),
        MatRef::row_major(&a, 2, 3),
        MatRef::row_major(&b, 2, 2),
        false,
        Parallelism::Serial,
    );
}
