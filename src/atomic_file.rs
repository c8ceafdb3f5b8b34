//! Files that are either wholly old or wholly new: every file nabla writes in one go
//! (models, checkpoints, subsets, tables, plots) goes through [`write_atomically`].
//!
//! The contents go to `NAME.tmp` in the same directory, are flushed and fsynced, the
//! temporary file is renamed over `NAME`, and the directory is fsynced, so a crash or a
//! power loss leaves the old file or the new one under the name, never a torn one. The
//! temporary file is removed on every error path; one left by a killed process is simply
//! overwritten by the next write.

use std::ffi::OsString;
use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

/// Writes `path` through `write`, atomically (see the module documentation). Refuses a
/// `path` that exists and is not a regular file (a directory, a device) before writing.
pub fn write_atomically(
    path: &Path,
    write: impl FnOnce(&mut BufWriter<File>) -> io::Result<()>,
) -> io::Result<()> {
    refuse_non_regular(path)?;
    let temporary = TemporaryFile::new(temporary_path(path));
    let file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(&temporary.path)?;
    let mut writer = BufWriter::with_capacity(1 << 20, file);
    write(&mut writer)?;
    let file = writer
        .into_inner()
        .map_err(io::IntoInnerError::into_error)?;
    file.sync_all()?;
    drop(file);
    std::fs::rename(&temporary.path, path)?;
    temporary.disarm();
    sync_directory(path);
    Ok(())
}

/// Checks, before any work, that `path` can later be written by [`write_atomically`] or
/// created as a log: it is absent or a regular file, and its directory exists and takes a
/// new file (one is created and removed there).
pub fn check_writable(path: &Path) -> io::Result<()> {
    refuse_non_regular(path)?;
    let directory = parent_directory(path);
    if !directory.is_dir() {
        return Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!("the directory {} does not exist", directory.display()),
        ));
    }
    let probe = temporary_path(path);
    OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(&probe)?;
    std::fs::remove_file(&probe)
}

/// `NAME.tmp` beside `path`.
fn temporary_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().map_or_else(OsString::new, OsString::from);
    name.push(".tmp");
    path.with_file_name(name)
}

fn parent_directory(path: &Path) -> &Path {
    path.parent()
        .filter(|parent| !parent.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
}

fn refuse_non_regular(path: &Path) -> io::Result<()> {
    if path.file_name().is_none() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "the path names no file",
        ));
    }
    match std::fs::metadata(path) {
        Ok(metadata) if metadata.is_dir() => Err(io::Error::new(
            io::ErrorKind::IsADirectory,
            "is a directory",
        )),
        Ok(metadata) if !metadata.is_file() => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "is not a regular file",
        )),
        _ => Ok(()),
    }
}

/// Makes the rename durable. Failure is ignored: the file itself is already synced, and
/// some file systems do not support syncing a directory.
fn sync_directory(path: &Path) {
    if let Ok(directory) = File::open(parent_directory(path)) {
        let _ = directory.sync_all();
    }
}

/// A temporary file removed when dropped, unless disarmed after its rename.
struct TemporaryFile {
    path: PathBuf,
    armed: bool,
}

impl TemporaryFile {
    fn new(path: PathBuf) -> Self {
        Self { path, armed: true }
    }

    fn disarm(mut self) {
        self.armed = false;
    }
}

impl Drop for TemporaryFile {
    fn drop(&mut self) {
        if self.armed {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// Writes `bytes` to `path` atomically.
pub fn write_bytes_atomically(path: &Path, bytes: &[u8]) -> io::Result<()> {
    write_atomically(path, |writer| writer.write_all(bytes))
}
