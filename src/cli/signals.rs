//! Ctrl-C and SIGTERM during training: the first signal asks the run to stop after the
//! current batch (it then logs, saves and exits with status 130); a second one, at least
//! [`SECOND_SIGNAL_AFTER`] later, ends the process at once, with status 130.
//!
//! Signals closer together than that are one request: a terminal's Ctrl-C reaches every
//! process of the foreground group, and a wrapper such as `timeout` or a sweep forwards
//! the same signal again, so one keypress often arrives twice within microseconds.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use signal_hook::consts::{SIGINT, SIGTERM};

use super::CliError;

/// Exit status after an interruption (128 + SIGINT), as shells report it.
pub const INTERRUPTED_STATUS: u8 = 130;

/// How long after the first signal a second one ends the process at once.
pub const SECOND_SIGNAL_AFTER: Duration = Duration::from_millis(500);

/// Set once SIGINT or SIGTERM arrived.
#[derive(Clone, Debug)]
pub struct Interrupt(Arc<AtomicBool>);

/// The monotonic clock, in nanoseconds (async-signal-safe: `clock_gettime`).
fn now_nanos() -> u64 {
    let mut time = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes the timespec it is given; it is async-signal-safe.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut time) };
    (time.tv_sec as u64)
        .saturating_mul(1_000_000_000)
        .saturating_add(time.tv_nsec as u64)
}

impl Interrupt {
    /// Installs the handlers (a second signal, [`SECOND_SIGNAL_AFTER`] or more after the
    /// first, exits at once with status 130).
    pub fn install() -> Result<Self, CliError> {
        let flag = Arc::new(AtomicBool::new(false));
        // 0 until the first signal, then its time (never 0 after boot).
        let first = Arc::new(AtomicU64::new(0));
        let grace = SECOND_SIGNAL_AFTER.as_nanos() as u64;
        for signal in [SIGINT, SIGTERM] {
            let (flag, first) = (Arc::clone(&flag), Arc::clone(&first));
            let handler = move || {
                let now = now_nanos().max(1);
                match first.compare_exchange(0, now, Ordering::SeqCst, Ordering::SeqCst) {
                    Ok(_) => flag.store(true, Ordering::SeqCst),
                    Err(earlier) if now.saturating_sub(earlier) >= grace => {
                        // SAFETY: _exit is async-signal-safe.
                        unsafe { libc::_exit(i32::from(INTERRUPTED_STATUS)) }
                    }
                    Err(_) => {}
                }
            };
            // SAFETY: the handler only reads the clock, uses atomics and calls _exit, all
            // async-signal-safe; it allocates nothing and takes no lock.
            unsafe { signal_hook::low_level::register(signal, handler) }
                .map_err(CliError::Signals)?;
        }
        Ok(Self(flag))
    }

    /// Whether a signal arrived.
    pub fn requested(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}
