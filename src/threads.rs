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
    /// Chosen for each training run from its shape (see [`auto_threading`]): `sliced`
    /// where it was measured to win, `openblas` elsewhere (the default).
    #[default]
    Auto,
    /// One OpenBLAS call, threaded by OpenBLAS itself.
    OpenBlas,
    /// Column blocks of each product on rayon's pool, each a one-thread OpenBLAS call.
    Split,
    /// Each core owns a slice of every wide layer's units for a whole training step,
    /// with one-thread OpenBLAS calls (plain gradient descent only; other optimizers use
    /// `openblas`).
    Sliced,
}

impl GemmThreading {
    /// Every choice, in the order the command line lists them.
    pub const ALL: [GemmThreading; 4] = [Self::Auto, Self::OpenBlas, Self::Split, Self::Sliced];

    /// The name the command line uses (`auto`, `openblas`, `split`, `sliced`).
    pub fn name(self) -> &'static str {
        match self {
            Self::Auto => "auto",
            Self::OpenBlas => "openblas",
            Self::Split => "split",
            Self::Sliced => "sliced",
        }
    }

    /// Threads OpenBLAS itself uses under this choice, out of `threads`: all of them for
    /// `openblas` (and `auto`, until a run resolves it), one where nabla's own threads
    /// share the work.
    fn blas_threads(self, threads: usize) -> usize {
        match self {
            Self::Auto | Self::OpenBlas => threads,
            Self::Split | Self::Sliced => 1,
        }
    }
}

/// The largest batch for which `auto` picks the per-core step: measured by `cargo bench
/// --bench epoch` (group `sliced_step`, one epoch each way, back to back) on a 2-core
/// AVX-512 machine, where the sliced step was faster at batch 1, 50 and 256 (1.2x, 2.0x,
/// 1.15x in a busy period; 1.0x, 1.5x, 1.24x in another) and level at 1,000 (1.04x,
/// 1.01x). Larger batches were not measured, and keep OpenBLAS's threads.
pub const SLICED_MAX_BATCH: usize = 1024;

/// What `auto` resolves to for a run of plain gradient descent (`plain_sgd`) on
/// `threads` threads with batches of `batch` rows, when the network can be sliced
/// (`sliceable`): `sliced` up to [`SLICED_MAX_BATCH`] rows, `openblas` otherwise. Other
/// choices are returned as they are, except `sliced` where the step cannot be sliced.
pub fn auto_threading(
    requested: GemmThreading,
    plain_sgd: bool,
    sliceable: bool,
    batch: usize,
    threads: usize,
) -> GemmThreading {
    let can_slice = plain_sgd && sliceable && threads > 1;
    match requested {
        GemmThreading::Auto if can_slice && batch <= SLICED_MAX_BATCH => GemmThreading::Sliced,
        GemmThreading::Auto => GemmThreading::OpenBlas,
        GemmThreading::Sliced if !can_slice => GemmThreading::OpenBlas,
        other => other,
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

static GEMM_THREADING: AtomicU8 = AtomicU8::new(GemmThreading::Auto as u8);
/// The thread count of the last [`set_gemm_threading`]; 0 until then (rayon's pool size
/// is used).
static GEMM_THREADS: AtomicUsize = AtomicUsize::new(0);

/// Chooses who parallelises GEMMs from now on. With `Split` and `Sliced`, OpenBLAS itself
/// is set to one thread so that the two pools never oversubscribe the cores; with
/// `OpenBlas` (and `Auto`), it gets `threads`. (Benchmarks switch modes with this; programs call [`set_threads`].)
#[doc(hidden)]
pub fn set_gemm_threading(threading: GemmThreading, threads: usize) {
    GEMM_THREADING.store(threading as u8, Ordering::Relaxed);
    GEMM_THREADS.store(threads, Ordering::Relaxed);
    set_blas_threads(threading.blas_threads(threads));
}

/// Sets OpenBLAS's threads for a training run that resolved its threading to
/// `threading` (see [`auto_threading`]): the threads given to [`set_threads`] (or
/// rayon's pool size, if it was never called) for `openblas`, one otherwise.
pub(crate) fn prepare_blas_for(threading: GemmThreading) {
    let threads = match GEMM_THREADS.load(Ordering::Relaxed) {
        0 => rayon::current_num_threads(),
        threads => threads,
    };
    set_blas_threads(threading.blas_threads(threads));
}

/// The current GEMM threading mode.
pub fn gemm_threading() -> GemmThreading {
    let stored = GEMM_THREADING.load(Ordering::Relaxed);
    GemmThreading::ALL
        .into_iter()
        .find(|threading| *threading as u8 == stored)
        .unwrap_or_default()
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
