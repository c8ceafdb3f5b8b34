//! The one GEMM entry point of the library: `C = alpha * A B + beta * C` into a buffer the
//! caller owns, as one `cblas_sgemm`/`cblas_dgemm` call on the stored layouts (a
//! transposed view reaches BLAS as a transpose flag, never as a copy).
//!
//! Shapes: `a: (m, k)`, `b: (k, n)`, `c: (m, n)`. Every operand BLAS can take directly
//! (unit stride along one axis, non-negative strides) goes to OpenBLAS as it is; any
//! other layout is copied into standard layout first and counted
//! ([`layout_copies`]), so that a test can prove the training products never take that
//! path. Whether OpenBLAS's own threads or nabla's column split parallelise the product
//! is read from [`crate::threads::gemm_threading`].
//!
//! On the 2-core machines this was measured on, OpenBLAS's threads match the split with
//! the AVX2 kernel and beat it with the AVX-512 one, even at batch 50 (`cargo bench
//! --bench kernels`, group `gemm_threading`); they are the default.

use std::any::TypeId;
use std::os::raw::c_int;
use std::sync::atomic::{AtomicUsize, Ordering};

use cblas_sys::{CBLAS_LAYOUT, CBLAS_TRANSPOSE};
use ndarray::{Array2, ArrayView2, ArrayViewMut2, Axis};

use crate::float::Float;
use crate::threads::{gemm_threading, GemmThreading};

/// Below this many floating-point operations (`2 m n k`) a split product runs as one call
/// on the calling thread: 2 MFLOP take about 10 microseconds on one core, about what
/// waking a second thread costs. (A round figure, not a measured crossover.)
const SPLIT_MIN_FLOP: usize = 1 << 21;

/// The column-block width of a split product is a multiple of this (OpenBLAS's
/// micro-kernels are 16 wide).
const BLOCK_ALIGN: usize = 16;

static LAYOUT_COPIES: AtomicUsize = AtomicUsize::new(0);

/// How many operands, since the process started, had a layout BLAS cannot take and were
/// copied before the call. Training never does this; a test checks it.
#[doc(hidden)]
pub fn layout_copies() -> usize {
    LAYOUT_COPIES.load(Ordering::Relaxed)
}

/// `c = alpha * a b + beta * c`; `a: (m, k)`, `b: (k, n)`, `c: (m, n)`.
///
/// # Panics
/// If the shapes do not chain, or a dimension exceeds `i32::MAX` (BLAS's integer).
#[doc(hidden)]
#[track_caller]
pub fn gemm<F: Float>(
    alpha: F,
    a: ArrayView2<'_, F>,
    b: ArrayView2<'_, F>,
    beta: F,
    c: ArrayViewMut2<'_, F>,
) {
    assert!(
        a.ncols() == b.nrows() && (a.nrows(), b.ncols()) == c.dim(),
        "gemm: shapes {:?} x {:?} -> {:?} do not chain",
        a.dim(),
        b.dim(),
        c.dim()
    );
    let (m, k, n) = (a.nrows(), a.ncols(), b.ncols());
    let parts = crate::threads::parallelism().min(n / BLOCK_ALIGN).max(1);
    let split = gemm_threading() == GemmThreading::Split
        && parts > 1
        && 2usize.saturating_mul(m).saturating_mul(n).saturating_mul(k) >= SPLIT_MIN_FLOP;
    if split {
        split_columns(alpha, a, b, beta, c, parts);
    } else {
        one_call(alpha, a, b, beta, c);
    }
}

/// Splits `c` (and `b`) into `parts` column blocks of aligned widths and multiplies them
/// on rayon's pool, halving recursively with `rayon::join` (nothing is allocated).
fn split_columns<F: Float>(
    alpha: F,
    a: ArrayView2<'_, F>,
    b: ArrayView2<'_, F>,
    beta: F,
    c: ArrayViewMut2<'_, F>,
    parts: usize,
) {
    if parts <= 1 {
        one_call(alpha, a, b, beta, c);
        return;
    }
    let n = c.ncols();
    let left_parts = parts / 2;
    let split = ((n * left_parts / parts).div_ceil(BLOCK_ALIGN) * BLOCK_ALIGN).min(n);
    let (b_left, b_right) = b.split_at(Axis(1), split);
    let (c_left, c_right) = c.split_at(Axis(1), split);
    rayon::join(
        || split_columns(alpha, a, b_left, beta, c_left, left_parts),
        || split_columns(alpha, a, b_right, beta, c_right, parts - left_parts),
    );
}

/// How BLAS reads a row-major operand: as stored or transposed, with its leading dimension.
#[derive(Clone, Copy, Debug)]
struct Operand {
    transpose: bool,
    leading: usize,
}

/// The BLAS description of `view: (rows, cols)` read as a row-major matrix, if its
/// strides allow one: unit stride along columns (`NoTrans`) or along rows (`Trans`), and
/// a non-negative leading stride at least the other dimension. A dimension of length 1
/// places no condition on its stride.
fn operand<F>(view: &ArrayView2<'_, F>) -> Option<Operand> {
    let (rows, cols) = view.dim();
    let [row_stride, col_stride] = [view.strides()[0], view.strides()[1]];
    let unit = |stride: isize, len: usize| stride == 1 || len <= 1;
    let leading = |stride: isize, len: usize, minimum: usize| {
        if len <= 1 {
            Some(minimum.max(1))
        } else {
            usize::try_from(stride)
                .ok()
                .filter(|&s| s >= minimum.max(1))
        }
    };
    if unit(col_stride, cols) {
        if let Some(leading) = leading(row_stride, rows, cols) {
            return Some(Operand {
                transpose: false,
                leading,
            });
        }
    }
    if unit(row_stride, rows) {
        if let Some(leading) = leading(col_stride, cols, rows) {
            return Some(Operand {
                transpose: true,
                leading,
            });
        }
    }
    None
}

/// Calls the f32 routine `$single` or the f64 routine `$double` of cblas, as `$F` is,
/// with `$T` the matching element type in the arguments (one call site per routine
/// pair instead of two copies of every argument list).
macro_rules! by_precision {
    ($F:ty, $T:ident, $single:ident, $double:ident, ($($arg:expr),* $(,)?)) => {
        if TypeId::of::<$F>() == TypeId::of::<f32>() {
            type $T = f32;
            cblas_sys::$single($($arg),*)
        } else if TypeId::of::<$F>() == TypeId::of::<f64>() {
            type $T = f64;
            cblas_sys::$double($($arg),*)
        } else {
            unreachable!("Float is implemented for f32 and f64 only")
        }
    };
}

/// `value` as the identical type `T` (`F` and `T` are the same type: `by_precision`
/// chose `T` by `F`'s TypeId).
///
/// # Safety
/// `F` and `T` must be the same type.
unsafe fn scalar<F: Copy, T: Copy>(value: F) -> T {
    // SAFETY: the caller's contract: the same type, so the same size and layout.
    unsafe { *(&value as *const F as *const T) }
}

/// One BLAS call for `c = alpha a b + beta c`, on the calling thread (OpenBLAS may use its
/// own threads inside).
fn one_call<F: Float>(
    alpha: F,
    a: ArrayView2<'_, F>,
    b: ArrayView2<'_, F>,
    beta: F,
    mut c: ArrayViewMut2<'_, F>,
) {
    let (m, k, n) = (a.nrows(), a.ncols(), b.ncols());
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        c.map_inplace(|value| *value = beta * *value);
        return;
    }
    let c_op = operand(&c.view());
    // A column-major C is the row-major C^T = B^T A^T.
    if c_op.is_some_and(|op| op.transpose) && m > 1 && n > 1 {
        one_call(alpha, b.t(), a.t(), beta, c.reversed_axes());
        return;
    }
    let Some(c_op) = c_op.filter(|op| !op.transpose) else {
        LAYOUT_COPIES.fetch_add(1, Ordering::Relaxed);
        let mut standard = c.to_owned();
        one_call(alpha, a, b, beta, standard.view_mut());
        c.assign(&standard);
        return;
    };
    let copied_a;
    let (a, a_op) = match operand(&a) {
        Some(op) => (a, op),
        None => {
            copied_a = standard_copy(a);
            let view = copied_a.view();
            // Cannot fail: a fresh standard-layout copy has unit stride along its rows.
            let op = operand(&view).expect("standard layout is BLAS layout");
            (view, op)
        }
    };
    let copied_b;
    let (b, b_op) = match operand(&b) {
        Some(op) => (b, op),
        None => {
            copied_b = standard_copy(b);
            let view = copied_b.view();
            // Cannot fail: a fresh standard-layout copy has unit stride along its rows.
            let op = operand(&view).expect("standard layout is BLAS layout");
            (view, op)
        }
    };
    let int = |value: usize| {
        c_int::try_from(value).unwrap_or_else(|_| panic!("gemm: {value} exceeds BLAS's i32"))
    };
    let transpose = |op: Operand| {
        if op.transpose {
            CBLAS_TRANSPOSE::CblasTrans
        } else {
            CBLAS_TRANSPOSE::CblasNoTrans
        }
    };
    if m == 1 && row_times_matrix(alpha, a, b, b_op, beta, &mut c) {
        return;
    }
    let (m, n, k) = (int(m), int(n), int(k));
    let (lda, ldb, ldc) = (int(a_op.leading), int(b_op.leading), int(c_op.leading));
    let (trans_a, trans_b) = (transpose(a_op), transpose(b_op));
    let layout = CBLAS_LAYOUT::CblasRowMajor;
    // SAFETY: the shapes chain (checked in `gemm`), every leading dimension was derived
    // from the views' own strides and is at least the row length BLAS reads, and the
    // three views stay borrowed for the whole call. The pointer casts are between
    // identical types (checked by TypeId).
    unsafe {
        by_precision!(
            F,
            T,
            cblas_sgemm,
            cblas_dgemm,
            (
                layout,
                trans_a,
                trans_b,
                m,
                n,
                k,
                scalar::<F, T>(alpha),
                a.as_ptr().cast::<T>(),
                lda,
                b.as_ptr().cast::<T>(),
                ldb,
                scalar::<F, T>(beta),
                c.as_mut_ptr().cast::<T>(),
                ldc,
            )
        );
    }
}

/// `c = alpha a b + beta c` for one row, `a: (1, k)`, as a matrix-vector product
/// (`gemv`): it reads `b` once instead of packing it, which is most of a one-row
/// product's time. `false` (nothing done) when a stride does not suit BLAS.
fn row_times_matrix<F: Float>(
    alpha: F,
    a: ArrayView2<'_, F>,
    b: ArrayView2<'_, F>,
    b_op: Operand,
    beta: F,
    c: &mut ArrayViewMut2<'_, F>,
) -> bool {
    let (k, n) = b.dim();
    let step = |stride: isize, len: usize| match len {
        1 => Some(1),
        _ => c_int::try_from(stride).ok().filter(|&s| s > 0),
    };
    let (Some(incx), Some(incy)) = (step(a.strides()[1], k), step(c.strides()[1], n)) else {
        return false;
    };
    let (Ok(k), Ok(n), Ok(ld)) = (
        c_int::try_from(k),
        c_int::try_from(n),
        c_int::try_from(b_op.leading),
    ) else {
        return false;
    };
    // b as stored: (k, n) read transposed, or (n, k) (b is a transposed view) read as is.
    let (trans, rows, cols) = if b_op.transpose {
        (CBLAS_TRANSPOSE::CblasNoTrans, n, k)
    } else {
        (CBLAS_TRANSPOSE::CblasTrans, k, n)
    };
    let layout = CBLAS_LAYOUT::CblasRowMajor;
    // SAFETY: `b`'s leading dimension came from its own strides (see `operand`), the
    // vector strides are positive and span exactly `k` and `n` elements of views that
    // stay borrowed for the call; the pointer casts are between identical types.
    unsafe {
        by_precision!(
            F,
            T,
            cblas_sgemv,
            cblas_dgemv,
            (
                layout,
                trans,
                rows,
                cols,
                scalar::<F, T>(alpha),
                b.as_ptr().cast::<T>(),
                ld,
                a.as_ptr().cast::<T>(),
                incx,
                scalar::<F, T>(beta),
                c.as_mut_ptr().cast::<T>(),
                incy,
            )
        );
    }
    true
}

/// A standard-layout copy of an operand BLAS cannot read as it is (counted).
fn standard_copy<F: Float>(view: ArrayView2<'_, F>) -> Array2<F> {
    LAYOUT_COPIES.fetch_add(1, Ordering::Relaxed);
    view.as_standard_layout().into_owned()
}
