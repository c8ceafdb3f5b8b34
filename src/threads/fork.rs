//! One lock for nabla's process-wide thread registries (OpenBLAS leases, rayon pools)
//! that a `fork` never copies held: a `pthread_atfork` handler takes it before the fork
//! and releases it in both processes after, so that a child forked while another thread
//! was inside a registry does not wait on it forever.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Once;

static HELD: AtomicBool = AtomicBool::new(false);

fn acquire() {
    while HELD
        .compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed)
        .is_err()
    {
        std::thread::yield_now();
    }
}

fn release() {
    HELD.store(false, Ordering::Release);
}

extern "C" fn before_fork() {
    acquire();
}

extern "C" fn after_fork() {
    release();
}

/// Runs `f` holding the registries' lock. The sections are short (a few counters, or
/// starting a pool's threads once).
pub(crate) fn locked<R>(f: impl FnOnce() -> R) -> R {
    static HANDLERS: Once = Once::new();
    HANDLERS.call_once(|| {
        // SAFETY: registers plain functions that take and release the lock.
        unsafe {
            libc::pthread_atfork(Some(before_fork), Some(after_fork), Some(after_fork));
        }
    });
    acquire();
    struct Release;
    impl Drop for Release {
        fn drop(&mut self) {
            release();
        }
    }
    let _release = Release;
    f()
}
