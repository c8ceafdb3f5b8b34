//! Python's signal handlers during a fit started on Python's main thread.
//!
//! The epoch loop runs with the GIL released on worker threads, and Python runs signal
//! handlers only on its main thread, between two bytecodes. So while such a fit runs,
//! the main thread waits for it and, every [`POLL`], runs the handlers of the signals
//! that arrived (`PyErr_CheckSignals`), as scikit-learn's Python loop runs them between
//! two statements. A handler that raises (Ctrl-C's `KeyboardInterrupt`, a timeout's
//! exception from `signal.alarm`) ends the fit at the end of the running epoch and its
//! exception is the fit's; one that returns lets the fit go on. A fit on another thread
//! is left alone: Python's signals never reach it in scikit-learn either.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::Duration;

use pyo3::prelude::*;

/// How often the main thread runs the handlers of pending signals during a fit.
const POLL: Duration = Duration::from_millis(20);

/// Runs `work` with the GIL released; with `watch` (the caller is Python's main thread),
/// on a thread of its own while this one runs pending signal handlers every [`POLL`].
/// The first exception a handler raises sets `stop` and is returned with `work`'s
/// result.
pub(crate) fn run_watching<T: Send>(
    py: Python<'_>,
    watch: bool,
    stop: &AtomicBool,
    work: impl FnOnce() -> T + Send,
) -> (T, Option<PyErr>) {
    if !watch {
        return (py.detach(work), None);
    }
    py.detach(|| {
        std::thread::scope(|scope| {
            let (sender, receiver) = mpsc::channel();
            let worker = scope.spawn(move || {
                // The receiver waits until this is sent; it cannot be gone.
                let _ = sender.send(work());
            });
            let mut raised = None;
            loop {
                match receiver.recv_timeout(POLL) {
                    Ok(result) => return (result, raised),
                    Err(RecvTimeoutError::Timeout) if raised.is_none() => {
                        if let Err(error) = Python::attach(|py| py.check_signals()) {
                            stop.store(true, Ordering::SeqCst);
                            raised = Some(error);
                        }
                    }
                    Err(RecvTimeoutError::Timeout) => {}
                    Err(RecvTimeoutError::Disconnected) => match worker.join() {
                        // The worker ended without sending: it panicked.
                        Err(panic) => std::panic::resume_unwind(panic),
                        Ok(()) => unreachable!("the fit's thread sends its result"),
                    },
                }
            }
        })
    })
}
