//! A crew of threads for the per-core training step: a job of a few pieces (one per
//! core: the slices of a layer) handed out two or three times per batch, every 100-300
//! microseconds. A rayon `join` there cost about 25 microseconds per meeting on a 2-core
//! machine; a crew member that waits by spinning notices a new job within a microsecond.
//!
//! A [`Crew`] of `size` members is the calling thread (member 0, the leader) and `size -
//! 1` helper threads it owns. [`Crew::run`] runs `job(piece)` once for every piece of a
//! job, on whichever member claims it first (member `m` tries piece `m` first, so that
//! when every member is on time each keeps its own slice and its cache), and returns
//! when all have finished. A helper that is late, because the cores are busy with other
//! work and it has not been scheduled, is not waited for: the leader claims its piece
//! and the helper, when it runs, finds the job closed. The pieces and their results do
//! not depend on who runs them.
//!
//! Waiting never holds a core for long: a helper spins for [`HELPER_SPIN`] after a job,
//! then sleeps until the next one; the leader, waiting for a helper to finish a piece it
//! claimed, spins for [`LEADER_SPIN`], then sleeps until woken. [`Pacer`] decides from
//! measured speed whether the crew spreads a job at all or the leader runs it alone
//! (when the other cores are busy with other processes). Nothing is allocated per job.

mod idle;
mod pacer;

pub(crate) use idle::runnable_tasks;

pub use pacer::PaceReport;
pub(crate) use pacer::{Mode, Pacer};

use std::cell::{Cell, UnsafeCell};
use std::hint;
use std::panic::{self, AssertUnwindSafe};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How long a helper spins for the next job before it sleeps: longer than the gaps
/// between the meetings of one training step (tens of microseconds, a couple of hundred
/// with a serial optimizer step), far shorter than a scheduler's time slice.
pub(crate) const HELPER_SPIN: Duration = Duration::from_micros(200);

/// How long the leader spins for helpers to finish their pieces before it sleeps.
pub(crate) const LEADER_SPIN: Duration = Duration::from_micros(50);

/// The most pieces a job has.
pub(crate) const MAX_PIECES: usize = 64;

/// Spin-loop rounds between two looks at the clock.
const SPINS_PER_CLOCK: u32 = 64;

/// `door` bits: the generation above bit 32, a closed flag, and helpers entered.
const GENERATION_SHIFT: u32 = 32;
const CLOSED: u64 = 1 << 31;
const ENTERED: u64 = CLOSED - 1;

/// A job as the helpers see it: the leader's `&dyn Fn(usize)` with its lifetime erased.
type Job = NonNull<dyn Fn(usize) + Sync + 'static>;

/// What the leader and the helpers share.
struct Shared {
    /// The current job's generation, whether it is closed to late helpers, and how many
    /// helpers entered it.
    door: AtomicU64,
    /// The current job; written by the leader only while no helper is inside one.
    job: UnsafeCell<Option<Job>>,
    /// Pieces of the current job, and which have been claimed.
    pieces: AtomicUsize,
    claimed: [AtomicBool; MAX_PIECES],
    /// Pieces run by helpers in the current job.
    helper_pieces: AtomicUsize,
    /// Helpers that entered the current job and left it.
    finished: AtomicUsize,
    /// Set when a helper's piece panicked.
    panicked: AtomicBool,
    /// Set when the crew is dropped.
    stop: AtomicBool,
    /// Helpers that have started.
    ready: AtomicUsize,
    /// Sleeping helpers, and where they sleep.
    sleepers: AtomicUsize,
    bed: Mutex<()>,
    alarm: Condvar,
    /// Whether the leader sleeps waiting for helpers, and where.
    leader_asleep: AtomicBool,
    leader_bed: Mutex<()>,
    leader_alarm: Condvar,
}

// SAFETY: `job` is the only field that is not Sync by itself. The leader writes it only
// before opening a generation (SeqCst store of `door`) and after every helper that
// entered has left (`finished`, SeqCst); helpers read it only between entering (a
// successful compare-exchange on `door`, which the leader's store happens-before) and
// leaving. The job it points to is `Sync`.
unsafe impl Sync for Shared {}
// SAFETY: as above; the pointer is only dereferenced under that protocol.
unsafe impl Send for Shared {}

/// How one [`Crew::run`] went, for the [`Pacer`].
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub(crate) struct RunStats {
    /// Pieces in the job.
    pub(crate) pieces: usize,
    /// Pieces helpers ran.
    pub(crate) helper_pieces: usize,
    /// Time the leader waited for helpers after its own pieces.
    pub(crate) waited: Duration,
}

impl RunStats {
    /// Pieces that were meant for helpers but that the leader ran (the helpers were
    /// late).
    pub(crate) fn stolen(&self) -> usize {
        self.pieces.saturating_sub(1 + self.helper_pieces)
    }
}

/// Members of the crews alive in this process, leaders included.
static LIVE_MEMBERS: AtomicUsize = AtomicUsize::new(0);

/// The leader's handle on its helper threads (see the module docs).
pub(crate) struct Crew {
    shared: Arc<Shared>,
    helpers: Vec<JoinHandle<()>>,
    /// The last generation opened.
    generation: Cell<u64>,
    /// The process that started the helpers (a forked child has none of them).
    pid: u32,
    /// Whether other crews of this process held the cores when this one started.
    crowded: bool,
}

impl Crew {
    /// A crew of `size` members: the calling thread and `size - 1` new helper threads.
    /// If a helper thread cannot be started, the crew is smaller.
    pub(crate) fn new(size: usize) -> Self {
        let shared = Arc::new(Shared {
            door: AtomicU64::new(CLOSED),
            job: UnsafeCell::new(None),
            pieces: AtomicUsize::new(0),
            claimed: std::array::from_fn(|_| AtomicBool::new(true)),
            helper_pieces: AtomicUsize::new(0),
            finished: AtomicUsize::new(0),
            panicked: AtomicBool::new(false),
            stop: AtomicBool::new(false),
            ready: AtomicUsize::new(0),
            sleepers: AtomicUsize::new(0),
            bed: Mutex::new(()),
            alarm: Condvar::new(),
            leader_asleep: AtomicBool::new(false),
            leader_bed: Mutex::new(()),
            leader_alarm: Condvar::new(),
        });
        let helpers = (1..size.clamp(1, MAX_PIECES))
            .map_while(|member| {
                let shared = Arc::clone(&shared);
                std::thread::Builder::new()
                    .name(format!("nabla-crew-{member}"))
                    .spawn(move || helper(&shared, member))
                    .ok()
            })
            .collect::<Vec<_>>();
        // Each helper's start (what the thread library sets up for it) happens now, not
        // during the first batches: the training step allocates nothing after its first.
        while shared.ready.load(Ordering::Acquire) < helpers.len() {
            std::thread::yield_now();
        }
        let size = helpers.len() + 1;
        let before = LIVE_MEMBERS.fetch_add(size, Ordering::Relaxed);
        Self {
            shared,
            helpers,
            generation: Cell::new(0),
            pid: std::process::id(),
            crowded: before > 0 && before + size > crate::threads::available_cores(),
        }
    }

    /// Members, the leader included.
    pub(crate) fn size(&self) -> usize {
        self.helpers.len() + 1
    }

    /// Whether other crews of this process (runs in other threads) already held the
    /// cores this one would spread over when it started: it had better start alone.
    pub(crate) fn started_crowded(&self) -> bool {
        self.crowded
    }

    /// Runs `job(piece)` once for each piece `0..pieces` (at most [`MAX_PIECES`]) and
    /// returns when all have returned: spread over the crew when `mode` is
    /// [`Mode::Spread`], all on the calling thread otherwise (see the module docs). A
    /// panic in any piece is re-raised here, after every piece has finished.
    pub(crate) fn run(&self, mode: Mode, pieces: usize, job: &(dyn Fn(usize) + Sync)) -> RunStats {
        let pieces = pieces.min(MAX_PIECES);
        let mut stats = RunStats {
            pieces,
            ..RunStats::default()
        };
        let alone = mode == Mode::Solo
            || self.helpers.is_empty()
            || pieces <= 1
            || std::process::id() != self.pid;
        if alone {
            (0..pieces).for_each(job);
            return stats;
        }
        let shared = &*self.shared;
        // SAFETY: only the lifetime is erased. The pointer is cleared below, after every
        // helper that entered this job has left it, before `job`'s borrow ends (also when
        // `job` panics: the panic is caught and re-raised after the wait); helpers that
        // did not enter never read it.
        let erased: Job = unsafe {
            std::mem::transmute::<NonNull<dyn Fn(usize) + Sync + '_>, Job>(NonNull::from(job))
        };
        // SAFETY: no helper is inside a job now (the last `run` waited for all that
        // entered, and closed the door to the others).
        unsafe { *shared.job.get() = Some(erased) };
        for claim in &shared.claimed[..pieces] {
            claim.store(false, Ordering::Relaxed);
        }
        shared.pieces.store(pieces, Ordering::Relaxed);
        shared.helper_pieces.store(0, Ordering::Relaxed);
        shared.finished.store(0, Ordering::Relaxed);
        let generation = self.generation.get().wrapping_add(1) & (u64::MAX >> GENERATION_SHIFT);
        self.generation.set(generation);
        shared
            .door
            .store(generation << GENERATION_SHIFT, Ordering::SeqCst);
        if shared.sleepers.load(Ordering::SeqCst) > 0 {
            let _bed = shared.bed.lock().unwrap_or_else(PoisonError::into_inner);
            shared.alarm.notify_all();
        }
        let leader = panic::catch_unwind(AssertUnwindSafe(|| claim_and_run(shared, 0, job)));
        // Late helpers stay out from here on; those inside finish what they claimed.
        let entered = (shared.door.fetch_or(CLOSED, Ordering::SeqCst) & ENTERED) as usize;
        if shared.finished.load(Ordering::SeqCst) < entered {
            let started = Instant::now();
            wait_for_helpers(shared, entered);
            stats.waited = started.elapsed();
        }
        // SAFETY: every helper that entered has left; the door is closed to the others.
        unsafe { *shared.job.get() = None };
        stats.helper_pieces = shared.helper_pieces.load(Ordering::Relaxed);
        if let Err(payload) = leader {
            panic::resume_unwind(payload);
        }
        if shared.panicked.swap(false, Ordering::Relaxed) {
            panic!("a crew member panicked (its message is above)");
        }
        stats
    }
}

impl Drop for Crew {
    fn drop(&mut self) {
        LIVE_MEMBERS.fetch_sub(self.size(), Ordering::Relaxed);
        if std::process::id() != self.pid {
            // A forked child: the helper threads do not exist here.
            std::mem::forget(std::mem::take(&mut self.helpers));
            return;
        }
        let shared = &*self.shared;
        shared.stop.store(true, Ordering::SeqCst);
        {
            let _bed = shared.bed.lock().unwrap_or_else(PoisonError::into_inner);
            shared.alarm.notify_all();
        }
        for helper in self.helpers.drain(..) {
            // A helper catches its pieces' panics, so joining cannot fail in practice;
            // if it did, there would be nothing left to clean up.
            let _ = helper.join();
        }
    }
}

impl std::fmt::Debug for Crew {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Crew").field("size", &self.size()).finish()
    }
}

/// Claims pieces, `member`'s own first, and runs each claimed one; the number run.
fn claim_and_run(shared: &Shared, member: usize, job: &(dyn Fn(usize) + Sync)) -> usize {
    let pieces = shared.pieces.load(Ordering::Relaxed);
    let mut ran = 0;
    for offset in 0..pieces {
        let piece = (member + offset) % pieces;
        if !shared.claimed[piece].swap(true, Ordering::AcqRel) {
            job(piece);
            ran += 1;
        }
    }
    ran
}

/// The leader's wait until `entered` helpers have left the job: spinning, then asleep.
fn wait_for_helpers(shared: &Shared, entered: usize) {
    let done = || shared.finished.load(Ordering::SeqCst) >= entered;
    if spin_until(LEADER_SPIN, || {
        done() || shared.stop.load(Ordering::Relaxed)
    }) {
        return;
    }
    shared.leader_asleep.store(true, Ordering::SeqCst);
    let mut bed = shared
        .leader_bed
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    while !done() {
        bed = shared
            .leader_alarm
            .wait(bed)
            .unwrap_or_else(PoisonError::into_inner);
    }
    drop(bed);
    shared.leader_asleep.store(false, Ordering::SeqCst);
}

/// Spins until `ready()` or until `limit` has passed; whether it became ready.
fn spin_until(limit: Duration, ready: impl Fn() -> bool) -> bool {
    let started = Instant::now();
    loop {
        for _ in 0..SPINS_PER_CLOCK {
            if ready() {
                return true;
            }
            hint::spin_loop();
        }
        if started.elapsed() >= limit {
            return ready();
        }
    }
}

/// A helper's life: wait for each new job, enter it unless it is closed, run the pieces
/// it claims, leave.
fn helper(shared: &Shared, member: usize) {
    shared.ready.fetch_add(1, Ordering::Release);
    let mut seen = 0;
    while let Some(door) = next_generation(shared, seen) {
        let generation = door >> GENERATION_SHIFT;
        seen = generation;
        if !enter(shared, door) {
            continue;
        }
        // SAFETY: the leader published this job before opening the generation we
        // entered, and keeps it alive until we leave below.
        let job = unsafe { (*shared.job.get()).map(|job| job.as_ref()) };
        if let Some(job) = job {
            match panic::catch_unwind(AssertUnwindSafe(|| claim_and_run(shared, member, job))) {
                Ok(ran) => {
                    shared.helper_pieces.fetch_add(ran, Ordering::Relaxed);
                }
                Err(_) => shared.panicked.store(true, Ordering::Relaxed),
            }
        }
        shared.finished.fetch_add(1, Ordering::SeqCst);
        if shared.leader_asleep.load(Ordering::SeqCst) {
            let _bed = shared
                .leader_bed
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            shared.leader_alarm.notify_one();
        }
    }
}

/// Enters the job opened as `door` if it is still open and still the current one.
fn enter(shared: &Shared, mut door: u64) -> bool {
    let generation = door >> GENERATION_SHIFT;
    loop {
        if door >> GENERATION_SHIFT != generation || door & CLOSED != 0 {
            return false;
        }
        match shared
            .door
            .compare_exchange_weak(door, door + 1, Ordering::SeqCst, Ordering::SeqCst)
        {
            Ok(_) => return true,
            Err(actual) => door = actual,
        }
    }
}

/// Waits for a generation other than `seen` to be opened: spinning at first, then
/// asleep. The door as it was seen, or `None` when the crew stops.
fn next_generation(shared: &Shared, seen: u64) -> Option<u64> {
    let fresh = || {
        let door = shared.door.load(Ordering::SeqCst);
        (door >> GENERATION_SHIFT != seen && door & CLOSED == 0).then_some(door)
    };
    let stopping = || shared.stop.load(Ordering::Relaxed);
    if spin_until(HELPER_SPIN, || fresh().is_some() || stopping()) {
        return if stopping() { None } else { fresh() };
    }
    let mut bed = shared.bed.lock().unwrap_or_else(PoisonError::into_inner);
    shared.sleepers.fetch_add(1, Ordering::SeqCst);
    let woken = loop {
        if shared.stop.load(Ordering::SeqCst) {
            break None;
        }
        if let Some(door) = fresh() {
            break Some(door);
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
    fn every_piece_runs_once_in_either_mode() {
        for size in [1, 2, 3, 5] {
            let crew = Crew::new(size);
            assert_eq!(crew.size(), size);
            for pieces in [1, 2, size, 7] {
                let counts: Vec<AtomicUsize> = (0..pieces).map(|_| AtomicUsize::new(0)).collect();
                for round in 0..500 {
                    let mode = if round % 3 == 0 {
                        Mode::Solo
                    } else {
                        Mode::Spread
                    };
                    let stats = crew.run(mode, pieces, &|piece| {
                        counts[piece].fetch_add(1, Ordering::Relaxed);
                    });
                    assert_eq!(stats.pieces, pieces);
                    assert!(stats.helper_pieces <= pieces);
                    if round == 250 {
                        // Long enough for the helpers to fall asleep: they must wake.
                        std::thread::sleep(Duration::from_millis(5));
                    }
                }
                for (piece, count) in counts.iter().enumerate() {
                    assert_eq!(
                        count.load(Ordering::Relaxed),
                        500,
                        "piece {piece} of {pieces}, crew of {size}"
                    );
                }
            }
        }
    }

    #[test]
    fn helpers_take_their_own_pieces_when_on_time() {
        let crew = Crew::new(2);
        // A job long enough that a spinning helper always claims its piece first.
        let mut helped = 0;
        for _ in 0..50 {
            let stats = crew.run(Mode::Spread, 2, &|_| {
                std::thread::sleep(Duration::from_millis(1))
            });
            helped += stats.helper_pieces;
        }
        assert!(helped >= 40, "the helper ran {helped} of 50 pieces");
    }

    #[test]
    fn a_sleeping_helper_is_not_waited_for() {
        let crew = Crew::new(2);
        // The helper is asleep after HELPER_SPIN; a job that the leader can finish alone
        // at once must not wait for it to wake, and every piece still runs once.
        let counts = [AtomicUsize::new(0), AtomicUsize::new(0)];
        for _ in 0..100 {
            std::thread::sleep(HELPER_SPIN * 2);
            crew.run(Mode::Spread, 2, &|piece| {
                counts[piece].fetch_add(1, Ordering::Relaxed);
            });
        }
        assert_eq!(counts.map(|c| c.load(Ordering::Relaxed)), [100, 100]);
    }

    #[test]
    fn a_panicking_piece_is_reported_after_all_finish() {
        let crew = Crew::new(3);
        let finished = AtomicUsize::new(0);
        let outcome = panic::catch_unwind(AssertUnwindSafe(|| {
            crew.run(Mode::Spread, 3, &|piece| {
                if piece == 2 {
                    panic!("piece 2 fails");
                }
                std::thread::sleep(Duration::from_millis(5));
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
        crew.run(Mode::Spread, 3, &|_| {
            ran.fetch_add(1, Ordering::Relaxed);
        });
        assert_eq!(ran.load(Ordering::Relaxed), 3);
    }
}
