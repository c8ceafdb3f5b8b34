//! OpenBLAS's thread count, shared by everything in the process that runs nabla.
//!
//! OpenBLAS has one thread count per process. A nabla run that parallelises the GEMMs
//! itself (the per-core step, the split GEMM, evaluation shared between the cores) needs
//! one-thread OpenBLAS calls; a run on OpenBLAS's threads needs its thread count. Each
//! run holds a [`BlasLease`] for the count it needs while it lives: while any lease is
//! held, OpenBLAS runs at the smallest count asked for (so two runs in one process never
//! put their threads on top of each other); when the last lease ends, the count found
//! before the first is put back, unless someone else changed it meanwhile. Outside
//! nabla's runs the count is therefore whatever the program (or threadpoolctl) set,
//! which [`outside_setting`] reports.
//!
//! The registry is guarded by the lock that `fork` never copies held
//! ([`super::fork`]), and a forked child starts with no leases: the parent's runs do
//! not exist there.

use std::os::raw::c_int;
use std::sync::{Mutex, PoisonError};

use std::time::{Duration, Instant};

use super::fork;

extern "C" {
    fn openblas_set_num_threads(num_threads: c_int);
    fn openblas_get_num_threads() -> c_int;
}

/// Threads OpenBLAS uses for one GEMM now.
pub fn blas_threads() -> usize {
    // SAFETY: a plain getter of OpenBLAS's global thread count.
    unsafe { openblas_get_num_threads() }.max(1) as usize
}

/// Sets the threads OpenBLAS uses for one GEMM (at least 1), outside the leases (for
/// benchmarks and examples that drive OpenBLAS directly).
#[doc(hidden)]
pub fn set_blas_threads(threads: usize) {
    let threads = threads.clamp(1, c_int::MAX as usize) as c_int;
    // SAFETY: OpenBLAS's documented setter; it takes effect for later calls.
    unsafe { openblas_set_num_threads(threads) }
}

/// The most leases held at once (runs in one process); more are not tracked and get
/// one thread.
const MAX_LEASES: usize = 64;

struct Registry {
    /// The pid the leases belong to (a forked child starts afresh).
    pid: u32,
    /// Threads asked for by each live lease (0: a free slot).
    asked: [usize; MAX_LEASES],
    /// OpenBLAS's count before the first live lease, to put back after the last.
    before: usize,
    /// The count the leases set, to tell a change from outside.
    set: usize,
    /// A run's count that a threadpoolctl block read as OpenBLAS's own (the block
    /// began while the run was live) and will put back when it ends.
    stale: Option<usize>,
    /// The last run to end: the count it had set, the count it put back, and when.
    last_run: Option<(usize, usize, Instant)>,
    /// When a threadpoolctl block last read nabla's count (it reads OpenBLAS's just
    /// before).
    block_read: Option<Instant>,
}

/// How long before a threadpoolctl block reads nabla's count a run may have ended and
/// still have been live when the block read OpenBLAS's (threadpoolctl reads OpenBLAS
/// first; between the two reads, under load, a run can end).
const READ_WINDOW: Duration = Duration::from_millis(100);

static REGISTRY: Mutex<Registry> = Mutex::new(Registry {
    pid: 0,
    asked: [0; MAX_LEASES],
    before: 0,
    set: 0,
    stale: None,
    last_run: None,
    block_read: None,
});

/// Runs `f` on the registry under the fork-safe lock (a child of `fork` finds it empty).
fn with_registry<R>(f: impl FnOnce(&mut Registry) -> R) -> R {
    fork::locked(|| {
        let mut registry = REGISTRY.lock().unwrap_or_else(PoisonError::into_inner);
        let pid = std::process::id();
        if registry.pid != pid {
            // A child of fork: the parent's runs are not here, and neither should be
            // the count they had set.
            if registry.live().next().is_some() && blas_threads() == registry.set {
                set_blas_threads(registry.before);
            }
            registry.pid = pid;
            registry.asked = [0; MAX_LEASES];
        }
        f(&mut registry)
    })
}

impl Registry {
    fn live(&self) -> impl Iterator<Item = usize> + '_ {
        self.asked.iter().copied().filter(|&asked| asked > 0)
    }

    /// OpenBLAS's count as the program outside nabla's runs has it: the count from
    /// before the live runs, or the current count with none live, unless it is a run's
    /// own count that a threadpoolctl block put back (see [`outside_limit_began`]).
    fn outside(&self) -> usize {
        let current = blas_threads();
        if self.live().next().is_some() || self.stale == Some(current) {
            self.before
        } else {
            current
        }
    }
}

/// OpenBLAS's thread count as the program outside nabla's runs has it: the count before
/// the first live lease, or the current count when no run is live.
pub fn outside_setting() -> usize {
    with_registry(|registry| registry.outside())
}

/// Called when a limit from outside begins (threadpoolctl's `threadpool_limits`
/// entering its block, which limits nabla too): the block reads OpenBLAS's count to put
/// it back at its end, and if a run is live now, what it reads is the run's count.
pub fn outside_limit_began() {
    with_registry(|registry| {
        registry.block_read = Some(Instant::now());
        if registry.live().next().is_some() {
            registry.stale = Some(registry.set);
        }
    });
}

/// Called when such a limit ends: threadpoolctl puts back the counts it read when the
/// block began (in the order it found the libraries, before or after this call). A
/// run's count put back that way is not a limit: with no run live, OpenBLAS at that
/// count gets the count from before the run back (now, or at the next run, whose
/// lease counts from there).
pub fn after_outside_limit() {
    with_registry(|registry| {
        let current = blas_threads();
        if registry.live().next().is_some() {
            return;
        }
        // A run that ended during the block, or just before it read nabla's count, was
        // live when it read OpenBLAS's: the count the block puts back is that run's.
        // Put back first (OpenBLAS at it now): undone here; not yet: noted as stale, so
        // that OpenBLAS at that count counts as the run's `before`.
        let recent = match (registry.last_run, registry.block_read) {
            (Some((set, before, ended)), Some(read)) if ended + READ_WINDOW >= read => {
                (before != set).then_some((set, before))
            }
            _ => None,
        };
        if let Some((set, before)) = recent {
            registry.last_run = None;
            registry.before = before;
            if current == set {
                set_blas_threads(before);
                registry.stale = None;
            } else {
                registry.stale = Some(set);
            }
            return;
        }
        let Some(stale) = registry.stale else { return };
        if current == stale && registry.before != stale {
            set_blas_threads(registry.before);
            registry.stale = None;
        }
    });
}

/// OpenBLAS held at (at most) a thread count while a run lives (see the module docs).
#[derive(Debug)]
pub struct BlasLease {
    slot: Option<usize>,
    pid: u32,
}

impl BlasLease {
    /// Asks for OpenBLAS to run at `threads` threads until the lease is dropped; with
    /// other leases live, it runs at the smallest count asked for.
    pub fn new(threads: usize) -> Self {
        let threads = threads.max(1);
        with_registry(|registry| {
            if registry.live().next().is_none() {
                registry.before = registry.outside();
                registry.stale = None;
            }
            let slot = registry.asked.iter().position(|&asked| asked == 0);
            if let Some(slot) = slot {
                registry.asked[slot] = threads;
            }
            let count = if slot.is_some() {
                registry.live().min().unwrap_or(threads)
            } else {
                1
            };
            if blas_threads() != count {
                set_blas_threads(count);
            }
            registry.set = count;
            Self {
                slot,
                pid: registry.pid,
            }
        })
    }
}

impl Drop for BlasLease {
    fn drop(&mut self) {
        with_registry(|registry| {
            // A lease made before a fork belongs to the parent.
            let Some(slot) = self.slot.filter(|_| registry.pid == self.pid) else {
                return;
            };
            registry.asked[slot] = 0;
            let current = blas_threads();
            let changed_outside = current != registry.set;
            match registry.live().min() {
                _ if changed_outside => {}
                Some(count) => {
                    if count != current {
                        set_blas_threads(count);
                    }
                    registry.set = count;
                }
                None => {
                    if registry.before != current {
                        set_blas_threads(registry.before);
                    }
                    registry.last_run = Some((registry.set, registry.before, Instant::now()));
                }
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leases_take_the_smallest_count_and_put_the_old_one_back() {
        let _serial = crate::threads::tests::exclusive();
        set_blas_threads(3);
        {
            let four = BlasLease::new(4);
            assert_eq!(blas_threads(), 4);
            assert_eq!(outside_setting(), 3);
            let one = BlasLease::new(1);
            assert_eq!(blas_threads(), 1, "the smallest count wins");
            drop(four);
            assert_eq!(blas_threads(), 1);
            drop(one);
        }
        assert_eq!(blas_threads(), 3, "the count from before is back");
        {
            let _lease = BlasLease::new(1);
            set_blas_threads(2); // threadpoolctl, during the run
        }
        assert_eq!(blas_threads(), 2, "a change from outside is kept");
        assert_eq!(outside_setting(), 2);
        // threadpoolctl's block began during a run (reading the run's count, 1) and ends
        // after it (putting that 1 back): the count from before the run comes back,
        // whether nabla hears of the end after OpenBLAS's count is put back ...
        set_blas_threads(3);
        let lease = BlasLease::new(1);
        outside_limit_began();
        drop(lease);
        assert_eq!(blas_threads(), 3);
        set_blas_threads(1); // threadpoolctl restores what it read
        after_outside_limit();
        assert_eq!(blas_threads(), 3);
        // ... or before: the next run counts from the count before the first.
        let lease = BlasLease::new(1);
        outside_limit_began();
        drop(lease);
        after_outside_limit();
        set_blas_threads(1);
        assert_eq!(outside_setting(), 3, "a run's own count put back");
        drop(BlasLease::new(2));
        assert_eq!(blas_threads(), 3);
        // A limit found before a run is never raised, even one equal to a run's count.
        set_blas_threads(1);
        assert_eq!(outside_setting(), 1);
        drop(BlasLease::new(2));
        assert_eq!(blas_threads(), 1);
    }

    #[test]
    fn a_block_that_read_a_run_that_ended_under_it_puts_back_no_limit() {
        let _serial = crate::threads::tests::exclusive();
        set_blas_threads(3);
        // The block reads nabla's count while a run is live (and OpenBLAS's, the run's
        // 1); the fit's run ends and a second, short one (a score) starts and ends in
        // the block; nabla hears of the block's end before OpenBLAS's 1 is put back.
        let lease = BlasLease::new(1);
        outside_limit_began();
        drop(lease);
        drop(BlasLease::new(1));
        after_outside_limit();
        set_blas_threads(1);
        assert_eq!(outside_setting(), 3, "the run's 1 is no limit");
        drop(BlasLease::new(2));
        assert_eq!(blas_threads(), 3);
        // OpenBLAS read first: the run ends between that read and nabla's.
        let lease = BlasLease::new(1);
        drop(lease);
        outside_limit_began();
        set_blas_threads(1);
        after_outside_limit();
        assert_eq!(blas_threads(), 3);
        // A block long after a run keeps its own limit: a real 1 stays 1.
        drop(BlasLease::new(1));
        std::thread::sleep(READ_WINDOW * 2);
        outside_limit_began();
        set_blas_threads(1);
        after_outside_limit();
        assert_eq!(outside_setting(), 1);
        set_blas_threads(3);
    }
}
