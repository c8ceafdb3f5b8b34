//! Files that are either wholly old or wholly new: every file nabla writes in one go
//! (models, checkpoints, subsets, tables, plots, logs rewritten on resume) goes through
//! [`write_atomically`], and every file it appends to is opened by [`open_append`].
//!
//! The contents go to a temporary file of a name no one else uses (`NAME.HOST.PID-N.tmp`
//! in the same directory, created with `O_EXCL` and without following a link there), which is
//! flushed, fsynced, given the old file's permissions, and renamed over `NAME`; then the
//! directory is fsynced. A crash or a power loss leaves the old file or the new one under
//! the name, never a torn one, and two processes writing one name at once each rename a
//! whole file of their own. The temporary file is removed on every error path; one left by
//! a killed process is removed by the next write to the same name.
//!
//! A write is refused when its target is not a regular file (a directory, a device, a
//! pipe) or is one of this process's inputs, registered with [`protect_input`] (the
//! training data, the log being summarised).

use std::ffi::OsString;
use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

/// The inputs of this process, as (device, inode) and the path given.
static INPUTS: Mutex<Vec<(u64, u64, PathBuf)>> = Mutex::new(Vec::new());

/// Temporary files created by this process so far (for unique names).
static TEMPORARIES: AtomicU64 = AtomicU64::new(0);

/// Registers `path` as an input of this process: no write of this module will replace it
/// or append to it, by this name or another. A path that does not exist is ignored.
pub fn protect_input(path: &Path) {
    if let Ok(metadata) = std::fs::metadata(path) {
        let mut inputs = INPUTS
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        inputs.push((metadata.dev(), metadata.ino(), path.to_path_buf()));
    }
}

/// Writes `path` through `write`, atomically (see the module documentation). Refuses a
/// `path` that exists and is not a regular file, or that is an input, before writing.
pub fn write_atomically(
    path: &Path,
    write: impl FnOnce(&mut BufWriter<File>) -> io::Result<()>,
) -> io::Result<()> {
    let existing = refuse_unwritable(path)?;
    remove_stale_temporaries(path);
    let (temporary, file) = TemporaryFile::create(path)?;
    if let Some(mode) = existing.map(|metadata| metadata.permissions().mode() & 0o7777) {
        file.set_permissions(std::fs::Permissions::from_mode(mode))?;
    }
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

/// Writes `bytes` to `path` atomically.
pub fn write_bytes_atomically(path: &Path, bytes: &[u8]) -> io::Result<()> {
    write_atomically(path, |writer| writer.write_all(bytes))
}

/// Opens `path` to append to, without following a link there; refused, as
/// [`write_atomically`] refuses, for a non-regular file or an input.
pub fn open_append(path: &Path) -> io::Result<File> {
    refuse_unwritable(path)?;
    OpenOptions::new()
        .append(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
}

/// Checks, before any work, that `path` can later be written by [`write_atomically`] or
/// created as a log: it is absent or a regular file that is not an input, and its
/// directory exists and takes a new file (a temporary one is created and removed there).
pub fn check_writable(path: &Path) -> io::Result<()> {
    refuse_unwritable(path)?;
    let directory = parent_directory(path);
    if !directory.is_dir() {
        return Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!("the directory {} does not exist", directory.display()),
        ));
    }
    let (temporary, file) = TemporaryFile::create(path)?;
    drop(file);
    drop(temporary);
    Ok(())
}

/// Refuses a path naming no file, an existing non-regular file (a link is followed to
/// judge), and an input; returns the existing file's metadata.
fn refuse_unwritable(path: &Path) -> io::Result<Option<std::fs::Metadata>> {
    // `m.safetensors/` names a directory to the system, whatever its last component.
    let ends_with_separator = path.as_os_str().as_encoded_bytes().ends_with(b"/");
    if path.file_name().is_none() || ends_with_separator {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "the path names a directory, not a file",
        ));
    }
    let metadata = match std::fs::metadata(path) {
        Ok(metadata) => metadata,
        Err(_) => return Ok(None),
    };
    if metadata.is_dir() {
        return Err(io::Error::new(
            io::ErrorKind::IsADirectory,
            "is a directory",
        ));
    }
    if !metadata.is_file() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "is not a regular file",
        ));
    }
    // A file its owner made read-only is kept, as a shell's `>` or `cp` would keep it
    // (the rename would replace it regardless of its mode).
    if let Ok(name) = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()) {
        // SAFETY: access(2) on a NUL-terminated path.
        if unsafe { libc::access(name.as_ptr(), libc::W_OK) } != 0 {
            return Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                "is write-protected",
            ));
        }
    }
    let inputs = INPUTS
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some((_, _, input)) = inputs
        .iter()
        .find(|(dev, ino, _)| *dev == metadata.dev() && *ino == metadata.ino())
    {
        return Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            format!(
                "is an input of this command ({}); it would be overwritten",
                input.display()
            ),
        ));
    }
    Ok(Some(metadata))
}

fn parent_directory(path: &Path) -> &Path {
    path.parent()
        .filter(|parent| !parent.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
}

/// Makes the rename durable. Failure is ignored: the file itself is already synced, and
/// some file systems do not support syncing a directory.
fn sync_directory(path: &Path) {
    if let Ok(directory) = File::open(parent_directory(path)) {
        let _ = directory.sync_all();
    }
}

/// `NAME.HOST.` for `path`: the prefix of this host's temporary files for it.
fn temporary_prefix(path: &Path) -> OsString {
    let mut prefix = path.file_name().map_or_else(OsString::new, OsString::from);
    prefix.push(format!(".{}.", host_name()));
    prefix
}

/// This machine's host name (`localhost` if it has none), with any `/` replaced.
fn host_name() -> String {
    let mut buffer = [0u8; 256];
    // SAFETY: gethostname writes at most buffer.len() bytes into the buffer.
    let result = unsafe { libc::gethostname(buffer.as_mut_ptr().cast(), buffer.len()) };
    let length = buffer.iter().position(|&b| b == 0).unwrap_or(buffer.len());
    let name = String::from_utf8_lossy(&buffer[..length]).replace('/', "_");
    if result != 0 || name.is_empty() {
        "localhost".to_string()
    } else {
        name
    }
}

/// Removes this host's `NAME.HOST.PID-N.tmp` files beside `path` whose process is gone
/// (killed while writing).
fn remove_stale_temporaries(path: &Path) {
    let prefix = temporary_prefix(path);
    let prefix = prefix.to_string_lossy();
    let Ok(entries) = std::fs::read_dir(parent_directory(path)) else {
        return;
    };
    for entry in entries.filter_map(Result::ok) {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        let Some(pid) = name
            .strip_prefix(prefix.as_ref())
            .and_then(|rest| rest.strip_suffix(".tmp"))
            .and_then(|rest| rest.split_once('-'))
            .filter(|(pid, counter)| {
                !pid.is_empty()
                    && pid.bytes().all(|b| b.is_ascii_digit())
                    && counter.bytes().all(|b| b.is_ascii_digit())
            })
            .and_then(|(pid, _)| pid.parse::<libc::pid_t>().ok())
        else {
            continue;
        };
        // SAFETY: kill with signal 0 only checks whether the process exists.
        let gone = pid > 0
            && unsafe { libc::kill(pid, 0) } != 0
            && io::Error::last_os_error().raw_os_error() == Some(libc::ESRCH);
        if gone {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// A temporary file removed when dropped, unless disarmed after its rename.
struct TemporaryFile {
    path: PathBuf,
    armed: bool,
}

impl TemporaryFile {
    /// Creates `NAME.HOST.PID-N.tmp` beside `path`: a new file (`O_EXCL`, so never a link or
    /// another process's file), tried under the next number if the name is taken.
    fn create(path: &Path) -> io::Result<(Self, File)> {
        loop {
            let mut name = temporary_prefix(path);
            name.push(format!(
                "{}-{}.tmp",
                std::process::id(),
                TEMPORARIES.fetch_add(1, Ordering::Relaxed)
            ));
            let temporary = path.with_file_name(name);
            match OpenOptions::new()
                .write(true)
                .create_new(true)
                .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
                .open(&temporary)
            {
                Ok(file) => {
                    return Ok((
                        Self {
                            path: temporary,
                            armed: true,
                        },
                        file,
                    ))
                }
                Err(error) if error.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(error) => return Err(error),
            }
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_link_where_a_temporary_file_might_go_is_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        std::fs::write(&victim, "keep").unwrap();
        let target = dir.path().join("m.safetensors");
        // The old fixed name, and the names this process would try first.
        std::os::unix::fs::symlink(&victim, dir.path().join("m.safetensors.tmp")).unwrap();
        let next = TEMPORARIES.load(Ordering::Relaxed);
        for n in next..next + 4 {
            let name = format!(
                "m.safetensors.{}.{}-{n}.tmp",
                host_name(),
                std::process::id()
            );
            std::os::unix::fs::symlink(&victim, dir.path().join(name)).unwrap();
        }
        write_bytes_atomically(&target, b"new").unwrap();
        assert_eq!(std::fs::read(&target).unwrap(), b"new");
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "keep");
    }

    #[test]
    fn the_old_files_permissions_are_kept() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("m.safetensors");
        std::fs::write(&target, "old").unwrap();
        std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o600)).unwrap();
        write_bytes_atomically(&target, b"new").unwrap();
        let mode = std::fs::metadata(&target).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }

    #[test]
    fn an_input_is_refused_by_any_name() {
        let dir = tempfile::tempdir().unwrap();
        let input = dir.path().join("train.csv");
        std::fs::write(&input, "1,2,0\n").unwrap();
        std::fs::hard_link(&input, dir.path().join("other-name.csv")).unwrap();
        protect_input(&input);
        for path in [input.clone(), dir.path().join("other-name.csv")] {
            let error = write_bytes_atomically(&path, b"x").unwrap_err();
            assert!(error.to_string().contains("input"), "{error}");
            assert!(check_writable(&path).is_err());
            assert!(open_append(&path).is_err());
        }
        assert_eq!(std::fs::read_to_string(&input).unwrap(), "1,2,0\n");
        // Kept: the registry is for the process's life, and a deleted input's inode
        // could be reused by another test's file.
        std::mem::forget(dir);
    }

    #[test]
    fn a_device_is_refused() {
        let error = write_bytes_atomically(Path::new("/dev/null"), b"x").unwrap_err();
        assert!(error.to_string().contains("not a regular file"));
    }

    #[test]
    fn temporaries_of_dead_processes_are_removed_and_live_ones_kept() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("log.csv");
        let host = host_name();
        let dead = dir.path().join(format!("log.csv.{host}.999999999-0.tmp"));
        let live = dir
            .path()
            .join(format!("log.csv.{host}.{}-999.tmp", std::process::id()));
        let other_host = dir.path().join("log.csv.another-host.999999999-0.tmp");
        let unrelated = dir.path().join("log.csv.notes.tmp");
        for path in [&dead, &live, &other_host, &unrelated] {
            std::fs::write(path, "x").unwrap();
        }
        write_bytes_atomically(&target, b"new").unwrap();
        assert!(!dead.exists());
        assert!(live.exists() && other_host.exists() && unrelated.exists());
    }

    #[test]
    fn two_threads_writing_one_name_each_leave_a_whole_file() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("m.bin");
        std::thread::scope(|scope| {
            for byte in [b'a', b'b'] {
                let target = &target;
                scope.spawn(move || {
                    for _ in 0..50 {
                        write_bytes_atomically(target, &vec![byte; 100_000]).unwrap();
                    }
                });
            }
        });
        let bytes = std::fs::read(&target).unwrap();
        assert_eq!(bytes.len(), 100_000);
        assert!(bytes.iter().all(|&b| b == bytes[0]));
    }
}
