//! A crew of threads that stay awake between short jobs: the per-core training step
//! hands its cores a job two or three times per batch, every 100-300 microseconds. A
//! rayon `join` there cost about 25 microseconds per meeting on a 2-core machine (the
//! other worker had gone to sleep and had to be woken, and the joining thread slept while
//! it waited), 15% of a batch-50 epoch; a crew member spins while it waits, so a meeting
//! costs well under a microsecond.
//!
//! A [`Crew`] of `size` members is the calling thread (member 0, the leader) and `size -
//! 1` helper threads it owns. [`Crew::run`] runs `job(member)` on every member at once
//! and returns when all have finished. Helpers spin for about a millisecond after a job,
//! then sleep until the next one (between epochs, a crew costs nothing). Nothing is
//! allocated per job.

use std::cell::UnsafeCell;
use std::hint;
use std::panic::{self, AssertUnwindSafe};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread::JoinHandle;

/// Spin-loop rounds a helper waits for the next job before it sleeps (each round is a
/// CPU pause hint, tens of nanoseconds: about a millisecond in all).
const SPINS_BEFORE_SLEEP: u32 = 1 << 15;

/// A job as the helpers see it: the leader's `&dyn Fn(usize)` with its lifetime erased.
type Job = NonNull<dyn Fn(usize) + Sync + 'static>;

/// What the leader and the helpers share.
struct Shared {
    /// Bumped by the leader to hand out a job.
    generation: AtomicU64,
    /// Helpers done with the current job.
    finished: AtomicUsize,
    /// The current job; written by the leader only while no helper runs one (see
    /// [`Crew::run`]).
    job: UnsafeCell<Option<Job>>,
    /// Set when a helper's part of the job panicked.
    panicked: AtomicBool,
    /// Set when the crew is dropped.
    stop: AtomicBool,
    /// Sleeping helpers, and where they sleep.
    sleepers: AtomicUsize,
    bed: Mutex<()>,
    alarm: Condvar,
}

// SAFETY: `job` is the only field that is not Sync by itself. The leader writes it only
// before publishing a generation (Release) and after every helper has reported the job
// finished (Acquire); helpers read it only between seeing that generation (Acquire) and
// reporting (Release). The job it points to is `Sync`.
unsafe impl Sync for Shared {}
// SAFETY: as above; the pointer is only dereferenced under that protocol.
unsafe impl Send for Shared {}

/// The leader's handle on its helper threads (see the module docs).
pub(crate) struct Crew {
    shared: Arc<Shared>,
    helpers: Vec<JoinHandle<()>>,
}

impl Crew {
    /// A crew of `size` members: the calling thread and `size - 1` new helper threads.
    /// If a helper thread cannot be started, the crew is smaller.
    pub(crate) fn new(size: usize) -> Self {
        let shared = Arc::new(Shared {
            generation: AtomicU64::new(0),
            finished: AtomicUsize::new(0),
            job: UnsafeCell::new(None),
            panicked: AtomicBool::new(false),
            stop: AtomicBool::new(false),
            sleepers: AtomicUsize::new(0),
            bed: Mutex::new(()),
            alarm: Condvar::new(),
        });
        let helpers = (1..size.max(1))
            .map_while(|member| {
                let shared = Arc::clone(&shared);
                std::thread::Builder::new()
                    .name(format!("nabla-crew-{member}"))
                    .spawn(move || helper(&shared, member))
                    .ok()
            })
            .collect();
        Self { shared, helpers }
    }

    /// Members, the leader included.
    pub(crate) fn size(&self) -> usize {
        self.helpers.len() + 1
    }

    /// Runs `job(member)` for every member `0..size` at once (member 0 on the calling
    /// thread) and returns when all have returned. A panic in any member is re-raised
    /// here, after every member has finished.
    pub(crate) fn run(&self, job: &(dyn Fn(usize) + Sync)) {
        if self.helpers.is_empty() {
            job(0);
            return;
        }
        let shared = &*self.shared;
        // SAFETY: only the lifetime is erased. The pointer is cleared below, after every
        // helper has reported this job finished, before `job`'s borrow ends (also when
        // `job` panics: the panic is caught and re-raised after the wait).
        let erased: Job = unsafe {
            std::mem::transmute::<NonNull<dyn Fn(usize) + Sync + '_>, Job>(NonNull::from(job))
        };
        // SAFETY: no helper runs a job now (the last `run` waited for all of them).
        unsafe { *shared.job.get() = Some(erased) };
        shared.finished.store(0, Ordering::Relaxed);
        shared.generation.fetch_add(1, Ordering::SeqCst);
        if shared.sleepers.load(Ordering::SeqCst) > 0 {
            let _bed = shared.bed.lock().unwrap_or_else(PoisonError::into_inner);
            shared.alarm.notify_all();
        }
        let leader = panic::catch_unwind(AssertUnwindSafe(|| job(0)));
        while shared.finished.load(Ordering::Acquire) < self.helpers.len() {
            hint::spin_loop();
        }
        // SAFETY: every helper has finished this job; none reads the pointer again before
        // the next generation.
        unsafe { *shared.job.get() = None };
        if let Err(payload) = leader {
            panic::resume_unwind(payload);
        }
        if shared.panicked.swap(false, Ordering::Relaxed) {
            panic!("a crew member panicked (its message is above)");
        }
    }
}

impl Drop for Crew {
    fn drop(&mut self) {
        let shared = &*self.shared;
        shared.stop.store(true, Ordering::SeqCst);
        {
            let _bed = shared.bed.lock().unwrap_or_else(PoisonError::into_inner);
            shared.alarm.notify_all();
        }
        for helper in self.helpers.drain(..) {
            // A helper catches its jobs' panics, so joining cannot fail in practice; if
            // it did, there would be nothing left to clean up.
            let _ = helper.join();
        }
    }
}

impl std::fmt::Debug for Crew {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Crew").field("size", &self.size()).finish()
    }
}

/// A helper's life: wait for each new generation, run the job as `member`, report.
fn helper(shared: &Shared, member: usize) {
    let mut seen = 0;
    loop {
        let Some(generation) = next_generation(shared, seen) else {
            return;
        };
        seen = generation;
        // SAFETY: the leader published this job before the generation we saw (Acquire
        // in `next_generation`) and keeps it alive until we report below.
        let job = unsafe { (*shared.job.get()).map(|job| job.as_ref()) };
        if let Some(job) = job {
            if panic::catch_unwind(AssertUnwindSafe(|| job(member))).is_err() {
                shared.panicked.store(true, Ordering::Relaxed);
            }
        }
        shared.finished.fetch_add(1, Ordering::Release);
    }
}

/// Waits for a generation after `seen`: spinning at first, then asleep. `None` when the
/// crew stops.
fn next_generation(shared: &Shared, seen: u64) -> Option<u64> {
    for _ in 0..SPINS_BEFORE_SLEEP {
        let generation = shared.generation.load(Ordering::Acquire);
        if generation != seen {
            return Some(generation);
        }
        if shared.stop.load(Ordering::Relaxed) {
            return None;
        }
        hint::spin_loop();
    }
    let mut bed = shared.bed.lock().unwrap_or_else(PoisonError::into_inner);
    shared.sleepers.fetch_add(1, Ordering::SeqCst);
    let woken = loop {
        let generation = shared.generation.load(Ordering::SeqCst);
        if generation != seen {
            break Some(generation);
        }
        if shared.stop.load(Ordering::SeqCst) {
            break None;
        }
        bed = shared
            .alarm
            .wait(bed)
            .unwrap_or_else(PoisonError::into_inner);
    };
    shared.sleepers.fetch_sub(1, Ordering::SeqCst);
    woken
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_member_runs_each_job_once() {
        for size in [1, 2, 3, 5] {
            let crew = Crew::new(size);
            assert_eq!(crew.size(), size);
            let counts: Vec<AtomicUsize> = (0..size).map(|_| AtomicUsize::new(0)).collect();
            for round in 0..1000 {
                crew.run(&|member| {
                    counts[member].fetch_add(1, Ordering::Relaxed);
                });
                if round == 500 {
                    // Long enough for the helpers to fall asleep: they must wake.
                    std::thread::sleep(std::time::Duration::from_millis(20));
                }
            }
            for (member, count) in counts.iter().enumerate() {
                assert_eq!(
                    count.load(Ordering::Relaxed),
                    1000,
                    "member {member} of {size}"
                );
            }
        }
    }

    #[test]
    fn a_panicking_member_is_reported_after_all_finish() {
        let crew = Crew::new(3);
        let finished = AtomicUsize::new(0);
        let outcome = panic::catch_unwind(AssertUnwindSafe(|| {
            crew.run(&|member| {
                if member == 2 {
                    panic!("member 2 fails");
                }
                std::thread::sleep(std::time::Duration::from_millis(5));
                finished.fetch_add(1, Ordering::Relaxed);
            })
        }));
        assert!(outcome.is_err());
        assert_eq!(
            finished.load(Ordering::Relaxed),
            2,
            "the others ran to the end"
        );
        // The crew still works afterwards.
        let ran = AtomicUsize::new(0);
        crew.run(&|_| {
            ran.fetch_add(1, Ordering::Relaxed);
        });
        assert_eq!(ran.load(Ordering::Relaxed), 3);
    }
}
