//! Who may write where in a sweep folder, by [`FileLock`]s (released by the kernel when
//! their holder dies, even by `kill -9`):
//!
//! - `DIR/.lock`: the sweep itself, held for the whole of a local sweep, `--list`,
//!   `--slurm` and `--collect`, so that two sweeps never write into one folder at once.
//! - `DIR/runs/NAME.lock`: one run's claim, held by whoever drives that run (the local
//!   sweep while its `nabla train` runs, or the Slurm task of that point); a Slurm task
//!   takes only this one, so that the tasks of one array run side by side.
//! - `DIR/runs/NAME/.lock`: the run folder's own lock, which `nabla train --out` holds; a
//!   run folder is removed only after taking it, never under a live run.

use std::path::{Path, PathBuf};

use nabla::file_lock::{FileLock, LockError};

use super::super::run_folder::RUN_FILES;
use super::super::CliError;
use super::plan::{Plan, Point};

/// Takes the sweep folder's lock (`DIR/.lock`), creating the folder.
pub fn lock_sweep(dir: &Path) -> Result<FileLock, CliError> {
    std::fs::create_dir_all(dir).map_err(|source| CliError::OutputPath {
        flag: "--out",
        path: dir.to_path_buf(),
        source,
    })?;
    FileLock::acquire(&dir.join(".lock")).map_err(|error| busy("the sweep folder", dir, error))
}

/// `DIR/runs`, created; refused when it is a link (a run folder must be inside `DIR`).
pub fn runs_dir(dir: &Path) -> Result<PathBuf, CliError> {
    let runs = dir.join("runs");
    if std::fs::symlink_metadata(&runs).is_ok_and(|m| m.file_type().is_symlink()) {
        return Err(CliError::PlanRefused {
            point: runs.display().to_string(),
            why: "a link: run folders must be inside the sweep folder".into(),
        });
    }
    std::fs::create_dir_all(&runs).map_err(|source| CliError::Write {
        path: runs.clone(),
        source,
    })?;
    Ok(runs)
}

/// Takes the claim on `point`'s run (`DIR/runs/NAME.lock`).
pub fn claim_run(dir: &Path, point: &Point) -> Result<FileLock, CliError> {
    let runs = runs_dir(dir)?;
    FileLock::acquire(&runs.join(format!("{}.lock", point.name)))
        .map_err(|error| busy("run", &Plan::folder(dir, point), error))
}

/// Removes `point`'s run folder (to run it afresh), after taking the folder's own lock:
/// a folder a live `nabla train` holds is refused, not removed.
pub fn remove_run_folder(dir: &Path, point: &Point) -> Result<(), CliError> {
    let folder = Plan::folder(dir, point);
    match std::fs::symlink_metadata(&folder) {
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Ok(metadata) if !metadata.is_dir() => {
            // A file or a link in its place: removed as such, never followed.
            return std::fs::remove_file(&folder).map_err(|source| CliError::Write {
                path: folder.clone(),
                source,
            });
        }
        _ => {}
    }
    let lock = FileLock::acquire(&folder.join(".lock"))
        .map_err(|error| busy("run folder", &folder, error))?;
    if let Some(foreign) = foreign_entry(&folder) {
        return Err(CliError::PlanRefused {
            point: folder.display().to_string(),
            why: format!(
                "it holds {foreign}, which is not a file of a nabla run: it is not removed; move it away to run this point"
            ),
        });
    }
    let removed = std::fs::remove_dir_all(&folder);
    drop(lock);
    removed.map_err(|source| CliError::Write {
        path: folder,
        source,
    })
}

fn busy(what: &'static str, path: &Path, error: LockError) -> CliError {
    match error {
        LockError::Held { holder, .. } => CliError::SweepBusy {
            what,
            path: path.to_path_buf(),
            holder: holder.map_or_else(|| "an unknown pid".into(), |pid| format!("pid {pid}")),
        },
        LockError::Io { path, source } => CliError::Write { path, source },
    }
}

/// Checks, before anything is removed, that no run folder of `plan` holds a file that is
/// not a run's (a sweep never removes one, and stops before removing any other).
pub fn check_removable(dir: &Path, plan: &Plan) -> Result<(), CliError> {
    for point in &plan.points {
        let folder = Plan::folder(dir, point);
        if let Some(foreign) = folder.is_dir().then(|| foreign_entry(&folder)).flatten() {
            return Err(CliError::PlanRefused {
                point: folder.display().to_string(),
                why: format!(
                    "it holds {foreign}, which is not a file of a nabla run: nothing was removed; move it away to run this sweep"
                ),
            });
        }
    }
    Ok(())
}

/// The first entry of `folder` that is not a run file, its temporary or a lock, if any.
fn foreign_entry(folder: &Path) -> Option<String> {
    let entries = std::fs::read_dir(folder).ok()?;
    entries.filter_map(Result::ok).find_map(|entry| {
        let name = entry.file_name().to_string_lossy().into_owned();
        let is_file = entry.file_type().is_ok_and(|kind| kind.is_file());
        let ours = name == ".lock"
            || RUN_FILES.iter().any(|file| {
                name == *file
                    || name == format!(".{file}.lock")
                    || (name.starts_with(&format!("{file}.")) && name.ends_with(".tmp"))
            });
        (!(ours && is_file)).then_some(name)
    })
}
