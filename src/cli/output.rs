//! Lines for the user on stdout. A closed stdout (`nabla ... | head -2`) is a normal end
//! of output, as in ripgrep: from then on nothing more is written, no message is printed,
//! and the command ends with status 0 (a training run still finishes, logs and saves).

use std::io::{self, Write};
use std::sync::atomic::{AtomicBool, Ordering};

use super::CliError;

static CLOSED: AtomicBool = AtomicBool::new(false);

/// Writes `text` to stdout and flushes. `Ok(false)` once stdout has been closed by its
/// reader; any other write error (a full disk) is an error.
pub fn write_stdout(text: &str) -> Result<bool, CliError> {
    if CLOSED.load(Ordering::Relaxed) {
        return Ok(false);
    }
    let mut stdout = io::stdout().lock();
    match stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
    {
        Ok(()) => Ok(true),
        Err(error) if error.kind() == io::ErrorKind::BrokenPipe => {
            CLOSED.store(true, Ordering::Relaxed);
            Ok(false)
        }
        Err(error) => Err(CliError::Stdout(error)),
    }
}

/// `line` on stderr (warnings, errors). A closed stderr is ignored: there is no one left
/// to tell.
pub fn tell(line: &str) {
    let _ = writeln!(io::stderr(), "{line}");
}

/// [`write_stdout`] of `line` and a newline.
pub fn say(line: &str) -> Result<bool, CliError> {
    write_stdout(&format!("{line}\n"))
}
