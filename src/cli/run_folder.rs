//! A run folder (`--out DIR`), the convention of Lightning, MLflow and W&B: one run in one
//! folder, `config.json` (every setting, nabla's version, the thread count, the SHA-256 of
//! the data files), `log.csv`, `summary.json`, `model.safetensors` and
//! `checkpoint.safetensors` (resumable).

use std::path::{Path, PathBuf};

use nabla::atomic_file::write_bytes_atomically;
use nabla::file_lock::FileLock;
use serde::Serialize;

use super::settings::check_output;
use super::CliError;
use nabla::data::preprocess::Preprocessing;

/// The files of a run folder, by name.
pub const RUN_FILES: [&str; 5] = [
    "config.json",
    "log.csv",
    "summary.json",
    "model.safetensors",
    "checkpoint.safetensors",
];

/// Refuses to write `path` when it is a file of a run folder (one of [`RUN_FILES`] in a
/// folder holding a run) other than `own`: another command would overwrite that run's
/// record, model or checkpoint.
pub fn refuse_other_runs_file(
    flag: &'static str,
    path: &Path,
    own: Option<&RunFolder>,
) -> Result<(), CliError> {
    let Some(name) = path.file_name().and_then(|name| name.to_str()) else {
        return Ok(());
    };
    let folder = RunFolder::new(
        path.parent()
            .filter(|parent| !parent.as_os_str().is_empty())
            .unwrap_or(Path::new(".")),
    );
    let holds_run = folder.config().is_file() || folder.checkpoint().is_file();
    let same = |a: &Path, b: &Path| match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    };
    let is_own = own.is_some_and(|own| same(own.dir(), folder.dir()));
    // A run's resumable state outside a folder (`m.checkpoint.safetensors`): an
    // interrupted run's work, whichever command would write over it.
    if name.ends_with(".checkpoint.safetensors") && path.is_file() {
        return Err(CliError::OutputPath {
            flag,
            path: path.to_path_buf(),
            source: std::io::Error::new(
                std::io::ErrorKind::AlreadyExists,
                "it is a run's resumable checkpoint, which it would overwrite",
            ),
        });
    }
    if RUN_FILES.contains(&name) && holds_run && !is_own {
        return Err(CliError::OutputPath {
            flag,
            path: path.to_path_buf(),
            source: std::io::Error::new(
                std::io::ErrorKind::AlreadyExists,
                format!(
                    "it is a file of the run in {}, which it would overwrite",
                    folder.dir().display()
                ),
            ),
        });
    }
    Ok(())
}

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
        RUN_FILES
            .iter()
            .filter(|name| self.dir.join(name).exists())
            .map(|name| name.to_string())
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

/// The model of `--model PATH`: `DIR/model.safetensors` for a run folder.
pub fn model_of(path: &Path) -> PathBuf {
    if path.is_dir() {
        RunFolder::new(path).model()
    } else {
        path.to_path_buf()
    }
}

/// The table preprocessing kept with the model at `path` (its metadata, or for a
/// training checkpoint its run's record), checked against `model`'s layers: a
/// hand-edited or damaged file is refused, naming what does not fit. `None` for a model
/// not trained on a table.
pub fn model_preprocessing<F: nabla::Float>(
    path: &Path,
    model: &nabla::MultiLayerPerceptron<F>,
) -> Result<Option<Preprocessing>, CliError> {
    let recorded = nabla::checkpoint::trained_record(path)?.preprocessing;
    let preprocessing = recorded.or_else(|| {
        let run = nabla::checkpoint::training_run(path).ok()?;
        serde_json::from_value(run.get("preprocessing")?.clone()).ok()
    });
    if let Some(preprocessing) = &preprocessing {
        preprocessing
            .check_model(model.in_features(), model.out_features())
            .map_err(|problem| {
                CliError::Data(nabla::DataError::Table {
                    path: path.to_path_buf(),
                    problem: format!("the model file is inconsistent: {problem}"),
                })
            })?;
    }
    Ok(preprocessing)
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

/// Claims the outputs of a command that writes files beside runs (`plot -o`, `summarize
/// --csv/--markdown`), before any work: two flags naming one file are refused, and so is
/// a file of a run folder, an input of the command, a path that cannot be written, and a
/// file another nabla process is writing (its lock is taken and held until the guards
/// are dropped).
pub fn claim_outputs(outputs: &[(&'static str, &Path)]) -> Result<Vec<FileLock>, CliError> {
    for (index, (flag, path)) in outputs.iter().enumerate() {
        if let Some((other, _)) = outputs[..index]
            .iter()
            .find(|(_, earlier)| same_file(earlier, path))
        {
            return Err(CliError::OutputClash {
                first: other,
                second: flag,
                path: path.to_path_buf(),
            });
        }
        refuse_other_runs_file(flag, path, None)?;
        check_output(flag, path)?;
    }
    lock_outputs(outputs.iter().map(|(_, path)| *path))
}

/// Whether two output paths name one file (their folders resolved).
pub fn same_file(a: &Path, b: &Path) -> bool {
    resolved(a) == resolved(b)
}

/// `path` with its folder's links and `..` resolved (the folder itself need not exist).
pub fn resolved(path: &Path) -> PathBuf {
    let parent = path
        .parent()
        .filter(|parent| !parent.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let parent = parent
        .canonicalize()
        .unwrap_or_else(|_| std::path::absolute(parent).unwrap_or_else(|_| parent.to_path_buf()));
    match path.file_name() {
        Some(name) => parent.join(name),
        None => parent,
    }
}
