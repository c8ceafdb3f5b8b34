//! The sweep's `nabla train` processes die with it. Each is started with
//! `PR_SET_PDEATHSIG` = SIGKILL (Linux: the kernel kills the child when the thread that
//! started it ends, however it ends, `kill -9` included), and checks right after setting
//! it that its parent is still the sweep (had the sweep died between the fork and the
//! `prctl`, no signal would ever come). A child the sweep stops on purpose gets SIGTERM
//! once: it saves its checkpoint after the current batch and exits, to be resumed.
//!
//! Children are started from the sweep's main thread only: the death signal follows the
//! starting thread, not the process.

use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command};

/// A command for `binary` whose process is killed when this process dies.
pub fn dying_with_this_process(binary: &Path) -> Command {
    let mut command = Command::new(binary);
    let parent = libc::pid_t::try_from(std::process::id()).unwrap_or(libc::pid_t::MAX);
    // SAFETY: between fork and exec the closure calls only prctl, getppid and _exit,
    // which are async-signal-safe, and allocates nothing.
    unsafe {
        command.pre_exec(move || {
            if libc::prctl(
                libc::PR_SET_PDEATHSIG,
                libc::SIGKILL as libc::c_ulong,
                0,
                0,
                0,
            ) != 0
            {
                return Err(std::io::Error::last_os_error());
            }
            if libc::getppid() != parent {
                libc::_exit(137);
            }
            Ok(())
        });
    }
    command
}

/// Asks `child` to stop (SIGTERM): it saves its checkpoint after the current batch.
pub fn ask_to_stop(child: &Child) {
    if let Ok(pid) = libc::pid_t::try_from(child.id()) {
        // SAFETY: kill(2) on the pid of a child this process has not reaped yet.
        unsafe {
            libc::kill(pid, libc::SIGTERM);
        }
    }
}
