//! Ctrl-C and SIGTERM during training: the first signal asks the run to stop after the
//! current batch (it then logs, saves and exits with status 130); a second one ends the
//! process at once, with status 130.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use signal_hook::consts::{SIGINT, SIGTERM};

use super::CliError;

/// Exit status after an interruption (128 + SIGINT), as shells report it.
pub const INTERRUPTED_STATUS: u8 = 130;

/// Set once SIGINT or SIGTERM arrived.
#[derive(Clone, Debug)]
pub struct Interrupt(Arc<AtomicBool>);

impl Interrupt {
    /// Installs the handlers (a second signal exits at once, with status 130).
    pub fn install() -> Result<Self, CliError> {
        let flag = Arc::new(AtomicBool::new(false));
        for signal in [SIGINT, SIGTERM] {
            // Registered first, so that it sees the flag as the earlier signal left it.
            signal_hook::flag::register_conditional_shutdown(
                signal,
                INTERRUPTED_STATUS.into(),
                Arc::clone(&flag),
            )
            .and_then(|_| signal_hook::flag::register(signal, Arc::clone(&flag)))
            .map_err(CliError::Signals)?;
        }
        Ok(Self(flag))
    }

    /// Whether a signal arrived.
    pub fn requested(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}
