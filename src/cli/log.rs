//! The per-epoch CSV log of `nabla train --log`: a header, then one row per epoch with
//! the run's hyperparameters repeated in columns, flushed after every row so that an
//! interrupted run keeps what it logged.

use std::fs::File;
use std::path::{Path, PathBuf};

use nabla::train::EpochStats;
use thiserror::Error;

use super::settings::TrainSettings;

/// Why a log could not be written or read.
#[derive(Debug, Error)]
pub enum LogError {
    /// Creating or appending failed.
    #[error("{path}: cannot write the log: {source}")]
    Write {
        /// The log.
        path: PathBuf,
        /// What the CSV writer said.
        source: csv::Error,
    },
    /// Reading failed.
    #[error("{path}: cannot read the log: {source}")]
    Read {
        /// The log.
        path: PathBuf,
        /// What the CSV reader said.
        source: csv::Error,
    },
    /// A log with a header and no rows.
    #[error("{path}: the log has no epochs")]
    Empty {
        /// The log.
        path: PathBuf,
    },
    /// A column `nabla plot` or `summarize` needs is missing.
    #[error("{path}: no column '{column}'")]
    MissingColumn {
        /// The log.
        path: PathBuf,
        /// The column.
        column: String,
    },
    /// A value that should be a number.
    #[error("{path}:{line}: {column} '{text}' is not a number")]
    NotANumber {
        /// The log.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// The column.
        column: String,
        /// The value.
        text: String,
    },
}

/// The log's columns, in order; `nabla plot` and `nabla summarize` read them by name.
pub const COLUMNS: [&str; 21] = [
    "epoch",
    "partial",
    "train_loss",
    "train_acc",
    "train_error",
    "test_loss",
    "test_acc",
    "test_error",
    "seconds",
    "train_seconds",
    "eval_seconds",
    "dataset",
    "hidden",
    "activation",
    "lr",
    "batch_size",
    "epochs",
    "seed",
    "init",
    "dtype",
    "extras",
];

/// An open log file.
pub struct EpochLog {
    path: PathBuf,
    writer: csv::Writer<File>,
    hyperparameters: Vec<String>,
}

impl EpochLog {
    /// Creates (truncates) the file and writes the header.
    pub fn create(path: &Path, settings: &TrainSettings) -> Result<Self, LogError> {
        let error = |source| LogError::Write {
            path: path.to_path_buf(),
            source,
        };
        let mut writer = csv::Writer::from_path(path).map_err(error)?;
        writer.write_record(COLUMNS).map_err(error)?;
        writer.flush().map_err(|e| error(e.into()))?;
        let config = &settings.config;
        let hidden: Vec<String> = settings.hidden.iter().map(usize::to_string).collect();
        let extras = format!(
            "momentum={} nesterov={} weight_decay={} shuffle={} threads={} gemm={}",
            config.momentum,
            config.nesterov,
            config.weight_decay,
            config.shuffle,
            settings.threads,
            settings.gemm
        );
        let hyperparameters = vec![
            settings.data.name.clone(),
            hidden.join(","),
            settings.activation.to_string(),
            config.lr.to_string(),
            config.batch_size.to_string(),
            config.epochs.to_string(),
            config.seed.to_string(),
            settings.init.to_string(),
            settings.dtype.name().to_string(),
            extras,
        ];
        Ok(Self {
            path: path.to_path_buf(),
            writer,
            hyperparameters,
        })
    }

    /// Appends and flushes one epoch's row.
    pub fn append(&mut self, stats: &EpochStats) -> Result<(), LogError> {
        let mut row = vec![
            stats.epoch.to_string(),
            stats.partial.to_string(),
            format!("{:.6}", stats.train.loss),
            format!("{:.6}", stats.train.accuracy),
            format!("{:.6}", stats.train.error_rate()),
            format!("{:.6}", stats.test.loss),
            format!("{:.6}", stats.test.accuracy),
            format!("{:.6}", stats.test.error_rate()),
            format!("{:.4}", stats.train_seconds + stats.eval_seconds),
            format!("{:.4}", stats.train_seconds),
            format!("{:.4}", stats.eval_seconds),
        ];
        row.extend(self.hyperparameters.iter().cloned());
        let error = |source| LogError::Write {
            path: self.path.clone(),
            source,
        };
        self.writer.write_record(&row).map_err(error)?;
        self.writer.flush().map_err(|e| error(e.into()))
    }
}

/// A log read back: its header and rows, looked up by column name.
pub struct LogTable {
    /// The file.
    pub path: PathBuf,
    header: csv::StringRecord,
    rows: Vec<csv::StringRecord>,
}

impl LogTable {
    /// Reads a log written by [`EpochLog`]; refuses a file without rows.
    pub fn read(path: &Path) -> Result<Self, LogError> {
        let error = |source| LogError::Read {
            path: path.to_path_buf(),
            source,
        };
        let mut reader = csv::Reader::from_path(path).map_err(error)?;
        let header = reader.headers().map_err(error)?.clone();
        let mut rows = reader
            .records()
            .collect::<Result<Vec<_>, _>>()
            .map_err(error)?;
        // A partial epoch (an interrupted run's last row) is no point on a curve.
        if let Some(partial) = header.iter().position(|name| name == "partial") {
            rows.retain(|row| row.get(partial) != Some("true"));
        }
        if rows.is_empty() {
            return Err(LogError::Empty {
                path: path.to_path_buf(),
            });
        }
        Ok(Self {
            path: path.to_path_buf(),
            header,
            rows,
        })
    }

    /// The run's name: the file name without its extension.
    pub fn name(&self) -> String {
        self.path
            .file_stem()
            .map_or_else(|| "run".into(), |stem| stem.to_string_lossy().into_owned())
    }

    fn index(&self, column: &str) -> Result<usize, LogError> {
        self.header
            .iter()
            .position(|name| name == column)
            .ok_or_else(|| LogError::MissingColumn {
                path: self.path.clone(),
                column: column.to_string(),
            })
    }

    /// `column` in every row, as numbers; a bad value is named with its line.
    pub fn numbers(&self, column: &str) -> Result<Vec<f64>, LogError> {
        let index = self.index(column)?;
        self.rows
            .iter()
            .enumerate()
            .map(|(row, record)| {
                let text = record.get(index).unwrap_or("");
                text.parse::<f64>().map_err(|_| LogError::NotANumber {
                    path: self.path.clone(),
                    line: row + 2,
                    column: column.to_string(),
                    text: text.to_string(),
                })
            })
            .collect()
    }

    /// The last row's `column`.
    pub fn last(&self, column: &str) -> Result<String, LogError> {
        let index = self.index(column)?;
        Ok(self
            .rows
            .last()
            .and_then(|row| row.get(index))
            .unwrap_or("")
            .to_string())
    }
}
