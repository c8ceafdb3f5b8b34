//! Ctrl-C during a fit on Python's main thread.
//!
//! The epoch loop runs with the GIL released on a worker thread, where Python cannot run
//! its signal handlers. For the length of one fit, [`Watch`] installs a SIGINT handler
//! that raises the fit's flag (the loop stops at the end of the epoch) and then calls
//! the handler it replaced (Python's own, which makes the fit's caller see the
//! `KeyboardInterrupt` afterwards). When the fit ends the replaced handler is put back,
//! unless the program installed another one meanwhile. So Ctrl-C keeps working after
//! `asyncio.run` or a `signal.signal` between fits, and a fit on another thread (which
//! Python's Ctrl-C never reaches in scikit-learn either) is not watched at all.

use std::mem::MaybeUninit;
use std::os::raw::{c_int, c_void};
use std::ptr;
use std::sync::atomic::{AtomicBool, AtomicPtr, Ordering};
use std::sync::Arc;

/// The running fit's flag (null when no fit is watched).
static FLAG: AtomicPtr<AtomicBool> = AtomicPtr::new(ptr::null_mut());
/// The action our handler replaced; written before the handler is installed.
static PREVIOUS: AtomicPtr<libc::sigaction> = AtomicPtr::new(ptr::null_mut());

/// The handler: raise the flag, then chain to the replaced action.
extern "C" fn on_interrupt(signal: c_int, info: *mut libc::siginfo_t, context: *mut c_void) {
    let flag = FLAG.load(Ordering::SeqCst);
    if !flag.is_null() {
        // SAFETY: the flag outlives the watch that published it (see `Watch::drop`).
        unsafe { (*flag).store(true, Ordering::SeqCst) };
    }
    let previous = PREVIOUS.load(Ordering::SeqCst);
    if previous.is_null() {
        return;
    }
    // SAFETY: `previous` is a leaked, never freed action (see `Watch::start`); calling
    // the replaced handler with the arguments the kernel gave us is what chaining means.
    unsafe {
        let action = &*previous;
        let handler = action.sa_sigaction;
        if handler == libc::SIG_DFL || handler == libc::SIG_IGN {
            return;
        }
        if action.sa_flags & libc::SA_SIGINFO != 0 {
            let handler: extern "C" fn(c_int, *mut libc::siginfo_t, *mut c_void) =
                std::mem::transmute(handler);
            handler(signal, info, context);
        } else {
            let handler: extern "C" fn(c_int) = std::mem::transmute(handler);
            handler(signal);
        }
    }
}

/// SIGINT watched for one fit (see the module docs).
pub(crate) struct Watch {
    /// The action replaced, to put back.
    previous: Option<libc::sigaction>,
    _flag: Arc<AtomicBool>,
}

impl Watch {
    /// Watches SIGINT, raising `flag`, until dropped. Does nothing when SIGINT is
    /// ignored or left to its default (the process's owner chose that).
    pub(crate) fn start(flag: Arc<AtomicBool>) -> Self {
        // SAFETY: sigaction reads into a struct we own; a null new action only queries.
        let current = unsafe {
            let mut current = MaybeUninit::<libc::sigaction>::zeroed();
            if libc::sigaction(libc::SIGINT, ptr::null(), current.as_mut_ptr()) != 0 {
                return Self::idle(flag);
            }
            current.assume_init()
        };
        if current.sa_sigaction == libc::SIG_DFL || current.sa_sigaction == libc::SIG_IGN {
            return Self::idle(flag);
        }
        // The replaced action, for the handler to chain to: leaked (a few dozen bytes
        // per watched fit), since a signal may still be running the old one.
        PREVIOUS.store(Box::into_raw(Box::new(current)), Ordering::SeqCst);
        FLAG.store(Arc::as_ptr(&flag).cast_mut(), Ordering::SeqCst);
        // SAFETY: a zeroed sigaction with our handler, the replaced action's mask and
        // flags (SA_RESTART and SA_ONSTACK as Python set them) plus SA_SIGINFO.
        let installed = unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = on_interrupt as *const () as usize;
            action.sa_mask = current.sa_mask;
            action.sa_flags = (current.sa_flags & !libc::SA_RESETHAND) | libc::SA_SIGINFO;
            libc::sigaction(libc::SIGINT, &action, ptr::null_mut()) == 0
        };
        if !installed {
            FLAG.store(ptr::null_mut(), Ordering::SeqCst);
            return Self::idle(flag);
        }
        Self {
            previous: Some(current),
            _flag: flag,
        }
    }

    fn idle(flag: Arc<AtomicBool>) -> Self {
        Self {
            previous: None,
            _flag: flag,
        }
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        let Some(previous) = self.previous else {
            return;
        };
        // SAFETY: as in `start`; the previous action is put back only if ours is still
        // installed (a handler the program set during the fit stays).
        unsafe {
            let mut current = MaybeUninit::<libc::sigaction>::zeroed();
            if libc::sigaction(libc::SIGINT, ptr::null(), current.as_mut_ptr()) == 0
                && current.assume_init().sa_sigaction == on_interrupt as *const () as usize
            {
                libc::sigaction(libc::SIGINT, &previous, ptr::null_mut());
            }
        }
        // After this no handler reaches the flag, which the fields then free.
        FLAG.store(ptr::null_mut(), Ordering::SeqCst);
    }
}
