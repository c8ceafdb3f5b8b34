//! The one GEMM entry point of the library: `C = alpha * A B + beta * C` into a buffer the
//! caller owns, on the stored layouts (transposed views reach BLAS as a transpose flag).
//!
//! Shapes: `a: (m, k)`, `b: (k, n)`, `c: (m, n)`. How the cores share one product is a
//! process-wide choice ([`GemmThreading`]): OpenBLAS's own threads, or nabla splitting the
//! columns of `C` across the rayon pool, each part a single-threaded OpenBLAS call.
//! OpenBLAS's threads busy-wait between calls, so on the 2-core machines this was
//! measured on they match the split with the AVX2 kernel and beat it with the AVX-512 one,
//! even at batch 50 (`cargo bench --bench kernels`, group `gemm_threading`, and whole
//! epochs with `nabla train --gemm split|openblas`); they are the default, and the split
//! is there for machines where OpenBLAS's threading loses on small shapes.

use std::sync::atomic::{AtomicU8, Ordering};

use ndarray::linalg::general_mat_mul;
use ndarray::{ArrayView2, ArrayViewMut2, Axis};

use crate::Float;

/// Who parallelises a GEMM.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GemmThreading {
    /// One OpenBLAS call, threaded by OpenBLAS itself (default).
    OpenBlas,
    /// Column blocks of `C` on the rayon pool, single-threaded OpenBLAS in each.
    SplitColumns,
}

static THREADING: AtomicU8 = AtomicU8::new(GemmThreading::OpenBlas as u8);

/// Below this many floating-point operations (`2 m n k`) a split product runs as one call
/// on the calling thread: 2 MFLOP take about 10 microseconds on one core, about what
/// waking a second thread costs. (A round figure, not a measured crossover.)
pub const SPLIT_MIN_FLOP: usize = 1 << 21;

/// The column-block width is a multiple of this (OpenBLAS's micro-kernels are 16 wide).
const BLOCK_ALIGN: usize = 16;

/// Chooses how GEMMs use the cores from now on. With `SplitColumns`, OpenBLAS itself is
/// set to one thread so that the two pools never oversubscribe the cores.
pub fn set_threading(threading: GemmThreading, threads: usize) {
    THREADING.store(threading as u8, Ordering::Relaxed);
    match threading {
        GemmThreading::OpenBlas => crate::parallel::set_blas_threads(threads),
        GemmThreading::SplitColumns => crate::parallel::set_blas_threads(1),
    }
}

/// The current choice.
pub fn threading() -> GemmThreading {
    if THREADING.load(Ordering::Relaxed) == GemmThreading::SplitColumns as u8 {
        GemmThreading::SplitColumns
    } else {
        GemmThreading::OpenBlas
    }
}

/// `c = alpha * a b + beta * c`; `a: (m, k)`, `b: (k, n)`, `c: (m, n)`.
pub fn gemm<F: Float>(
    alpha: F,
    a: ArrayView2<'_, F>,
    b: ArrayView2<'_, F>,
    beta: F,
    mut c: ArrayViewMut2<'_, F>,
) {
    debug_assert_eq!(a.ncols(), b.nrows());
    debug_assert_eq!((a.nrows(), b.ncols()), c.dim());
    let (m, k, n) = (a.nrows(), a.ncols(), b.ncols());
    let parts = rayon::current_num_threads().min(n / BLOCK_ALIGN).max(1);
    if threading() == GemmThreading::OpenBlas || parts == 1 || 2 * m * n * k < SPLIT_MIN_FLOP {
        general_mat_mul(alpha, &a, &b, beta, &mut c);
        return;
    }
    split_columns(alpha, a, b, beta, c, parts);
}

/// Splits `c` (and `b`) into `parts` column blocks of aligned widths and multiplies them
/// on the rayon pool, halving recursively with `rayon::join` (nothing is allocated).
fn split_columns<F: Float>(
    alpha: F,
    a: ArrayView2<'_, F>,
    b: ArrayView2<'_, F>,
    beta: F,
    mut c: ArrayViewMut2<'_, F>,
    parts: usize,
) {
    if parts <= 1 {
        general_mat_mul(alpha, &a, &b, beta, &mut c);
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
