//! One owner at a time: an exclusive lock on a lock file (a run folder's `.lock`, a
//! sweep's, a saved model's), taken without waiting and released when the holder drops
//! it or dies.
//!
//! The lock is `flock(2)` on the file, so the kernel releases it when the process ends,
//! even by `kill -9`: a lock file left behind by a dead process is free to take. The file
//! holds the holder's pid, for the message a second writer gets. The holder removes the
//! file when it lets go; a process that opened the old file just before that finds, once
//! it has the lock, that its file is no longer the one under the name, and starts again.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use thiserror::Error;

/// Why a lock could not be taken.
#[derive(Debug, Error)]
pub enum LockError {
    /// Another process holds it.
    #[error("{path} is in use by another nabla process{}", holder.map_or_else(String::new, |pid| format!(" (pid {pid})")))]
    Held {
        /// The lock file.
        path: PathBuf,
        /// The holder's pid, when its file says.
        holder: Option<u32>,
    },
    /// The lock file could not be created or locked.
    #[error("{path}: {source}")]
    Io {
        /// The lock file.
        path: PathBuf,
        /// The operating system's reason.
        source: std::io::Error,
    },
}

/// An exclusive lock held on a file; dropping it removes the file and releases the lock.
#[derive(Debug)]
pub struct FileLock {
    path: PathBuf,
    file: File,
}

impl FileLock {
    /// Takes the lock at `path` (creating the file, not following a link there) without
    /// waiting, and writes this process's pid into it.
    pub fn acquire(path: &Path) -> Result<Self, LockError> {
        let io = |source| LockError::Io {
            path: path.to_path_buf(),
            source,
        };
        loop {
            let mut file = OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
                .mode(0o644)
                .open(path)
                .map_err(io)?;
            // SAFETY: flock on a file descriptor this function owns.
            if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
                let error = std::io::Error::last_os_error();
                if error.raw_os_error() == Some(libc::EWOULDBLOCK) {
                    let mut text = String::new();
                    let _ = file.read_to_string(&mut text);
                    return Err(LockError::Held {
                        path: path.to_path_buf(),
                        holder: text.trim().parse().ok(),
                    });
                }
                return Err(io(error));
            }
            // The holder before us may have removed the file between our open and our
            // lock: then the lock is on a file no longer under the name. Try again.
            let ours = file.metadata().map_err(io)?;
            match std::fs::symlink_metadata(path) {
                Ok(current) if current.ino() == ours.ino() && current.dev() == ours.dev() => {}
                _ => continue,
            }
            file.set_len(0).map_err(io)?;
            file.seek(SeekFrom::Start(0)).map_err(io)?;
            writeln!(file, "{}", std::process::id()).map_err(io)?;
            return Ok(Self {
                path: path.to_path_buf(),
                file,
            });
        }
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for FileLock {
    fn drop(&mut self) {
        // Removed while still locked, so that no one takes a lock on a file that is
        // about to disappear (see the module documentation); closing the file unlocks.
        let _ = std::fs::remove_file(&self.path);
        let _ = self.file.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_holder_is_refused_and_told_the_pid_until_the_first_lets_go() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(".lock");
        let first = FileLock::acquire(&path).unwrap();
        match FileLock::acquire(&path) {
            Err(LockError::Held { holder, .. }) => assert_eq!(holder, Some(std::process::id())),
            other => panic!("expected Held, got {other:?}"),
        }
        drop(first);
        assert!(!path.exists(), "the lock file is removed on release");
        let again = FileLock::acquire(&path).unwrap();
        drop(again);
    }

    #[test]
    fn a_stale_lock_file_of_a_dead_process_is_free() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(".lock");
        std::fs::write(&path, "999999999\n").unwrap();
        let lock = FileLock::acquire(&path).unwrap();
        assert_eq!(
            std::fs::read_to_string(lock.path()).unwrap().trim(),
            std::process::id().to_string()
        );
    }

    #[test]
    fn a_link_in_place_of_the_lock_file_is_not_followed() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("victim");
        std::fs::write(&target, "keep").unwrap();
        let path = dir.path().join(".lock");
        std::os::unix::fs::symlink(&target, &path).unwrap();
        assert!(matches!(
            FileLock::acquire(&path),
            Err(LockError::Io { .. })
        ));
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "keep");
    }
}
