//! Matrix products for electra-rs's CPU kernels: the `gemm` crate (the micro-kernels burn's flex
//! backend uses) behind bounds-checked matrix views.
//!
//! The fused CPU kernels of `electra-model` (attention, dense layers with their bias, activation,
//! residual and LayerNorm) need matrix products that burn's tensor API cannot express without
//! copies: products on strided views of one buffer (the query, key and value columns of a fused
//! projection), results written straight into a column range of a larger matrix (one head's
//! context into the merged `[tokens, hidden]` output), products accumulated onto a buffer
//! (a bias already in place), and products inside a rayon task of their own (one task per
//! sequence, each running its heads one after another). burn-flex's own `matmul` also allocates
//! and zero-fills every output and then copies it once more to re-align it, which a profile of
//! inference put at ~8 % of the time (docs/benchmarks.md).
//!
//! `gemm::gemm` does all of that, but it takes raw pointers and strides, so calling it is
//! `unsafe`. This crate is the only place in the workspace that does (every other crate has
//! `unsafe_code = "forbid"`): [`MatRef`] and [`MatMut`] check at construction that every element
//! their shape and strides address lies inside their slice, and [`MatMut`] also that no two
//! elements share an address; [`matmul`] checks that the shapes agree. With those checks, and the
//! borrow rules keeping the output apart from the inputs, the call reads and writes only what the
//! views allow.
//!
//! **AVX-512.** The workspace builds `gemm` with its `x86-v4` feature: micro-kernels for AVX-512
//! are compiled in and chosen at run time where the CPU has `avx512f`, so one binary runs the
//! AVX2 kernels on an AVX2-only CPU and the AVX-512 ones where they exist ([`isa`] says which).
//! burn-flex's products use the same build (cargo unifies the features).

#![deny(unsafe_code)]

/// A read-only view of an `f32` matrix: element `(i, j)` is `data[i·row_stride + j·col_stride]`.
#[derive(Clone, Copy, Debug)]
pub struct MatRef<'a> {
    data: &'a [f32],
    rows: usize,
    cols: usize,
    row_stride: usize,
    col_stride: usize,
}

/// A writable view of an `f32` matrix, laid out like [`MatRef`], whose elements are distinct.
#[derive(Debug)]
pub struct MatMut<'a> {
    data: &'a mut [f32],
    rows: usize,
    cols: usize,
    row_stride: usize,
    col_stride: usize,
}

/// The largest index a `rows × cols` view with these strides addresses (`None` when empty), or
/// a panic naming the view when that index overflows.
fn last_index(
    what: &str,
    rows: usize,
    cols: usize,
    row_stride: usize,
    col_stride: usize,
) -> Option<usize> {
    if rows == 0 || cols == 0 {
        return None;
    }
    let last = (rows - 1).checked_mul(row_stride).and_then(|r| {
        (cols - 1)
            .checked_mul(col_stride)
            .and_then(|c| r.checked_add(c))
    });
    match last {
        Some(last) => Some(last),
        None => {
            panic!("{what}: {rows}×{cols} view with strides ({row_stride}, {col_stride}) overflows")
        }
    }
}

/// Panics unless a `rows × cols` view with these strides stays inside `len` elements and its
/// strides fit gemm's `isize`.
fn check_view(
    what: &str,
    len: usize,
    rows: usize,
    cols: usize,
    row_stride: usize,
    col_stride: usize,
) {
    if let Some(last) = last_index(what, rows, cols, row_stride, col_stride) {
        assert!(
            last < len,
            "{what}: a {rows}×{cols} view with strides ({row_stride}, {col_stride}) reaches \
             element {last} of a slice of {len}"
        );
    }
    assert!(
        isize::try_from(row_stride).is_ok() && isize::try_from(col_stride).is_ok(),
        "{what}: strides ({row_stride}, {col_stride}) exceed isize"
    );
}

/// Whether distinct `(i, j)` of a `rows × cols` view always have distinct addresses: one stride
/// steps over a whole run of the other (row-major- or column-major-like layouts, padded or not).
fn elements_distinct(rows: usize, cols: usize, row_stride: usize, col_stride: usize) -> bool {
    match (rows <= 1, cols <= 1) {
        (true, true) => true,
        (true, false) => col_stride >= 1,
        (false, true) => row_stride >= 1,
        (false, false) => {
            let row_major = col_stride >= 1
                && cols
                    .checked_mul(col_stride)
                    .is_some_and(|w| row_stride >= w);
            let col_major = row_stride >= 1
                && rows
                    .checked_mul(row_stride)
                    .is_some_and(|h| col_stride >= h);
            row_major || col_major
        }
    }
}

impl<'a> MatRef<'a> {
    /// A view of `data` with the given shape and strides. Panics if an element lies outside
    /// `data`.
    pub fn new(
        data: &'a [f32],
        rows: usize,
        cols: usize,
        row_stride: usize,
        col_stride: usize,
    ) -> Self {
        check_view("MatRef", data.len(), rows, cols, row_stride, col_stride);
        Self {
            data,
            rows,
            cols,
            row_stride,
            col_stride,
        }
    }

    /// The contiguous row-major `rows × cols` matrix at the start of `data`.
    pub fn row_major(data: &'a [f32], rows: usize, cols: usize) -> Self {
        Self::new(data, rows, cols, cols, 1)
    }

    /// The transpose (a view: no copy).
    pub fn t(self) -> Self {
        Self {
            rows: self.cols,
            cols: self.rows,
            row_stride: self.col_stride,
            col_stride: self.row_stride,
            ..self
        }
    }

    /// Rows.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Columns.
    pub fn cols(&self) -> usize {
        self.cols
    }

    /// Element `(i, j)` (for tests and small loops; panics outside the view).
    pub fn at(&self, i: usize, j: usize) -> f32 {
        assert!(
            i < self.rows && j < self.cols,
            "({i}, {j}) outside {}×{}",
            self.rows,
            self.cols
        );
        self.data[i * self.row_stride + j * self.col_stride]
    }
}

impl<'a> MatMut<'a> {
    /// A writable view of `data`. Panics if an element lies outside `data` or two elements
    /// share an address.
    pub fn new(
        data: &'a mut [f32],
        rows: usize,
        cols: usize,
        row_stride: usize,
        col_stride: usize,
    ) -> Self {
        check_view("MatMut", data.len(), rows, cols, row_stride, col_stride);
        assert!(
            elements_distinct(rows, cols, row_stride, col_stride),
            "MatMut: a {rows}×{cols} view with strides ({row_stride}, {col_stride}) addresses \
             some element twice"
        );
        Self {
            data,
            rows,
            cols,
            row_stride,
            col_stride,
        }
    }

    /// The contiguous row-major `rows × cols` matrix at the start of `data`.
    pub fn row_major(data: &'a mut [f32], rows: usize, cols: usize) -> Self {
        Self::new(data, rows, cols, cols, 1)
    }

    /// Rows.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Columns.
    pub fn cols(&self) -> usize {
        self.cols
    }
}

/// Where a product runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Parallelism {
    /// On the calling thread (inside a rayon task that already splits the work).
    Serial,
    /// On every thread of the current rayon pool (gemm still runs a small product on one).
    Pool,
}

impl Parallelism {
    /// [`Parallelism::Pool`] from `m·n·k ≥ 64³` multiply-adds, [`Parallelism::Serial`] below:
    /// smaller products finish before a second thread would have started on them.
    pub fn for_size(m: usize, n: usize, k: usize) -> Self {
        if m.saturating_mul(n).saturating_mul(k) >= 64 * 64 * 64 {
            Self::Pool
        } else {
            Self::Serial
        }
    }
}

/// `dst ← lhs·rhs`, or `dst ← dst + lhs·rhs` with `accumulate` (`dst [m, n]`, `lhs [m, k]`,
/// `rhs [k, n]`). Panics if the shapes disagree.
pub fn matmul(
    dst: MatMut<'_>,
    lhs: MatRef<'_>,
    rhs: MatRef<'_>,
    accumulate: bool,
    parallelism: Parallelism,
) {
    let (m, n, k) = (dst.rows, dst.cols, lhs.cols);
    assert!(
        lhs.rows == m && rhs.rows == k && rhs.cols == n,
        "matmul: [{}, {}] · [{}, {}] into [{m}, {n}]",
        lhs.rows,
        lhs.cols,
        rhs.rows,
        rhs.cols
    );
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        if !accumulate {
            for i in 0..m {
                for j in 0..n {
                    dst.data[i * dst.row_stride + j * dst.col_stride] = 0.0;
                }
            }
        }
        return;
    }
    let parallelism = match parallelism {
        Parallelism::Serial => gemm::Parallelism::None,
        Parallelism::Pool => gemm::Parallelism::Rayon(0),
    };
    // Strides fit `isize`: checked when each view was made.
    let s = |x: usize| x as isize;
    // SAFETY: every view was checked at construction: the elements its shape and strides address
    // lie inside its slice (so gemm, which reads `lhs` at `i·rs + p·cs` for `i < m`, `p < k`,
    // `rhs` likewise for `p < k`, `j < n`, and writes `dst` at `i·rs + j·cs` for `i < m`,
    // `j < n`, stays in bounds), and the destination's elements are distinct (so gemm's
    // threads, which split the destination into disjoint blocks, never write one element
    // twice). The shapes agree (asserted above). `dst` is borrowed mutably and the inputs
    // immutably, so the output cannot alias an input.
    #[allow(unsafe_code)]
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.data.as_mut_ptr(),
            s(dst.col_stride),
            s(dst.row_stride),
            accumulate,
            lhs.data.as_ptr(),
            s(lhs.col_stride),
            s(lhs.row_stride),
            rhs.data.as_ptr(),
            s(rhs.col_stride),
            s(rhs.row_stride),
            1.0f32,
            1.0f32,
            false,
            false,
            false,
            parallelism,
        );
    }
}

/// The vector instruction set gemm's `f32` micro-kernels run with on this CPU: `avx512f` (the
/// `x86-v4` kernels), `avx2` (with FMA), or `baseline` (SSE2 on x86-64, or another
/// architecture's default).
pub fn isa() -> &'static str {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") {
            return "avx512f";
        }
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
        {
            return "avx2";
        }
    }
    "baseline"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distinct_layouts_are_recognised() {
        assert!(elements_distinct(3, 4, 4, 1));
        assert!(elements_distinct(3, 4, 8, 1), "padded rows");
        assert!(elements_distinct(3, 4, 1, 3), "column-major");
        assert!(!elements_distinct(3, 4, 2, 1), "rows overlap");
        assert!(!elements_distinct(3, 4, 0, 1), "broadcast rows");
        assert!(elements_distinct(1, 4, 0, 1), "one row");
        assert!(!elements_distinct(1, 4, 0, 0));
    }

    #[test]
    fn parallelism_grows_with_the_product() {
        assert_eq!(Parallelism::for_size(8, 8, 8), Parallelism::Serial);
        assert_eq!(Parallelism::for_size(1024, 256, 256), Parallelism::Pool);
    }
}
