//! Thread counts for the two pools nabla computes on: OpenBLAS's (GEMMs) and rayon's
//! (elementwise and softmax kernels).

use std::os::raw::c_int;

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
