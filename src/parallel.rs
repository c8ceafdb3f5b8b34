//! Thread counts for the two pools nabla computes on: OpenBLAS's (GEMMs) and rayon's
//! (elementwise and softmax kernels).

use std::os::raw::c_int;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::gemm::GemmThreading;

extern "C" {
    fn openblas_set_num_threads(num_threads: c_int);
    fn openblas_get_num_threads() -> c_int;
}

/// Threads OpenBLAS uses for one GEMM.
pub fn blas_threads() -> usize {
    // SAFETY: a plain getter of OpenBLAS's global thread count.
    unsafe { openblas_get_num_threads() }.max(1) as usize
}

/// Sets the threads OpenBLAS uses for one GEMM (at least 1).
pub fn set_blas_threads(threads: usize) {
    let threads = threads.clamp(1, c_int::MAX as usize) as c_int;
    // SAFETY: OpenBLAS's documented setter; it takes effect for later calls.
    unsafe { openblas_set_num_threads(threads) }
}

/// The number of cores available to this process.
pub fn available_cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Uses `threads` cores for the GEMMs (through OpenBLAS or rayon, as `threading` says;
/// never both at once) and for rayon's elementwise kernels. Fails if rayon's global pool
/// was already built with another size.
pub fn set_threads(threads: usize, threading: GemmThreading) -> Result<(), String> {
    let threads = threads.max(1);
    crate::gemm::set_threading(threading, threads);
    match rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build_global()
    {
        Ok(()) => Ok(()),
        Err(_) if rayon::current_num_threads() == threads => Ok(()),
        Err(error) => Err(format!(
            "cannot use {threads} threads: the thread pool already has {} ({error})",
            rayon::current_num_threads()
        )),
    }
}

/// Relative cost per element of a cheap kernel (ReLU: a compare and a select).
pub const CHEAP_ELEMENT: usize = 1;
/// Relative cost per element of a kernel that calls `exp` or `tanh` (sigmoid, tanh,
/// softmax): about 16 times a ReLU's, as measured by `cargo bench --bench kernels`.
pub const TRANSCENDENTAL_ELEMENT: usize = 16;

/// Default of [`parallel_min_work`]: the crossover measured by `cargo bench --bench
/// kernels` (groups `activation` and `softmax_cross_entropy`, run on rayon's pool as
/// training is): rayon wins from about 4,096 sigmoid or softmax elements and from about
/// 65,536 ReLU elements on 2 cores.
pub const DEFAULT_PARALLEL_MIN_WORK: usize = 1 << 16;

static PARALLEL_MIN_WORK: AtomicUsize = AtomicUsize::new(DEFAULT_PARALLEL_MIN_WORK);

/// Elementwise and softmax kernels whose work (elements times [`CHEAP_ELEMENT`] or
/// [`TRANSCENDENTAL_ELEMENT`]) is below this run on one thread; larger ones are split
/// across rayon's pool.
pub fn parallel_min_work() -> usize {
    PARALLEL_MIN_WORK.load(Ordering::Relaxed)
}

/// Whether a kernel over `elements` elements of relative cost `cost` should use rayon.
pub fn worth_parallel(elements: usize, cost: usize) -> bool {
    elements.saturating_mul(cost) >= parallel_min_work()
}

/// Sets the threshold of [`parallel_min_work`] (0: always parallel, `usize::MAX`:
/// never); used by the benchmarks to compare both sides.
pub fn set_parallel_min_work(work: usize) {
    PARALLEL_MIN_WORK.store(work, Ordering::Relaxed);
}
