//! A run folder (`--out DIR`), the convention of Lightning, MLflow and W&B: one run in one
//! folder, `config.json` (every setting, nabla's version, the thread count, the SHA-256 of
//! the data files), `log.csv`, `summary.json`, `model.safetensors` and
//! `checkpoint.safetensors` (resumable).

use std::path::{Path, PathBuf};

use nabla::atomic_file::write_bytes_atomically;
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

    /// Creates the folder; refuses one that holds a run already, unless it is resumed.
    pub fn prepare(&self, resuming: bool) -> Result<(), CliError> {
        if self.config().exists() && !resuming {
            return Err(CliError::RunFolderTaken {
                dir: self.dir.clone(),
            });
        }
        std::fs::create_dir_all(&self.dir).map_err(|source| CliError::OutputPath {
            flag: "--out",
            path: self.dir.clone(),
            source,
        })
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
