//! Every error the binary reports: printed once by `main` as one `nabla: error: ...`
//! line, with exit status 2.

use std::io;
use std::path::PathBuf;

use nabla::checkpoint::CheckpointError;
use nabla::data::DataError;
use nabla::network::ModelError;
use nabla::train::TrainError;
use thiserror::Error;

use super::log::LogError;
use super::settings::InvalidFlag;

/// An error for the user.
#[derive(Debug, Error)]
pub enum CliError {
    /// A flag with a value nabla refuses.
    #[error(transparent)]
    Flag(#[from] InvalidFlag),
    /// The data could not be loaded.
    #[error(transparent)]
    Data(#[from] DataError),
    /// A model file could not be read or written.
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    /// Training could not start or diverged.
    #[error(transparent)]
    Train(#[from] TrainError),
    /// The layers do not make a network.
    #[error(transparent)]
    Model(ModelError),
    /// A `--layers` spec that cannot be read or does not fit the data.
    #[error("--layers: {0}")]
    Layers(nabla::network::spec::SpecError),
    /// A training log could not be written or read.
    #[error(transparent)]
    Log(#[from] LogError),
    /// An output path that could not be written at the end of the run.
    #[error("{flag} {path}: cannot write there: {source}")]
    OutputPath {
        /// The flag.
        flag: &'static str,
        /// The path.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// A run folder that holds a run already.
    #[error("--out {dir}: the folder holds a run already ({found}); {advice}")]
    RunFolderTaken {
        /// The folder.
        dir: PathBuf,
        /// The run's files found there.
        found: String,
        /// What to do instead.
        advice: String,
    },
    /// Two outputs of one run that name one file.
    #[error("{first} and {second} both name {path}: one would overwrite the other; give them different paths")]
    OutputClash {
        /// The first output.
        first: &'static str,
        /// The second.
        second: &'static str,
        /// The file.
        path: PathBuf,
    },
    /// An output another process is writing.
    #[error(transparent)]
    Locked(#[from] nabla::file_lock::LockError),
    /// A resume whose data is not the saved run's (a file changed or is another one).
    #[error("cannot resume: the data is not the run's: {files} (changed since the run, or another file; a resume needs the same data)")]
    DataChanged {
        /// The files that differ, with their roles (`train /abs/a.csv`).
        files: String,
    },
    /// A resume whose flags would change what the saved run computes.
    #[error("cannot resume: {flag} is {saved} in the saved run, {given} now (a resume keeps the run's settings; only --epochs, --patience, --min-delta and --no-restore-best may change)")]
    ResumeDiffers {
        /// The flag (or `data`, `architecture`).
        flag: String,
        /// The saved value.
        saved: String,
        /// The value given.
        given: String,
    },
    /// Runs of a sweep that failed.
    #[error("{count} sweep run(s) failed: {names} (their output is in the sweep's runs/NAME.out)")]
    SweepFailures {
        /// How many.
        count: usize,
        /// Their names.
        names: String,
    },
    /// A sweep's plan (made from the flags, or read from `plan.json`) that cannot run.
    #[error("sweep plan: {point}: {why}")]
    PlanRefused {
        /// The point (its name or index), or the file.
        point: String,
        /// What is wrong and what was expected.
        why: String,
    },
    /// A sweep folder or run another process is writing in.
    #[error("{what} {path} is in use by another nabla process ({holder}); wait for it to end or stop it")]
    SweepBusy {
        /// `the sweep folder`, `run`, `run folder`.
        what: &'static str,
        /// The folder.
        path: PathBuf,
        /// The holder, `pid N`.
        holder: String,
    },
    /// A sweep with more points than allowed.
    #[error("{flag}: the sweep would have {asked} points, more than {limit} ({why})")]
    SweepTooLarge {
        /// The flag (or `the lists`).
        flag: &'static str,
        /// The number of points asked for.
        asked: String,
        /// The most allowed.
        limit: usize,
        /// Where the limit comes from.
        why: &'static str,
    },
    /// `--collect` found runs that have not finished (the tables of what exists are
    /// written).
    #[error("the sweep is not complete: {incomplete} incomplete ({incomplete_names}), {missing} missing ({missing_names})")]
    SweepIncomplete {
        /// How many runs stopped before their last epoch.
        incomplete: usize,
        /// Their names, with how far each got.
        incomplete_names: String,
        /// How many runs never logged an epoch.
        missing: usize,
        /// Their names.
        missing_names: String,
    },
    /// An output file could not be written.
    #[error("{path}: cannot write: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// The operating system's reason.
        source: io::Error,
    },
    /// A plot could not be drawn.
    #[error("{path}: cannot draw: {detail}")]
    Plot {
        /// The SVG file.
        path: PathBuf,
        /// What the plotting library said.
        detail: String,
    },
    /// Prediction input whose width fits neither the model nor the model plus a label.
    #[error("{path}: rows have {columns} columns, the model takes {features} features (or {features} plus a label)")]
    InputWidth {
        /// The input file.
        path: PathBuf,
        /// Columns per row.
        columns: usize,
        /// The model's input width.
        features: usize,
    },
    /// Writing to stdout failed (other than by its reader closing it).
    #[error("cannot write to stdout: {0}")]
    Stdout(#[source] io::Error),
    /// The signal handlers could not be installed.
    #[error("cannot install the Ctrl-C handler: {0}")]
    Signals(#[source] io::Error),
    /// The run was interrupted (Ctrl-C, SIGTERM) after saving what it had: `main` exits
    /// with status 130 and this message.
    #[error("{0}")]
    Interrupted(String),
}

impl From<ModelError> for CliError {
    fn from(error: ModelError) -> Self {
        match error {
            ModelError::Spec(spec) => CliError::Layers(spec),
            other => CliError::Model(other),
        }
    }
}
