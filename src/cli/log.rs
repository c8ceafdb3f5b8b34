//! The per-epoch CSV log of `nabla train --log`: a header, then one row per epoch with
//! the run's hyperparameters repeated in columns, flushed after every row so that an
//! interrupted run keeps what it logged.

use std::fs::File;
use std::path::{Path, PathBuf};

use nabla::atomic_file::{open_append, write_atomically};
use nabla::train::{EpochStats, Evaluation};
use thiserror::Error;

use super::run_folder::log_of;
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
    /// A value that should be a (finite) number.
    #[error("{path}:{line}: {column} '{text}' is not a finite number")]
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
/// `val_*` are empty without a validation set; `lr` is the rate in force in the epoch,
/// `base_lr` the `--lr` given.
pub const COLUMNS: [&str; 26] = [
    "epoch",
    "partial",
    "train_loss",
    "train_acc",
    "train_error",
    "val_loss",
    "val_acc",
    "test_loss",
    "test_acc",
    "test_error",
    "lr",
    "seconds",
    "train_seconds",
    "eval_seconds",
    "dataset",
    "hidden",
    "activation",
    "base_lr",
    "batch_size",
    "epochs",
    "seed",
    "init",
    "dtype",
    "optimizer",
    "schedule",
    "extras",
];

/// A regression run's columns: as [`COLUMNS`], with R² where the accuracy is and RMSE
/// where the error rate is (in the target's units), and the other errors at the end.
pub const REGRESSION_COLUMNS: [&str; 30] = [
    "epoch",
    "partial",
    "train_loss",
    "train_r2",
    "train_rmse",
    "val_loss",
    "val_r2",
    "test_loss",
    "test_r2",
    "test_rmse",
    "lr",
    "seconds",
    "train_seconds",
    "eval_seconds",
    "dataset",
    "hidden",
    "activation",
    "base_lr",
    "batch_size",
    "epochs",
    "seed",
    "init",
    "dtype",
    "optimizer",
    "schedule",
    "extras",
    "train_mae",
    "val_rmse",
    "val_mae",
    "test_mae",
];

/// The columns of a run's log.
fn columns_of(settings: &TrainSettings) -> &'static [&'static str] {
    if settings.run.data.is_regression() {
        &REGRESSION_COLUMNS
    } else {
        &COLUMNS
    }
}

/// An open log file.
pub struct EpochLog {
    path: PathBuf,
    writer: csv::Writer<File>,
    hyperparameters: Vec<String>,
}

/// A row's numbers for `evaluation`: its score (accuracy, or R²) and its error (error
/// rate, or RMSE), as written.
fn score_and_error(evaluation: &Evaluation) -> (String, String) {
    match evaluation.regression {
        Some(metrics) => (format!("{:.6}", metrics.r2), format!("{:.6}", metrics.rmse)),
        None => (
            format!("{:.6}", evaluation.accuracy),
            format!("{:.6}", evaluation.error_rate()),
        ),
    }
}

impl EpochLog {
    /// Writes a new file holding the header (replacing any file there, atomically), then
    /// opens it to append the epochs.
    pub fn create(path: &Path, settings: &TrainSettings) -> Result<Self, LogError> {
        Self::start(path, settings, &[])
    }

    /// Writes the header and `rows` atomically, then opens the file to append.
    fn start(
        path: &Path,
        settings: &TrainSettings,
        rows: &[csv::StringRecord],
    ) -> Result<Self, LogError> {
        let write_error = |source: std::io::Error| LogError::Write {
            path: path.to_path_buf(),
            source: source.into(),
        };
        write_atomically(path, |file| {
            let mut writer = csv::Writer::from_writer(file);
            writer.write_record(columns_of(settings))?;
            for row in rows {
                writer.write_record(row)?;
            }
            writer.flush()
        })
        .map_err(write_error)?;
        let file = open_append(path).map_err(write_error)?;
        Ok(Self {
            path: path.to_path_buf(),
            writer: csv::Writer::from_writer(file),
            hyperparameters: hyperparameters(settings),
        })
    }

    /// Continues the log of a resumed run whose finished epochs are `history` (from its
    /// checkpoint): the log is rewritten atomically with one row per finished epoch, the
    /// file's own row where its numbers are the checkpoint's, else the row rebuilt from
    /// the checkpoint (a torn, deleted or edited row, or a garbled header, loses
    /// nothing); a partial row and rows past the checkpoint are dropped, as those batches
    /// run again. Returns the log and what had to be rebuilt, for a warning.
    pub fn resume(
        path: &Path,
        settings: &TrainSettings,
        history: &[EpochStats],
    ) -> Result<(Self, Option<String>), LogError> {
        let (rows, rebuilt) = rows_for(path, settings, history);
        // A log that was not there (a run continued into a new folder) is written whole,
        // which is no repair.
        let repair = (path.exists() && !rebuilt.is_empty()).then(|| {
            format!(
                "{}: the row{} of epoch{} {} rebuilt from the checkpoint (missing, torn or edited in the log)",
                path.display(),
                if rebuilt.len() == 1 { "" } else { "s" },
                if rebuilt.len() == 1 { "" } else { "s" },
                rebuilt.join(", "),
            )
        });
        Ok((Self::start(path, settings, &rows)?, repair))
    }

    /// Whether the log at `path` holds exactly the epochs of `history`, each as the
    /// checkpoint has it (a finished run's log needs no repair).
    pub fn is_complete(path: &Path, settings: &TrainSettings, history: &[EpochStats]) -> bool {
        let (rows, rebuilt) = rows_for(path, settings, history);
        let (existing, all_whole) = read_rows(path, columns_of(settings));
        rebuilt.is_empty() && all_whole && existing.len() == rows.len()
    }

    /// Appends and flushes one epoch's row.
    pub fn append(&mut self, stats: &EpochStats) -> Result<(), LogError> {
        let row = row_of(stats, &self.hyperparameters);
        let error = |source| LogError::Write {
            path: self.path.clone(),
            source,
        };
        self.writer.write_record(&row).map_err(error)?;
        self.writer.flush().map_err(|e| error(e.into()))
    }
}

/// The rows of an existing log with nabla's header, up to its last line ending (a row
/// torn by a kill is not one), and whether every row read is whole: ended by a newline
/// and with every field. None when the file is missing, not a regular file, or its header
/// is not nabla's.
fn read_rows(path: &Path, columns: &[&str]) -> (Vec<csv::StringRecord>, bool) {
    let bytes = match std::fs::metadata(path) {
        Ok(metadata) if metadata.is_file() => std::fs::read(path).unwrap_or_default(),
        _ => return (Vec::new(), false),
    };
    let ended = bytes.ends_with(b"\n");
    let whole_lines = match bytes.iter().rposition(|&b| b == b'\n') {
        Some(last) => &bytes[..=last],
        None => &[][..],
    };
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .from_reader(whole_lines);
    match reader.headers() {
        Ok(header) if header.iter().eq(columns.iter().copied()) => {}
        _ => return (Vec::new(), false),
    }
    let records: Vec<csv::StringRecord> = reader.records().map_while(Result::ok).collect();
    let all_whole = ended && records.iter().all(|row| row.len() == columns.len());
    let rows = records
        .into_iter()
        .filter(|row| row.len() == columns.len())
        .collect();
    (rows, all_whole)
}

/// The numbers of a row: the columns before the run's settings.
const NUMBERS: usize = 14;
/// The run's settings in a row (after the numbers; a regression row has more numbers
/// after them).
const SETTINGS: usize = 12;

/// The rows of a log for the whole epochs of `history`: the file's own row of each epoch
/// where its numbers are the checkpoint's, else the row rebuilt from it; and the epochs
/// rebuilt.
fn rows_for(
    path: &Path,
    settings: &TrainSettings,
    history: &[EpochStats],
) -> (Vec<csv::StringRecord>, Vec<String>) {
    let hyperparameters = &hyperparameters(settings);
    let existing = read_rows(path, columns_of(settings)).0;
    let mut rebuilt = Vec::new();
    let rows = history
        .iter()
        .filter(|stats| !stats.partial)
        .map(|stats| {
            let expected = row_of(stats, hyperparameters);
            // The numbers before the settings, and a regression row's after them.
            let numbers = |row: &[String]| -> Vec<String> {
                row.iter()
                    .take(NUMBERS)
                    .chain(row.iter().skip(NUMBERS + SETTINGS))
                    .cloned()
                    .collect()
            };
            let wanted = numbers(&expected);
            existing
                .iter()
                .find(|row| {
                    let row: Vec<String> = row.iter().map(str::to_string).collect();
                    numbers(&row) == wanted
                })
                .cloned()
                .unwrap_or_else(|| {
                    rebuilt.push(stats.epoch.to_string());
                    expected.into_iter().collect()
                })
        })
        .collect();
    (rows, rebuilt)
}

/// One epoch's row: its numbers, then the run's settings.
fn row_of(stats: &EpochStats, hyperparameters: &[String]) -> Vec<String> {
    let (val_loss, val_score) = match stats.val {
        Some(val) => (format!("{:.6}", val.loss), score_and_error(&val).0),
        None => (String::new(), String::new()),
    };
    let (train_score, train_error) = score_and_error(&stats.train);
    let (test_score, test_error) = score_and_error(&stats.test);
    let mut row = vec![
        stats.epoch.to_string(),
        stats.partial.to_string(),
        format!("{:.6}", stats.train.loss),
        train_score,
        train_error,
        val_loss,
        val_score,
        format!("{:.6}", stats.test.loss),
        test_score,
        test_error,
        stats.lr.to_string(),
        format!("{:.4}", stats.train_seconds + stats.eval_seconds),
        format!("{:.4}", stats.train_seconds),
        format!("{:.4}", stats.eval_seconds),
    ];
    row.extend(hyperparameters.iter().cloned());
    if let Some(train) = stats.train.regression {
        let val = stats.val.and_then(|val| val.regression);
        let number = |value: Option<f64>| value.map_or_else(String::new, |v| format!("{v:.6}"));
        row.extend([
            number(Some(train.mae)),
            number(val.map(|v| v.rmse)),
            number(val.map(|v| v.mae)),
            number(stats.test.regression.map(|t| t.mae)),
        ]);
    }
    row
}

/// The run's settings, repeated on every row.
fn hyperparameters(settings: &TrainSettings) -> Vec<String> {
    let run = &settings.run;
    let config = &run.train;
    let hidden: Vec<String> = run.hidden.iter().map(usize::to_string).collect();
    let optional = |value: Option<String>| value.unwrap_or_else(|| "none".into());
    let validation = match (&run.data.val_split, &run.data.val_file) {
        (Some(fraction), _) => format!("split {fraction}"),
        (None, Some(path)) => path.display().to_string(),
        (None, None) => "none".into(),
    };
    let extras = format!(
        "momentum={} nesterov={} weight_decay={} shuffle={} threads={} gemm={} warmup={} patience={} val={}",
        config.momentum,
        config.nesterov,
        config.weight_decay,
        config.shuffle,
        settings.threads,
        settings.gemm,
        config.schedule.warmup_epochs,
        optional(config.patience.map(|p| p.to_string())),
        validation,
    );
    // A `--layers` run: the spec stands in the architecture's column, no activation.
    let (hidden, activation) = match &run.layers {
        Some(spec) => (spec.clone(), String::new()),
        None => (hidden.join(","), run.activation.clone()),
    };
    vec![
        run.data.name.clone(),
        hidden,
        activation,
        config.lr.to_string(),
        config.batch_size.to_string(),
        config.epochs.to_string(),
        config.seed.to_string(),
        run.init.clone(),
        run.dtype.clone(),
        config.optimizer.to_string(),
        config.schedule.kind.to_string(),
        extras,
    ]
}

/// A log read back: its header and rows, looked up by column name.
pub struct LogTable {
    /// The file.
    pub path: PathBuf,
    header: csv::StringRecord,
    rows: Vec<csv::StringRecord>,
}

impl LogTable {
    /// Reads a log written by [`EpochLog`], every row; refuses a file without a header.
    fn read_all(path: &Path) -> Result<Self, LogError> {
        let error = |source| LogError::Read {
            path: path.to_path_buf(),
            source,
        };
        // Judged before opening: a pipe or a device could wait or never end.
        if std::fs::metadata(path).is_ok_and(|metadata| !metadata.is_file()) {
            return Err(error(csv::Error::from(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "is not a regular file",
            ))));
        }
        let mut reader = csv::Reader::from_path(path).map_err(error)?;
        let header = reader.headers().map_err(error)?.clone();
        let rows = reader
            .records()
            .collect::<Result<Vec<_>, _>>()
            .map_err(error)?;
        Ok(Self {
            path: path.to_path_buf(),
            header,
            rows,
        })
    }

    /// Reads a log written by [`EpochLog`] (or the log of a run folder), without partial
    /// rows; refuses a file without rows.
    pub fn read(path: &Path) -> Result<Self, LogError> {
        let path = log_of(path);
        let mut table = Self::read_all(&path)?;
        // A partial epoch (an interrupted run's last row) is no point on a curve.
        if let Some(partial) = table.header.iter().position(|name| name == "partial") {
            table.rows.retain(|row| row.get(partial) != Some("true"));
        }
        if table.rows.is_empty() {
            return Err(LogError::Empty { path });
        }
        Ok(table)
    }

    /// The run's name: the run folder's name for `DIR/log.csv`, else the file name
    /// without its extension.
    pub fn name(&self) -> String {
        let folder_log = self.path.file_name().is_some_and(|name| name == "log.csv");
        let named = if folder_log {
            self.path.parent().and_then(Path::file_name)
        } else {
            self.path.file_stem()
        };
        named.map_or_else(|| "run".into(), |stem| stem.to_string_lossy().into_owned())
    }

    /// Whether the log has `column`.
    pub fn has(&self, column: &str) -> bool {
        self.header.iter().any(|name| name == column)
    }

    /// The position of `column`.
    pub fn index(&self, column: &str) -> Result<usize, LogError> {
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

    /// [`LogTable::numbers`], refusing NaN and infinite values too (an axis needs finite
    /// ends).
    pub fn finite_numbers(&self, column: &str) -> Result<Vec<f64>, LogError> {
        let numbers = self.numbers(column)?;
        match numbers.iter().position(|value| !value.is_finite()) {
            None => Ok(numbers),
            Some(row) => Err(LogError::NotANumber {
                path: self.path.clone(),
                line: row + 2,
                column: column.to_string(),
                text: numbers[row].to_string(),
            }),
        }
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
