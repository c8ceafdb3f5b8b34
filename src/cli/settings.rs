//! Validated settings: every flag is checked here, once, before any work starts, and a
//! refusal names the flag and the value.

use std::path::{Path, PathBuf};

use nabla::atomic_file::check_writable;
use nabla::checkpoint::ModelFormat;
use nabla::data::{DataSource, Dataset};
use nabla::threads::{self, GemmThreading};
use nabla::train::{Setting, TrainConfig, TrainError};
use nabla::{ActivationKind, Float, Init};

use super::args::{DataArgs, TrainArgs};
use super::dtype::Dtype;
use super::CliError;

/// A refused flag value.
#[derive(Debug, thiserror::Error)]
#[error("invalid {flag} {value}: expected {expected}")]
pub struct InvalidFlag {
    flag: &'static str,
    value: String,
    expected: &'static str,
}

fn invalid(flag: &'static str, value: impl ToString, expected: &'static str) -> CliError {
    CliError::Flag(InvalidFlag {
        flag,
        value: value.to_string(),
        expected,
    })
}

/// The flag that sets a library setting.
fn flag_of(setting: Setting) -> &'static str {
    match setting {
        Setting::Epochs => "--epochs",
        Setting::Lr => "--lr",
        Setting::BatchSize => "--batch-size",
        Setting::Momentum => "--momentum",
        Setting::WeightDecay => "--weight-decay",
        Setting::Nesterov => "--nesterov",
    }
}

/// Where the data comes from and how much of it to use.
#[derive(Clone, Debug)]
pub struct DataChoice {
    /// The files.
    pub source: DataSource,
    /// A short name for logs (`mnist-subset`, `mnist` or the path).
    pub name: String,
    train_rows: Option<usize>,
    test_rows: Option<usize>,
    classes: usize,
}

impl DataChoice {
    /// Resolves `--dataset`, `--train-file`/`--test-file` and the row limits.
    pub fn from_args(args: &DataArgs) -> Result<Self, CliError> {
        if args.classes < 2 {
            return Err(invalid("--classes", args.classes, "at least 2"));
        }
        if args.train_rows == Some(0) {
            return Err(invalid("--train-rows", 0, "at least 1"));
        }
        if args.test_rows == Some(0) {
            return Err(invalid(
                "--test-rows",
                0,
                "at least 1 (every epoch is evaluated on the test set)",
            ));
        }
        let (source, name) = match (&args.train_file, &args.test_file) {
            (Some(train), Some(test)) => (
                DataSource::Csv {
                    train: train.clone(),
                    test: test.clone(),
                },
                format!("{}", train.display()),
            ),
            _ => {
                let directory = match args.dataset.as_str() {
                    name @ ("mnist-subset" | "mnist") => bundled_data(name),
                    path => PathBuf::from(path),
                };
                (DataSource::Directory(directory), args.dataset.clone())
            }
        };
        Ok(Self {
            source,
            name,
            train_rows: args.train_rows,
            test_rows: args.test_rows,
            classes: args.classes,
        })
    }

    /// Loads the data set and applies the row limits.
    pub fn load<F: Float>(&self) -> Result<Dataset<F>, CliError> {
        let dataset = Dataset::load(&self.source, self.classes)?;
        Ok(match (self.train_rows, self.test_rows) {
            (None, None) => dataset,
            (train, test) => dataset.head(train.unwrap_or(usize::MAX), test.unwrap_or(usize::MAX)),
        })
    }
}

/// The bundled data directory `data/NAME`: under the current directory if it is there,
/// else in the source tree the binary was built from.
fn bundled_data(name: &str) -> PathBuf {
    let local = Path::new("data").join(name);
    if local.is_dir() {
        return local;
    }
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("data")
        .join(name)
}

/// Everything `nabla train` needs, checked.
#[derive(Clone, Debug)]
pub struct TrainSettings {
    /// The data.
    pub data: DataChoice,
    /// Hidden widths.
    pub hidden: Vec<usize>,
    /// Hidden activation.
    pub activation: ActivationKind,
    /// Weight initialisation.
    pub init: Init,
    /// The library's hyperparameters.
    pub config: TrainConfig,
    /// Float type.
    pub dtype: Dtype,
    /// Threads for OpenBLAS and rayon.
    pub threads: usize,
    /// Who parallelises the GEMMs.
    pub gemm: GemmThreading,
    /// CSV log path.
    pub log: Option<PathBuf>,
    /// Checkpoint path.
    pub save: Option<PathBuf>,
    /// Initial weights.
    pub init_from: Option<PathBuf>,
    /// Only the final summary.
    pub quiet: bool,
    /// Flags nabla adjusted, to tell the user.
    pub warnings: Vec<String>,
}

impl TrainSettings {
    /// Checks every flag; the first bad one is refused with its name and value.
    pub fn from_args(args: &TrainArgs) -> Result<Self, CliError> {
        if args.hidden.is_empty() {
            return Err(invalid(
                "--hidden",
                "''",
                "one or more widths, e.g. 256 or 384,256",
            ));
        }
        if let Some(zero) = args.hidden.iter().find(|&&width| width == 0) {
            return Err(invalid("--hidden", zero, "widths of at least 1"));
        }
        let config = TrainConfig {
            epochs: args.epochs,
            lr: args.lr,
            batch_size: args.batch_size,
            seed: args.seed,
            shuffle: args.shuffle,
            momentum: args.momentum,
            nesterov: args.nesterov,
            weight_decay: args.weight_decay,
        };
        if let Err(TrainError::InvalidSetting {
            setting,
            value,
            expected,
        }) = config.validate()
        {
            return Err(invalid(flag_of(setting), value, expected));
        }
        let mut warnings = Vec::new();
        let cores = threads::available_cores();
        let threads = match args.threads {
            None => cores,
            Some(0) => return Err(invalid("--threads", 0, "at least 1")),
            Some(asked) if asked > cores => {
                warnings.push(format!(
                    "--threads {asked} is more than the {cores} cores here; using {cores} (more threads than cores only wait on each other)"
                ));
                cores
            }
            Some(asked) => asked,
        };
        if let Some(path) = &args.log {
            if path.as_os_str() == "-" {
                return Err(invalid(
                    "--log",
                    "-",
                    "a file path (the epoch lines are on stdout already)",
                ));
            }
            check_output("--log", path)?;
        }
        if let Some(path) = &args.save {
            let format = ModelFormat::of(path)
                .map_err(|_| invalid("--save", path.display(), "a .safetensors or .npz path"))?;
            for file in format.files(path) {
                check_output("--save", &file)?;
            }
        }
        if let Some(path) = &args.init_from {
            if ModelFormat::of(path).is_err() || !path.is_file() {
                return Err(invalid(
                    "--init-from",
                    path.display(),
                    "an existing .safetensors or .npz file",
                ));
            }
        }
        Ok(Self {
            data: DataChoice::from_args(&args.data)?,
            hidden: args.hidden.clone(),
            activation: args.activation,
            init: args.init,
            config,
            dtype: args.dtype,
            threads,
            gemm: args.gemm,
            log: args.log.clone(),
            save: args.save.clone(),
            init_from: args.init_from.clone(),
            quiet: args.quiet,
            warnings,
        })
    }
}

/// Refuses, before any work, an output path that could not be written at the end: its
/// directory must exist and take a new file, and the path must be a regular file or
/// absent (not a directory, not a device such as /dev/full).
fn check_output(flag: &'static str, path: &Path) -> Result<(), CliError> {
    check_writable(path).map_err(|source| CliError::OutputPath {
        flag,
        path: path.to_path_buf(),
        source,
    })
}
