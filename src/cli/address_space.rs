//! A tight address-space limit (`ulimit -v`) and OpenBLAS's own threads.
//!
//! When OpenBLAS loads (before `main`), it starts one thread per core but one, and each
//! takes a 128 MiB buffer at once; under a limit too tight for them a thread retries
//! forever, and the process spins and then hangs at exit, joining it. The only cure is
//! to have fewer of them from the start: when the limit leaves room for fewer threads
//! than OpenBLAS started and `OPENBLAS_NUM_THREADS` is not set, the program runs itself
//! again (`exec`, same arguments) with `OPENBLAS_NUM_THREADS` set to what fits.

use std::os::unix::process::CommandExt;
use std::process::Command;

use nabla::limits::address_space_threads;
use nabla::threads::blas_threads;

/// The variable that marks a run that was started again (no second attempt).
const STARTED_AGAIN: &str = "OPENBLAS_NUM_THREADS";

/// Starts the program again with fewer OpenBLAS threads if an address-space limit
/// leaves no room for those that started (see the module docs); returns only when it
/// does not (or cannot) start again.
pub fn fit_openblas_to_address_space() {
    if std::env::var_os(STARTED_AGAIN).is_some() {
        return;
    }
    let Some(room) = address_space_threads() else {
        return;
    };
    // OpenBLAS's count at load is the number of threads it started (its own and the
    // caller's).
    if room >= blas_threads() {
        return;
    }
    let Ok(program) = std::env::current_exe() else {
        return;
    };
    // `exec` returns only on failure; then the run goes on as it is.
    let _ = Command::new(program)
        .args(std::env::args_os().skip(1))
        .env(STARTED_AGAIN, room.to_string())
        .exec();
}
