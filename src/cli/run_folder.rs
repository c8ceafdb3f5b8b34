//! A run folder (`--out DIR`), the convention of Lightning, MLflow and W&B: one run in one
//! folder, `config.json` (every setting, nabla's version, the thread count, the SHA-256 of
//! the data files), `log.csv`, `summary.json`, `model.safetensors` and
//! `checkpoint.safetensors` (resumable).

use std::path::{Path, PathBuf};

use nabla::atomic_file::write_bytes_atomically;
use nabla::file_lock::FileLock;
use serde::Serialize;

use super::CliError;

/// The files of one run.
#[derive(Clone, Debug)]
pub struct RunFolder {
    dir: PathBuf,
}

impl RunFolder {
    /// The run folder `dir` (not created yet).
    pub fn new(dir: &Path) -> Self {
        Self {
            dir: dir.to_path_buf(),
        }
    }

    /// `DIR/log.csv`.
    pub fn log(&self) -> PathBuf {
        self.dir.join("log.csv")
    }

    /// `DIR/model.safetensors`.
    pub fn model(&self) -> PathBuf {
        self.dir.join("model.safetensors")
    }

    /// `DIR/checkpoint.safetensors`.
    pub fn checkpoint(&self) -> PathBuf {
        self.dir.join("checkpoint.safetensors")
    }

    /// `DIR/config.json`.
    pub fn config(&self) -> PathBuf {
        self.dir.join("config.json")
    }

    /// `DIR/summary.json`.
    pub fn summary(&self) -> PathBuf {
        self.dir.join("summary.json")
    }

    /// The folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The run's files present in the folder.
    fn run_files(&self) -> Vec<String> {
        [
            self.config(),
            self.log(),
            self.model(),
            self.checkpoint(),
            self.summary(),
        ]
        .iter()
        .filter(|path| path.exists())
        .filter_map(|path| path.file_name())
        .map(|name| name.to_string_lossy().into_owned())
        .collect()
    }

    /// Creates the folder and takes its lock (`DIR/.lock`, held until the returned guard
    /// is dropped); refuses a folder another process works in, and one that holds a run
    /// (any of its files), unless `resuming` is that run.
    pub fn prepare(&self, resuming: bool) -> Result<FileLock, CliError> {
        std::fs::create_dir_all(&self.dir).map_err(|source| CliError::OutputPath {
            flag: "--out",
            path: self.dir.clone(),
            source,
        })?;
        let lock = FileLock::acquire(&self.dir.join(".lock"))?;
        let found = self.run_files();
        if !resuming && !found.is_empty() {
            let advice = if self.checkpoint().exists() {
                format!(
                    "resume it with --resume {}, or choose another --out",
                    self.dir.display()
                )
            } else {
                "choose another --out (it has no checkpoint to resume from)".to_string()
            };
            return Err(CliError::RunFolderTaken {
                dir: self.dir.clone(),
                found: found.join(", "),
                advice,
            });
        }
        Ok(lock)
    }

    /// Writes `value` as pretty JSON to `path`, atomically.
    pub fn write_json(path: &Path, value: &impl Serialize) -> Result<(), CliError> {
        let text = serde_json::to_string_pretty(value).map_err(|error| CliError::Write {
            path: path.to_path_buf(),
            source: std::io::Error::other(error),
        })?;
        write_bytes_atomically(path, format!("{text}\n").as_bytes()).map_err(|source| {
            CliError::Write {
                path: path.to_path_buf(),
                source,
            }
        })
    }
}

/// A log path for `plot` and `summarize`: `DIR/log.csv` for a run folder, else the path.
pub fn log_of(path: &Path) -> PathBuf {
    if path.is_dir() {
        RunFolder::new(path).log()
    } else {
        path.to_path_buf()
    }
}

/// The checkpoint of `--resume PATH`: `DIR/checkpoint.safetensors` for a run folder.
pub fn checkpoint_of(path: &Path) -> PathBuf {
    if path.is_dir() {
        RunFolder::new(path).checkpoint()
    } else {
        path.to_path_buf()
    }
}

/// Takes the lock of each output file (`.NAME.lock` beside it), so that two runs never
/// write one file; held until the guards are dropped.
pub fn lock_outputs<'a>(
    paths: impl IntoIterator<Item = &'a Path>,
) -> Result<Vec<FileLock>, CliError> {
    let mut locks = Vec::new();
    for path in paths {
        let name = path
            .file_name()
            .map_or_else(Default::default, |name| name.to_string_lossy());
        let lock = path.with_file_name(format!(".{name}.lock"));
        if !locks.iter().any(|held: &FileLock| held.path() == lock) {
            locks.push(FileLock::acquire(&lock)?);
        }
    }
    Ok(locks)
}
