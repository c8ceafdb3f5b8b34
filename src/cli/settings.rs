//! Validated settings: every flag is checked here, once, before any work starts, and a
//! refusal names the flag and the value.

use std::path::{Path, PathBuf};

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
        let threads = args.threads.unwrap_or_else(threads::available_cores);
        if threads == 0 {
            return Err(invalid("--threads", 0, "at least 1"));
        }
        for (flag, path) in [("--log", &args.log), ("--save", &args.save)] {
            if let Some(path) = path {
                check_writable_directory(flag, path)?;
            }
        }
        if let Some(path) = &args.init_from {
            if !path.is_file() {
                return Err(invalid(
                    "--init-from",
                    path.display(),
                    "an existing .npz file",
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
        })
    }
}

/// Refuses an output path whose directory does not exist, before hours of training.
fn check_writable_directory(flag: &'static str, path: &Path) -> Result<(), CliError> {
    let parent = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    if !parent.is_dir() {
        return Err(invalid(
            flag,
            path.display(),
            "a path in an existing directory",
        ));
    }
    Ok(())
}
