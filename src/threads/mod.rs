//! The one home of nabla's thread settings: how many threads a run may use and why
//! ([`budget`]: cores, affinity, cgroup quota, limits set from outside, a request), who
//! parallelises a GEMM ([`GemmThreading`]), OpenBLAS's thread count while runs live
//! ([`BlasLease`]), the rayon pools that survive a `fork` ([`on_pool`]), and from how
//! much work an elementwise kernel is split across a pool. Every other module reads them
//! here.

mod blas;
mod budget;
mod fork;
mod pool;

use std::cell::Cell;
use std::fmt;
use std::ptr::NonNull;
use std::str::FromStr;
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::sync::{Mutex, PoisonError};

use rayon::prelude::*;

use crate::names::UnknownName;

pub use blas::{
    after_outside_limit, blas_threads, outside_limit_began,
    outside_setting as blas_outside_setting, set_blas_threads, BlasLease,
};
pub use budget::{allowed_cpus, online_cores, Limits, ThreadBudget, ThreadSource};
pub use pool::on_pool;

/// Who parallelises a GEMM.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum GemmThreading {
    /// Chosen for each training run from its network (see [`auto_threading`]): the
    /// per-core step where it applies, the split GEMM elsewhere (the default).
    #[default]
    Auto,
    /// One OpenBLAS call, threaded by OpenBLAS itself.
    OpenBlas,
    /// Column blocks of each product on rayon's pool, each a one-thread OpenBLAS call.
    Split,
    /// Each core owns a slice of every wide layer's units for a whole training step,
    /// with one-thread OpenBLAS calls (fused with the update for plain gradient descent;
    /// other optimizers step on the gradients it leaves).
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
    pub(crate) fn blas_threads(self, threads: usize) -> usize {
        match self {
            Self::Auto | Self::OpenBlas => threads,
            Self::Split | Self::Sliced => 1,
        }
    }
}

/// What `auto` resolves to for a run on `threads` threads of a network the per-core step
/// can slice (`sliceable`) or not: `sliced` where it can, else `split`, and `openblas`
/// on one thread (all three are then one-thread OpenBLAS calls). So a run that does not
/// ask for OpenBLAS's threads never depends on OpenBLAS's thread count, which is shared
/// by everything in the process (other runs change it), and its numbers depend only on
/// its own settings. Other choices are returned as they are, except `sliced` where the
/// step cannot be sliced (then `split`).
///
/// The per-core step was measured (`cargo bench --bench epoch`, group `sliced_step`; and
/// 2 epochs of full MNIST at batch 1,024 to 4,096) faster than OpenBLAS's threads at
/// batch 1, 50 and 256 (1.0-1.2x, 1.5-2.0x, 1.15-1.24x) and level from 1,000 rows up.
pub fn auto_threading(requested: GemmThreading, sliceable: bool, threads: usize) -> GemmThreading {
    match requested {
        GemmThreading::Auto if threads <= 1 => GemmThreading::OpenBlas,
        GemmThreading::Auto | GemmThreading::Sliced if sliceable && threads > 1 => {
            GemmThreading::Sliced
        }
        GemmThreading::Auto | GemmThreading::Sliced => GemmThreading::Split,
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

/// Threads asked for by [`set_threads`] (0: none, the budget decides).
static REQUESTED: AtomicUsize = AtomicUsize::new(0);
/// nabla's own thread limit ([`set_limit`]; 0: none).
static LIMIT: AtomicUsize = AtomicUsize::new(0);
static GEMM_THREADING: AtomicU8 = AtomicU8::new(GemmThreading::Auto as u8);

/// The CPUs this process may use: the online cores, its CPU affinity and its cgroup's
/// CPU quota (the limits set from outside the process itself, which even a request
/// cannot exceed usefully).
pub fn available_cores() -> usize {
    Limits::read().hardware().threads
}

/// The threads a run started now uses, and why (see [`ThreadBudget::decide`]): the
/// request of [`set_threads`] if any, else the smallest of the hardware limits, the
/// environment's thread variables, OpenBLAS's count as set outside nabla's runs (by
/// threadpoolctl, say) and nabla's limit ([`set_limit`]).
pub fn budget() -> ThreadBudget {
    let requested = match REQUESTED.load(Ordering::Relaxed) {
        0 => None,
        threads => Some(threads),
    };
    budget_for(requested)
}

/// The threads a run started now would use with `requested` threads asked for (`None`:
/// as the limits decide), and why.
pub fn budget_for(requested: Option<usize>) -> ThreadBudget {
    let mut limits = Limits::read();
    limits.limit = limit();
    let hardware = limits.hardware().threads;
    let outside = blas::outside_setting();
    limits.openblas = (outside < hardware).then_some(outside);
    ThreadBudget::decide(&limits, requested)
}

/// Asks for `threads` threads per run (`None`: let [`budget`] decide) and sets who
/// parallelises the GEMMs. A request overrides every limit (more threads than the CPUs
/// this process may use only wait on each other: see [`available_cores`]).
pub fn set_threads(threads: Option<usize>, gemm: GemmThreading) {
    REQUESTED.store(
        threads.map_or(0, |threads| threads.max(1)),
        Ordering::Relaxed,
    );
    GEMM_THREADING.store(gemm as u8, Ordering::Relaxed);
}

/// Sets who parallelises GEMMs from now on, and the threads per run (benchmarks and
/// tests switch modes with this; programs call [`set_threads`]).
#[doc(hidden)]
pub fn set_gemm_threading(threading: GemmThreading, threads: usize) {
    set_threads(Some(threads), threading);
}

/// Limits the threads of later runs to `threads` (`None`: no limit of nabla's own), as
/// threadpoolctl's `threadpool_limits` does through nabla's Python package.
pub fn set_limit(threads: Option<usize>) {
    LIMIT.store(
        threads.map_or(0, |threads| threads.max(1)),
        Ordering::Relaxed,
    );
}

/// nabla's own thread limit, if set.
pub fn limit() -> Option<usize> {
    match LIMIT.load(Ordering::Relaxed) {
        0 => None,
        threads => Some(threads),
    }
}

/// The current GEMM threading mode.
pub fn gemm_threading() -> GemmThreading {
    let stored = GEMM_THREADING.load(Ordering::Relaxed);
    GemmThreading::ALL
        .into_iter()
        .find(|threading| *threading as u8 == stored)
        .unwrap_or_default()
}

/// The threads of the pool the caller runs on, or 1 outside nabla's pools (so that
/// nothing outside a run ever reaches rayon's global pool).
pub(crate) fn parallelism() -> usize {
    if rayon::current_thread_index().is_some() {
        rayon::current_num_threads()
    } else {
        1
    }
}

/// Runs `work` with OpenBLAS on one thread (a lease; see [`BlasLease`]): for the LAPACK
/// calls whose results would otherwise depend on the thread count (OpenBLAS's threaded
/// factorisations sum in an order that follows it).
pub(crate) fn with_one_blas_thread<R>(work: impl FnOnce() -> R) -> R {
    let _lease = BlasLease::new(1);
    work()
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

thread_local! {
    /// Set while a crew owns the cores (the per-core step): kernels then run serially.
    static SERIAL: Cell<bool> = const { Cell::new(false) };
}

/// Whether a kernel over `elements` elements of relative cost `cost` (elements times
/// [`CHEAP_ELEMENT`] or [`TRANSCENDENTAL_ELEMENT`]) is worth splitting across the pool
/// the caller runs on: never outside nabla's pools, nor while a crew owns the cores
/// ([`SerialKernels`]).
pub(crate) fn worth_parallel(elements: usize, cost: usize) -> bool {
    rayon::current_thread_index().is_some()
        && !SERIAL.with(Cell::get)
        && elements.saturating_mul(cost) >= PARALLEL_MIN_WORK.load(Ordering::Relaxed)
}

/// What runs this thread's shareable elementwise work at once while the per-core
/// step's crew holds the cores (the crew itself, see `network::sliced`).
pub(crate) trait Executor {
    /// Members that work at once (1: the calling thread alone).
    fn width(&self) -> usize;
    /// Runs `job(piece)` for each piece `0..pieces`, returning when all have.
    fn run(&self, pieces: usize, job: &(dyn Fn(usize) + Sync));
}

thread_local! {
    /// The executor of [`with_executor`], while it runs.
    static EXECUTOR: Cell<Option<NonNull<dyn Executor>>> = const { Cell::new(None) };
}

/// Runs `work` with `executor` sharing this thread's elementwise work ([`share`]).
pub(crate) fn with_executor<R>(executor: &dyn Executor, work: impl FnOnce() -> R) -> R {
    // SAFETY: only the lifetime is erased; the pointer is taken out of the thread-local
    // below, when this call ends (also on a panic), before `executor`'s borrow does.
    let erased: NonNull<dyn Executor + 'static> =
        unsafe { std::mem::transmute(NonNull::from(executor)) };
    struct Restore(Option<NonNull<dyn Executor>>);
    impl Drop for Restore {
        fn drop(&mut self) {
            EXECUTOR.with(|cell| cell.set(self.0));
        }
    }
    let _restore = Restore(EXECUTOR.with(|cell| cell.replace(Some(erased))));
    work()
}

/// How many pieces elementwise work of `elements` elements of relative cost `cost` is
/// worth cutting into on this thread: the executor's width, the pool's threads (see
/// [`worth_parallel`]), or 1.
pub(crate) fn share_width(elements: usize, cost: usize) -> usize {
    if elements.saturating_mul(cost) < PARALLEL_MIN_WORK.load(Ordering::Relaxed) {
        return 1;
    }
    if let Some(executor) = EXECUTOR.with(Cell::get) {
        // SAFETY: set by `with_executor`, whose borrow outlives this call.
        return unsafe { executor.as_ref() }.width();
    }
    if worth_parallel(elements, cost) {
        rayon::current_num_threads()
    } else {
        1
    }
}

/// Runs `work` on every piece (each taken once): on the executor if one is set (taken
/// while it runs, so that work nested in a piece stays serial), else on the pool the
/// caller runs on, else here. The pieces' results do not depend on where they ran.
pub(crate) fn share<T: Send>(pieces: &[Mutex<Option<T>>], work: &(impl Fn(T) + Sync)) {
    let run = |index: usize| {
        let piece = pieces[index]
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(piece) = piece {
            work(piece);
        }
    };
    if let Some(executor) = EXECUTOR.with(Cell::take) {
        struct Restore(NonNull<dyn Executor>);
        impl Drop for Restore {
            fn drop(&mut self) {
                EXECUTOR.with(|cell| cell.set(Some(self.0)));
            }
        }
        let _restore = Restore(executor);
        // SAFETY: set by `with_executor`, whose borrow outlives this call.
        unsafe { executor.as_ref() }.run(pieces.len(), &run);
        return;
    }
    if rayon::current_thread_index().is_some() && !SERIAL.with(Cell::get) {
        (0..pieces.len()).into_par_iter().for_each(run);
    } else {
        (0..pieces.len()).for_each(run);
    }
}

/// While alive, kernels called on this thread run serially (the per-core step's crew
/// holds the other cores; a rayon split there would wait on a spinning crew member).
pub(crate) struct SerialKernels {
    before: bool,
}

impl SerialKernels {
    pub(crate) fn new() -> Self {
        Self {
            before: SERIAL.with(|serial| serial.replace(true)),
        }
    }
}

impl Drop for SerialKernels {
    fn drop(&mut self) {
        SERIAL.with(|serial| serial.set(self.before));
    }
}

/// Sets the elementwise threshold (0: always parallel, `usize::MAX`: never); the
/// benchmarks use it to compare both sides.
#[doc(hidden)]
pub fn set_parallel_min_work(work: usize) {
    PARALLEL_MIN_WORK.store(work, Ordering::Relaxed);
}

#[cfg(test)]
pub(crate) mod tests {
    use std::sync::{Mutex, MutexGuard, PoisonError};

    /// Serialises the unit tests that change OpenBLAS's process-wide thread count.
    pub(crate) fn exclusive() -> MutexGuard<'static, ()> {
        static LOCK: Mutex<()> = Mutex::new(());
        LOCK.lock().unwrap_or_else(PoisonError::into_inner)
    }
}
