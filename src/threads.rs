//! The one home of nabla's thread settings: how many threads rayon's pool and OpenBLAS
//! use, who parallelises a GEMM ([`GemmThreading`]), and from how much work an
//! elementwise kernel is split across rayon's pool. Every other module reads them here.

use std::fmt;
use std::os::raw::c_int;
use std::str::FromStr;
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::sync::{Mutex, PoisonError};

use thiserror::Error;

use crate::names::UnknownName;

extern "C" {
    fn openblas_set_num_threads(num_threads: c_int);
    fn openblas_get_num_threads() -> c_int;
}

/// Who parallelises a GEMM.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum GemmThreading {
    /// One OpenBLAS call, threaded by OpenBLAS itself (the default).
    #[default]
    OpenBlas,
    /// Column blocks of the product on rayon's pool, each a one-thread OpenBLAS call.
    Split,
}

impl GemmThreading {
    /// Every choice, in the order the command line lists them.
    pub const ALL: [GemmThreading; 2] = [Self::OpenBlas, Self::Split];

    /// The name the command line uses (`openblas`, `split`).
    pub fn name(self) -> &'static str {
        match self {
            Self::OpenBlas => "openblas",
            Self::Split => "split",
        }
    }
}

impl fmt::Display for GemmThreading {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for GemmThreading {
    type Err = UnknownName;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        UnknownName::find("GEMM threading", name, Self::ALL, Self::name)
    }
}

/// Why the thread counts could not be set.
#[derive(Debug, Error)]
pub enum ThreadsError {
    /// rayon's global pool exists already with another size (it can be built only once
    /// per process).
    #[error("cannot use {requested} threads: the thread pool already has {existing}")]
    PoolAlreadyBuilt {
        /// Threads asked for.
        requested: usize,
        /// Threads the pool has.
        existing: usize,
        /// rayon's reason.
        #[source]
        source: rayon::ThreadPoolBuildError,
    },
}

/// The number of cores available to this process.
pub fn available_cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Uses `threads` cores for the GEMMs (through OpenBLAS or rayon, as `gemm` says; never
/// both at once) and for rayon's elementwise kernels. Fails if rayon's global pool was
/// already built with another size.
pub fn set_threads(threads: usize, gemm: GemmThreading) -> Result<(), ThreadsError> {
    let threads = threads.max(1);
    set_gemm_threading(gemm, threads);
    match rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build_global()
    {
        Ok(()) => Ok(()),
        Err(_) if rayon::current_num_threads() == threads => Ok(()),
        Err(source) => Err(ThreadsError::PoolAlreadyBuilt {
            requested: threads,
            existing: rayon::current_num_threads(),
            source,
        }),
    }
}

static GEMM_THREADING: AtomicU8 = AtomicU8::new(GemmThreading::OpenBlas as u8);

/// Chooses who parallelises GEMMs from now on. With `Split`, OpenBLAS itself is set to
/// one thread so that the two pools never oversubscribe the cores; with `OpenBlas`, it
/// gets `threads`. (Benchmarks switch modes with this; programs call [`set_threads`].)
#[doc(hidden)]
pub fn set_gemm_threading(threading: GemmThreading, threads: usize) {
    GEMM_THREADING.store(threading as u8, Ordering::Relaxed);
    set_blas_threads(match threading {
        GemmThreading::OpenBlas => threads,
        GemmThreading::Split => 1,
    });
}

/// The current GEMM threading mode.
pub fn gemm_threading() -> GemmThreading {
    if GEMM_THREADING.load(Ordering::Relaxed) == GemmThreading::Split as u8 {
        GemmThreading::Split
    } else {
        GemmThreading::OpenBlas
    }
}

/// Threads OpenBLAS uses for one GEMM.
pub fn blas_threads() -> usize {
    // SAFETY: a plain getter of OpenBLAS's global thread count.
    unsafe { openblas_get_num_threads() }.max(1) as usize
}

/// Sets the threads OpenBLAS uses for one GEMM (at least 1).
#[doc(hidden)]
pub fn set_blas_threads(threads: usize) {
    let threads = threads.clamp(1, c_int::MAX as usize) as c_int;
    // SAFETY: OpenBLAS's documented setter; it takes effect for later calls.
    unsafe { openblas_set_num_threads(threads) }
}

/// Runs `work` with OpenBLAS on one thread, then restores the thread count: for the
/// LAPACK calls whose results would otherwise depend on it (OpenBLAS's threaded
/// factorisations sum in an order that follows the thread count). Calls take turns.
pub(crate) fn with_one_blas_thread<R>(work: impl FnOnce() -> R) -> R {
    static TURN: Mutex<()> = Mutex::new(());
    let _turn = TURN.lock().unwrap_or_else(PoisonError::into_inner);
    let previous = blas_threads();
    set_blas_threads(1);
    let result = work();
    set_blas_threads(previous);
    result
}

/// Relative cost per element of a cheap kernel (ReLU: a compare and a select).
pub(crate) const CHEAP_ELEMENT: usize = 1;
/// Relative cost per element of a kernel that calls `exp` or `tanh` (sigmoid, tanh,
/// softmax): about 16 times a ReLU's, as measured by `cargo bench --bench kernels`.
pub(crate) const TRANSCENDENTAL_ELEMENT: usize = 16;

/// Default of the elementwise threshold: the crossover measured by `cargo bench --bench
/// kernels` (groups `activation` and `softmax_cross_entropy`, run on rayon's pool as
/// training is): rayon wins from about 4,096 sigmoid or softmax elements and from about
/// 65,536 ReLU elements on 2 cores.
#[doc(hidden)]
pub const DEFAULT_PARALLEL_MIN_WORK: usize = 1 << 16;

static PARALLEL_MIN_WORK: AtomicUsize = AtomicUsize::new(DEFAULT_PARALLEL_MIN_WORK);

/// Whether a kernel over `elements` elements of relative cost `cost` (elements times
/// [`CHEAP_ELEMENT`] or [`TRANSCENDENTAL_ELEMENT`]) is worth splitting across rayon's
/// pool.
pub(crate) fn worth_parallel(elements: usize, cost: usize) -> bool {
    elements.saturating_mul(cost) >= PARALLEL_MIN_WORK.load(Ordering::Relaxed)
}

/// Sets the elementwise threshold (0: always parallel, `usize::MAX`: never); the
/// benchmarks use it to compare both sides.
#[doc(hidden)]
pub fn set_parallel_min_work(work: usize) {
    PARALLEL_MIN_WORK.store(work, Ordering::Relaxed);
}
