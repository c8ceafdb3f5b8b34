//! Whether the crew spreads its jobs over the cores or the leader runs them alone.
//!
//! Spreading a training step over the cores wins on a quiet machine (1.5-2x at batch
//! 50 on 2 cores). Next to other work, with more runnable threads than cores, it loses
//! badly: every meeting waits for a member that the scheduler has put aside (two default
//! trainings started together took 4.6x as long as one after the other). The pieces
//! and their results are the same either way, so the choice can follow the machine
//! while a run goes on, without changing a bit of its numbers.
//!
//! The pacer measures the step's speed (rows per second of batch time) over windows of
//! [`WINDOW`] (the first, warming up, is not used) and keeps one mode settled. When
//! the settled mode shows signs that the other might be faster, it tries the other for
//! one window (a probe) and switches only if the probe was [`SWITCH_MARGIN`] faster
//! than the mean of the settled windows before and after it:
//!
//! - spreading, the signs are late helpers: meetings where the leader ran a helper's
//!   piece or waited for one (the helper had lost its core);
//! - alone, the signs are idle CPUs among those this process may use (`/proc/stat`):
//!   a core given up has become free. Where `/proc/stat` cannot be read, every window
//!   counts as a sign.
//!
//! A probe that loses doubles the signs needed before the next (up to
//! [`MAX_PATIENCE`] windows), so that a machine where the signs mislead pays for a probe
//! rarely; a switch resets it.

use std::time::{Duration, Instant};

use super::idle::IdleCpus;
use super::RunStats;

/// How a crew runs a job.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Mode {
    /// Each member claims pieces.
    Spread,
    /// The leader runs every piece.
    Solo,
}

impl Mode {
    fn other(self) -> Self {
        match self {
            Self::Spread => Self::Solo,
            Self::Solo => Self::Spread,
        }
    }
}

/// Batch time in one measuring window.
pub(crate) const WINDOW: Duration = Duration::from_millis(8);

/// Batches in one measuring window, at least.
const MIN_BATCHES: usize = 4;

/// How much faster a probe must be to be kept.
pub(crate) const SWITCH_MARGIN: f64 = 1.10;

/// The most windows of signs needed before a probe.
pub(crate) const MAX_PATIENCE: u32 = 64;

/// A meeting is late when the leader ran a helper's piece or waited this long.
const LATE_WAIT: Duration = Duration::from_micros(20);

/// Late meetings, as a share of a window's meetings, that are a sign of contention.
const LATE_SHARE: f64 = 0.1;

/// Time the leader waited, as a share of a window's batch time, that is a sign too.
const WAIT_SHARE: f64 = 0.05;

/// Seconds between two looks at the CPUs' idle time: its counters tick every 10 ms, so
/// a look spans at least 3 ticks (an idle core reads as 0.67-1.33, a busy one as
/// 0-0.33, either way on its side of [`FREE_CORE`]).
const IDLE_SAMPLE_SECONDS: f64 = 0.03;

/// Idle cores, on average, that are a sign that a core is free.
const FREE_CORE: f64 = 0.6;

/// What one window measured.
#[derive(Clone, Copy, Debug, Default)]
struct Window {
    busy: Duration,
    rows: usize,
    batches: usize,
    meetings: usize,
    late: usize,
    waited: Duration,
}

/// Counters of the per-core step's pacing decisions (see [`crate::train::Trainer::pace`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PaceReport {
    /// Probes tried.
    pub probes: u32,
    /// Probes kept (switches between spreading and running alone).
    pub switches: u32,
    /// Batches the calling thread ran alone.
    pub solo_batches: u64,
    /// Batches spread over the crew.
    pub spread_batches: u64,
}

/// The mode a crew runs in, decided from measured speed (see the module docs).
#[derive(Debug)]
pub(crate) struct Pacer {
    settled: Mode,
    probing: bool,
    /// Windows with signs needed before the next probe.
    patience: u32,
    /// Windows with signs since the last probe.
    signs: u32,
    /// Rows per second of the last settled window.
    settled_rate: Option<f64>,
    /// Rows per second of the last probe, until the settled window after it.
    probe_rate: Option<f64>,
    batch_started: Option<Instant>,
    window: Window,
    idle: IdleCpus,
    idle_readable: bool,
    /// Whether the first window (warming up: buffers growing, helpers waking) is over.
    warm: bool,
    report: PaceReport,
}

impl Pacer {
    /// A pacer that starts in mode `start`.
    pub(crate) fn new(start: Mode) -> Self {
        let idle = IdleCpus::new();
        Self {
            settled: start,
            probing: false,
            patience: 1,
            signs: 0,
            settled_rate: None,
            probe_rate: None,
            batch_started: None,
            window: Window::default(),
            idle_readable: idle.readable(),
            idle,
            warm: false,
            report: PaceReport::default(),
        }
    }

    /// The mode for the coming jobs.
    pub(crate) fn mode(&self) -> Mode {
        if self.probing {
            self.settled.other()
        } else {
            self.settled
        }
    }

    /// Counters of the decisions so far.
    pub(crate) fn report(&self) -> PaceReport {
        self.report
    }

    /// A batch begins.
    pub(crate) fn batch_started(&mut self) {
        self.batch_started = Some(Instant::now());
    }

    /// A job of the batch ran as `stats` says.
    pub(crate) fn met(&mut self, stats: RunStats) {
        if stats.pieces < 2 || self.mode() != Mode::Spread {
            return;
        }
        self.window.meetings += 1;
        self.window.waited += stats.waited;
        if stats.stolen() > 0 || stats.waited >= LATE_WAIT {
            self.window.late += 1;
        }
    }

    /// The batch begun last, of `rows` rows, is done.
    pub(crate) fn batch_finished(&mut self, rows: usize) {
        let Some(started) = self.batch_started.take() else {
            return;
        };
        match self.mode() {
            Mode::Solo => self.report.solo_batches += 1,
            Mode::Spread => self.report.spread_batches += 1,
        }
        let window = &mut self.window;
        window.busy += started.elapsed();
        window.rows += rows;
        window.batches += 1;
        if window.busy >= WINDOW && window.batches >= MIN_BATCHES {
            let window = std::mem::take(&mut self.window);
            self.close(window);
        }
    }

    /// Decides from a finished window (see the module docs).
    fn close(&mut self, window: Window) {
        if !self.warm {
            // The first window measures the start (first touches of every buffer,
            // helpers waking): neither a rate to compare with nor a sign.
            self.warm = true;
            return;
        }
        let rate = window.rows as f64 / window.busy.as_secs_f64().max(1e-9);
        if self.probing {
            // Judged after the next settled window, against the settled windows on
            // both sides (so that a drift of the machine's speed is not taken for a
            // difference between the modes).
            self.probing = false;
            self.probe_rate = Some(rate);
            return;
        }
        let before = self.settled_rate.replace(rate);
        if let Some(probe) = self.probe_rate.take() {
            self.signs = 0;
            let settled = before.map_or(rate, |before| (before + rate) / 2.0);
            if probe > settled * SWITCH_MARGIN {
                self.settled = self.settled.other();
                self.settled_rate = Some(probe);
                self.patience = 1;
                self.report.switches += 1;
                if self.settled == Mode::Solo {
                    // Idle time counts from now: before, this process used the cores.
                    self.idle.restart();
                }
            } else {
                self.patience = (self.patience * 2).min(MAX_PATIENCE);
            }
            return;
        }
        let sign = match self.settled {
            Mode::Spread => {
                window.late as f64 >= LATE_SHARE * window.meetings.max(1) as f64
                    || window.waited.as_secs_f64() >= WAIT_SHARE * window.busy.as_secs_f64()
            }
            Mode::Solo if self.idle_readable => self
                .idle
                .idle_cores(IDLE_SAMPLE_SECONDS)
                .is_some_and(|idle| idle >= FREE_CORE),
            Mode::Solo => true,
        };
        if sign {
            self.signs += 1;
            if self.signs >= self.patience {
                self.probing = true;
                self.report.probes += 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn late_meeting() -> RunStats {
        RunStats {
            pieces: 2,
            helper_pieces: 0,
            waited: Duration::ZERO,
        }
    }

    /// Batches of 1 ms at `rows_per_ms`, each with `meeting`, until a window closes.
    fn window(pacer: &mut Pacer, rows_per_ms: f64, meeting: RunStats) {
        loop {
            // Fake the clock: each batch "took" 1 ms.
            pacer.batch_started = Some(Instant::now() - Duration::from_millis(1));
            pacer.met(meeting);
            pacer.batch_finished(rows_per_ms.round() as usize);
            if pacer.window.batches == 0 {
                return;
            }
        }
    }

    #[test]
    fn contention_moves_to_solo_and_a_losing_probe_backs_off() {
        let mut pacer = Pacer::new(Mode::Spread);
        pacer.idle_readable = false;
        // The first window only warms up, whatever it shows.
        window(&mut pacer, 100.0, late_meeting());
        assert_eq!((pacer.mode(), pacer.report().probes), (Mode::Spread, 0));
        // Late helpers: a sign; the next window probes running alone.
        window(&mut pacer, 100.0, late_meeting());
        assert_eq!((pacer.mode(), pacer.probing), (Mode::Solo, true));
        // Alone is 3x faster; judged after one more settled window.
        window(&mut pacer, 300.0, late_meeting());
        assert_eq!(pacer.mode(), Mode::Spread);
        window(&mut pacer, 100.0, late_meeting());
        assert_eq!((pacer.mode(), pacer.probing), (Mode::Solo, false));
        assert_eq!(pacer.report().switches, 1);
        // Without /proc/stat every solo window is a sign: probe spreading, which is
        // slower: it stays solo, with twice the patience.
        window(&mut pacer, 300.0, RunStats::default());
        assert_eq!(pacer.mode(), Mode::Spread);
        window(&mut pacer, 100.0, late_meeting());
        assert_eq!(pacer.mode(), Mode::Solo);
        window(&mut pacer, 300.0, RunStats::default());
        assert_eq!((pacer.mode(), pacer.patience), (Mode::Solo, 2));
        window(&mut pacer, 300.0, RunStats::default());
        assert!(!pacer.probing, "one sign is not enough now");
        window(&mut pacer, 300.0, RunStats::default());
        assert!(pacer.probing);
    }

    #[test]
    fn on_time_helpers_never_probe() {
        let mut pacer = Pacer::new(Mode::Spread);
        let on_time = RunStats {
            pieces: 2,
            helper_pieces: 1,
            waited: Duration::from_micros(2),
        };
        for _ in 0..20 {
            window(&mut pacer, 100.0, on_time);
            assert_eq!(pacer.mode(), Mode::Spread);
        }
        assert_eq!(pacer.report().probes, 0);
    }

    #[test]
    fn a_probe_within_the_margin_is_not_kept() {
        let mut pacer = Pacer::new(Mode::Spread);
        pacer.warm = true;
        window(&mut pacer, 100.0, late_meeting());
        window(&mut pacer, 105.0, late_meeting());
        window(&mut pacer, 100.0, late_meeting());
        assert_eq!(pacer.report().switches, 0);
        // A probe faster than the window before but not than the mean around it: a
        // drift, not a difference.
        let mut pacer = Pacer::new(Mode::Spread);
        pacer.warm = true;
        pacer.patience = 1;
        window(&mut pacer, 80.0, late_meeting());
        window(&mut pacer, 100.0, late_meeting());
        window(&mut pacer, 120.0, late_meeting());
        assert_eq!(pacer.report().switches, 0);
    }
}
