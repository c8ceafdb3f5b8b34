//! Validated settings: every flag is checked here, once, before any work starts, and a
//! refusal names the flag and the value. A run's settings are also a [`RunConfig`], the
//! record written to `config.json` and into checkpoints, which a resume starts from.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use nabla::atomic_file::{check_writable, protect_input};
use nabla::checkpoint::{self, ModelFormat};
use nabla::data::preprocess::{
    ColumnChoice, FitSummary, Impute, Preprocessing, Scale, Task, TransformReport,
};
use nabla::data::tabular::{looks_like_assignment, HeaderMode};
use nabla::data::{load_csv, DataSource, Dataset, Features, TableSource};
use nabla::optim::schedule::ScheduleConfig;
use nabla::threads::{self, GemmThreading, ThreadSource};
use nabla::train::{Setting, TrainConfig, TrainError};
use nabla::{ActivationKind, Float, Init};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::args::{DataArgs, TrainArgs};
use super::dtype::Dtype;
use super::run_folder::{refuse_other_runs_file, same_file, RunFolder};
use super::CliError;

/// A refused flag value.
#[derive(Debug, thiserror::Error)]
#[error("invalid {flag} {value}: expected {expected}")]
pub struct InvalidFlag {
    flag: &'static str,
    value: String,
    expected: &'static str,
}

pub(super) fn invalid(
    flag: &'static str,
    value: impl ToString,
    expected: &'static str,
) -> CliError {
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
        Setting::Beta1 => "--beta1",
        Setting::Beta2 => "--beta2",
        Setting::Eps => "--eps",
        Setting::StepSize => "--lr-step-size",
        Setting::Gamma => "--lr-gamma",
        Setting::LrMin => "--lr-min",
        Setting::Factor => "--lr-factor",
        Setting::WarmupEpochs => "--warmup-epochs",
        Setting::Patience => "--patience",
        Setting::MinDelta => "--min-delta",
    }
}

/// Where the data comes from and how much of it to use.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DataChoice {
    /// A short name for logs (`mnist-subset`, `mnist`, the directory or the train file).
    pub name: String,
    /// `--dataset`.
    pub dataset: String,
    /// `--train-file`.
    pub train_file: Option<PathBuf>,
    /// `--test-file`.
    pub test_file: Option<PathBuf>,
    /// `--train-rows`.
    pub train_rows: Option<usize>,
    /// `--test-rows`.
    pub test_rows: Option<usize>,
    /// `--classes`.
    pub classes: usize,
    /// `--val-split`.
    pub val_split: Option<f64>,
    /// `--val-file`.
    pub val_file: Option<PathBuf>,
    /// `--test-split`.
    #[serde(default)]
    pub test_split: Option<f64>,
    /// How a `--train-file` table is read and which columns play which part.
    #[serde(default)]
    pub table: TableFlags,
}

/// The table flags (`--label`, `--ignore`, `--categorical`, `--header`, `--delimiter`,
/// `--scale`, `--impute`), as given (`None`: not given, the default applies).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct TableFlags {
    /// `--label`.
    pub label: Option<String>,
    /// `--ignore`.
    pub ignore: Vec<String>,
    /// `--categorical`.
    pub categorical: Vec<String>,
    /// `--header`.
    pub header: Option<HeaderMode>,
    /// `--delimiter`, as a byte.
    pub delimiter: Option<u8>,
    /// `--scale`.
    pub scale: Option<Scale>,
    /// `--impute`.
    pub impute: Option<Impute>,
    /// `--task`.
    #[serde(default)]
    pub task: Option<Task>,
}

impl TableFlags {
    /// The first table flag given, if any.
    fn first_given(&self) -> Option<&'static str> {
        [
            ("--label", self.label.is_some()),
            ("--ignore", !self.ignore.is_empty()),
            ("--categorical", !self.categorical.is_empty()),
            ("--header", self.header.is_some()),
            ("--delimiter", self.delimiter.is_some()),
            ("--scale", self.scale.is_some()),
            ("--impute", self.impute.is_some()),
            ("--task", self.task.is_some()),
        ]
        .into_iter()
        .find_map(|(flag, given)| given.then_some(flag))
    }
}

/// `--delimiter`: one ASCII character other than a quote or a line end, or `tab`.
pub(super) fn delimiter_byte(text: &str) -> Result<u8, CliError> {
    match text {
        "tab" | "\\t" | "\t" => Ok(b'\t'),
        _ => match text.as_bytes() {
            [byte] if byte.is_ascii() && !matches!(byte, b'"' | b'\n' | b'\r') => Ok(*byte),
            _ => Err(invalid(
                "--delimiter",
                format!("'{text}'"),
                "one ASCII character (not a quote or a line end), or tab",
            )),
        },
    }
}

/// A data set, and for a table the preprocessing that made it.
pub struct LoadedData<F> {
    /// Features and labels.
    pub dataset: Dataset<F>,
    /// For a table: its preprocessing, what fitting found, and unseen categories per
    /// set (`test`, `val`).
    pub table: Option<TableFit>,
}

/// What loading a table fitted and met.
pub struct TableFit {
    /// The preprocessing (fitted, or the model's).
    pub preprocessing: Preprocessing,
    /// What fitting found.
    pub summary: FitSummary,
    /// Unseen categories, per set.
    pub unseen: Vec<(&'static str, TransformReport)>,
}

impl DataChoice {
    /// Checks `--dataset`, `--train-file`/`--test-file`, the row limits and the
    /// validation flags.
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
        if let Some(fraction) = args.val_split {
            if !(fraction > 0.0 && fraction < 1.0) {
                return Err(invalid("--val-split", fraction, "a fraction in (0, 1)"));
            }
        }
        if let Some(fraction) = args.test_split {
            if !(fraction > 0.0 && fraction < 1.0) {
                return Err(invalid("--test-split", fraction, "a fraction in (0, 1)"));
            }
        }
        let table = TableFlags {
            label: args.label.clone(),
            ignore: args.ignore.clone(),
            categorical: args.categorical.clone(),
            header: args.header,
            delimiter: args.delimiter.as_deref().map(delimiter_byte).transpose()?,
            scale: args.scale,
            impute: args.impute,
            task: args.task,
        };
        match (&args.train_file, &args.test_file, args.test_split) {
            (Some(train), None, None) => {
                return Err(invalid(
                    "--train-file",
                    train.display(),
                    "a --test-file or a --test-split F beside it",
                ))
            }
            (None, _, _) => {
                if let Some(flag) = table.first_given() {
                    return Err(invalid(flag, "given", "a --train-file table to apply to"));
                }
            }
            _ => {}
        }
        let name = match &args.train_file {
            Some(train) => train.display().to_string(),
            None => args.dataset.clone(),
        };
        let dataset = match args.dataset.as_str() {
            bundled @ ("mnist-subset" | "mnist") => bundled.to_string(),
            path => absolute(Path::new(path)).display().to_string(),
        };
        Ok(Self {
            name,
            dataset,
            train_file: args.train_file.as_deref().map(absolute),
            test_file: args.test_file.as_deref().map(absolute),
            train_rows: args.train_rows,
            test_rows: args.test_rows,
            classes: args.classes,
            val_split: args.val_split,
            val_file: args.val_file.as_deref().map(absolute),
            test_split: args.test_split,
            table,
        })
    }

    /// Whether the data is read as a table (with a header, text, missing values, a
    /// test split, table flags ...) rather than in the assignment's CSV layout.
    pub fn uses_table(&self) -> Result<bool, CliError> {
        let Some(train) = &self.train_file else {
            return Ok(false);
        };
        let Some(test) = &self.test_file else {
            return Ok(true);
        };
        if self.table.first_given().is_some() {
            return Ok(true);
        }
        Ok(!(looks_like_assignment(train)? && looks_like_assignment(test)?))
    }

    /// Whether the run predicts numbers (`--task regression`).
    pub fn is_regression(&self) -> bool {
        self.table.task == Some(Task::Regression)
    }

    /// Where the tables are and how to read them.
    pub fn table_source(&self) -> TableSource {
        let flags = &self.table;
        TableSource {
            train: self.train_file.clone().unwrap_or_default(),
            test: self.test_file.clone(),
            test_split: self.test_split,
            train_rows: self.train_rows,
            test_rows: self.test_rows,
            delimiter: flags.delimiter,
            header: flags.header.unwrap_or_default(),
            columns: ColumnChoice {
                label: flags.label.clone(),
                ignore: flags.ignore.clone(),
                categorical: flags.categorical.clone(),
                scale: flags.scale.unwrap_or_default(),
                impute: flags.impute.unwrap_or_default(),
                task: flags.task.unwrap_or_default(),
            },
        }
    }

    /// The files the data comes from.
    pub fn source(&self) -> DataSource {
        match (&self.train_file, &self.test_file) {
            (Some(train), Some(test)) => DataSource::Csv {
                train: train.clone(),
                test: test.clone(),
            },
            _ => {
                let directory = match self.dataset.as_str() {
                    name @ ("mnist-subset" | "mnist") => bundled_data(name),
                    path => PathBuf::from(path),
                };
                DataSource::Directory(directory)
            }
        }
    }

    /// Loads the data set, applies the row limits, and splits off or loads the
    /// validation set (`seed` chooses the split).
    pub fn load<F: Float>(&self, seed: u64) -> Result<Dataset<F>, CliError> {
        self.load_data(seed, None).map(|loaded| loaded.dataset)
    }

    /// Loads the data as [`DataChoice::load`] does; a table is preprocessed with
    /// `fitted` (a trained model's preprocessing) when given, else fitted on its
    /// training rows.
    pub fn load_data<F: Float>(
        &self,
        seed: u64,
        fitted: Option<&Preprocessing>,
    ) -> Result<LoadedData<F>, CliError> {
        if fitted.is_some() && self.train_file.is_none() {
            return Err(invalid(
                "--dataset",
                &self.dataset,
                "a --train-file table (the model was trained on a table and keeps its preprocessing)",
            ));
        }
        if fitted.is_some() || self.uses_table()? {
            return self.load_table(seed, fitted);
        }
        let dataset = Dataset::load(&self.source(), self.classes)?;
        let dataset = match (self.train_rows, self.test_rows) {
            (None, None) => dataset,
            (train, test) => dataset.head(train.unwrap_or(usize::MAX), test.unwrap_or(usize::MAX)),
        };
        let dataset = match (self.val_split, &self.val_file) {
            (Some(fraction), _) => dataset.split_validation(fraction, seed)?,
            (None, Some(path)) => {
                let (x, y) = load_csv::<F>(path, self.classes)?;
                dataset.with_validation(Features::Dense(x), y)?
            }
            (None, None) => dataset,
        };
        Ok(LoadedData {
            dataset,
            table: None,
        })
    }

    /// [`DataChoice::load_data`] for a table.
    fn load_table<F: Float>(
        &self,
        seed: u64,
        fitted: Option<&Preprocessing>,
    ) -> Result<LoadedData<F>, CliError> {
        let source = self.table_source();
        // The row limits apply before fitting (in the source).
        let loaded = source.load::<F>(seed, fitted)?;
        let mut unseen = vec![("test", loaded.test_report)];
        let dataset = loaded.dataset;
        let preprocessing = loaded.preprocessing;
        let dataset = match (self.val_split, &self.val_file) {
            (Some(fraction), _) => dataset.split_validation(fraction, seed)?,
            (None, Some(path)) => {
                let table = source.read_table(path, &preprocessing)?;
                let rows: Vec<usize> = (0..table.rows()).collect();
                let (x, report) = preprocessing.transform::<F>(&table, &rows)?;
                unseen.push(("val", report));
                let x = Features::Dense(x);
                match preprocessing.task {
                    Task::Classification => {
                        let y = preprocessing.labels(&table, &rows)?;
                        dataset.with_validation(x, y.into())?
                    }
                    Task::Regression => {
                        let t = preprocessing.targets(&table, &rows)?;
                        dataset.with_validation_targets(x, t.into())?
                    }
                }
            }
            (None, None) => dataset,
        };
        Ok(LoadedData {
            dataset,
            table: Some(TableFit {
                preprocessing,
                summary: loaded.summary,
                unseen,
            }),
        })
    }

    /// Every file the data comes from, with its role (`train`, `test`, `val`, or `data`
    /// for the files of a data directory).
    pub fn files(&self) -> Vec<(&'static str, PathBuf)> {
        if let Some(train) = &self.train_file {
            let mut files = vec![("train", train.clone())];
            files.extend(self.test_file.clone().map(|path| ("test", path)));
            files.extend(self.val_file.clone().map(|path| ("val", path)));
            return files;
        }
        let mut files = match self.source() {
            DataSource::Csv { train, test } => vec![("train", train), ("test", test)],
            DataSource::Directory(dir) => std::fs::read_dir(&dir)
                .map(|entries| {
                    let mut files: Vec<PathBuf> = entries
                        .filter_map(Result::ok)
                        .map(|entry| entry.path())
                        .filter(|path| {
                            let name = path
                                .file_name()
                                .map(|n| n.to_string_lossy().into_owned())
                                .unwrap_or_default();
                            path.is_file()
                                && (name.contains("ubyte")
                                    || name.starts_with("train.csv")
                                    || name.starts_with("test.csv"))
                        })
                        .collect();
                    files.sort();
                    files.into_iter().map(|path| ("data", path)).collect()
                })
                .unwrap_or_default(),
            DataSource::Idx {
                train_images,
                train_labels,
                test_images,
                test_labels,
            } => vec![
                ("train", train_images),
                ("train", train_labels),
                ("test", test_images),
                ("test", test_labels),
            ],
        };
        files.extend(self.val_file.clone().map(|path| ("val", path)));
        files
    }

    /// The SHA-256 of every file the data comes from, keyed by its role and path (two
    /// files of one name in two folders are two entries): what identifies the data of a
    /// run (a resume refuses other data).
    pub fn fingerprint(&self) -> Result<BTreeMap<String, String>, CliError> {
        let mut hashes = BTreeMap::new();
        for (role, path) in self.files() {
            let bytes = std::fs::read(&path).map_err(|source| {
                CliError::Data(nabla::DataError::Io {
                    path: path.clone(),
                    source,
                })
            })?;
            let hash: String = Sha256::digest(&bytes)
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect();
            hashes.insert(format!("{role} {}", path.display()), hash);
        }
        Ok(hashes)
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

/// The settings that decide what a run computes: written to `config.json` and into
/// checkpoints, and compared when a run is resumed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunConfig {
    /// The data.
    pub data: DataChoice,
    /// Hidden widths.
    pub hidden: Vec<usize>,
    /// Hidden activation.
    pub activation: String,
    /// The `--layers` spec, when the network is given by one (then `hidden` and
    /// `activation` are unused).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub layers: Option<String>,
    /// Weight initialisation.
    pub init: String,
    /// `f32` or `f64`.
    pub dtype: String,
    /// Start weights, if any.
    pub init_from: Option<PathBuf>,
    /// The library's hyperparameters.
    pub train: TrainConfig,
}

impl RunConfig {
    /// The run the flags describe, every value checked (not the outputs, the threads or
    /// the data's contents): what a sweep checks for each of its points before it deletes
    /// or starts anything. Data paths are made absolute, so that a resume from another
    /// directory reads the same files.
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
        if let Some(spec) = &args.layers {
            if let Some(flag) = ["hidden", "activation"]
                .into_iter()
                .find(|flag| args.given.contains(*flag))
            {
                return Err(invalid(
                    if flag == "hidden" {
                        "--hidden"
                    } else {
                        "--activation"
                    },
                    "given",
                    "no --hidden or --activation with --layers (the spec names every layer)",
                ));
            }
            nabla::network::spec::parse(spec).map_err(CliError::Layers)?;
        }
        let train = TrainConfig {
            epochs: args.epochs,
            lr: args.lr,
            batch_size: args.batch_size,
            seed: args.seed,
            shuffle: args.shuffle,
            optimizer: args.optimizer,
            momentum: args.momentum,
            nesterov: args.nesterov,
            beta1: args.beta1,
            beta2: args.beta2,
            eps: args.eps,
            weight_decay: args.weight_decay,
            schedule: ScheduleConfig {
                kind: args.lr_schedule,
                step_size: args.lr_step_size,
                gamma: args.lr_gamma,
                lr_min: args.lr_min,
                patience: args.lr_patience,
                factor: args.lr_factor,
                warmup_epochs: args.warmup_epochs,
            },
            patience: args.patience,
            min_delta: args.min_delta,
            restore_best: !args.no_restore_best,
        };
        let run = RunConfig {
            data: DataChoice::from_args(&args.data)?,
            hidden: args.hidden.clone(),
            activation: args.activation.to_string(),
            // Canonical, so that a resume compares layers, not spacing or defaults.
            layers: match &args.layers {
                Some(spec) => Some(nabla::network::spec::canonical(
                    &nabla::network::spec::parse(spec).map_err(CliError::Layers)?,
                )),
                None => None,
            },
            init: args.init.to_string(),
            dtype: args.dtype.name().to_string(),
            init_from: args.init_from.as_deref().map(absolute),
            train,
        };
        run.validate()?;
        Ok(run)
    }

    /// Checks the library's hyperparameters.
    fn validate(&self) -> Result<(), CliError> {
        match self.train.validate() {
            Err(TrainError::InvalidSetting {
                setting,
                value,
                expected,
            }) => Err(invalid(flag_of(setting), value, expected)),
            _ => Ok(()),
        }
    }

    /// Checks that the data's files are there (a sweep's check before any work).
    pub fn check_data_present(&self) -> Result<(), CliError> {
        let files = self.data.files();
        if files.is_empty() {
            return Err(invalid(
                "--dataset",
                &self.data.dataset,
                "mnist-subset, mnist, or a folder holding train/test CSV or IDX files",
            ));
        }
        for (_, path) in files {
            if !path.is_file() {
                return Err(CliError::Data(nabla::DataError::Io {
                    path,
                    source: std::io::Error::new(std::io::ErrorKind::NotFound, "no such file"),
                }));
            }
        }
        Ok(())
    }
}

/// `path` made absolute against the current directory (links are not resolved).
pub(super) fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}

/// Everything `nabla train` needs, checked.
#[derive(Clone, Debug)]
pub struct TrainSettings {
    /// What the run computes.
    pub run: RunConfig,
    /// `--layers` as typed (errors point into it; `run.layers` is its canonical form).
    pub layers_typed: Option<String>,
    /// Hidden activation.
    pub activation: ActivationKind,
    /// Weight initialisation.
    pub init: Init,
    /// Float type.
    pub dtype: Dtype,
    /// Threads for the run (OpenBLAS's or nabla's own).
    pub threads: usize,
    /// What decided the thread count (`--threads`, the affinity, a limit ...).
    pub thread_source: ThreadSource,
    /// Who parallelises the GEMMs.
    pub gemm: GemmThreading,
    /// CSV log path.
    pub log: Option<PathBuf>,
    /// Model path.
    pub save: Option<PathBuf>,
    /// Resumable checkpoint path and how often (epochs) to write it.
    pub checkpoint: Option<(PathBuf, Option<usize>)>,
    /// The run folder.
    pub out: Option<RunFolder>,
    /// The checkpoint to resume from.
    pub resume: Option<PathBuf>,
    /// Only the final summary.
    pub quiet: bool,
    /// Flags nabla adjusted, to tell the user.
    pub warnings: Vec<String>,
    /// A resume that continues into a new run folder (`--resume a --out b`): the run's
    /// own outputs are not this run's to complete.
    pub continues_elsewhere: bool,
}

impl TrainSettings {
    /// Every file the run writes: the run folder's record and summary, the model (both
    /// files of an `.npz`), the log and the checkpoint.
    pub fn output_files(&self) -> Vec<PathBuf> {
        let mut files = Vec::new();
        if let Some(out) = &self.out {
            files.extend([out.config(), out.summary()]);
        }
        if let Some(path) = &self.save {
            files.extend(
                ModelFormat::of(path).map_or_else(|_| vec![path.clone()], |f| f.files(path)),
            );
        }
        files.extend(self.log.clone());
        files.extend(self.checkpoint.as_ref().map(|(path, _)| path.clone()));
        files
    }
}

/// Settings a resume may change: they do not alter what the epochs already run computed.
const CHANGEABLE_ON_RESUME: [&str; 4] = ["epochs", "patience", "min_delta", "no_restore_best"];

impl TrainSettings {
    /// Checks every flag; the first bad one is refused with its name and value. With
    /// `--resume`, `saved` is the run's recorded configuration, which the flags given may
    /// only change where a resume stays exact.
    pub fn from_args(args: &TrainArgs, saved: Option<&RunConfig>) -> Result<Self, CliError> {
        let given = RunConfig::from_args(args)?;
        let run = match saved {
            None => given,
            Some(saved) => merge_for_resume(saved, &given, args)?,
        };
        run.validate()?;
        let mut warnings = Vec::new();
        let hardware = threads::Limits::read().hardware();
        let requested = match args.threads {
            None => None,
            Some(0) => return Err(invalid("--threads", 0, "at least 1")),
            Some(asked) if asked > hardware.threads => {
                warnings.push(format!(
                    "--threads {asked} is more than this process may use ({hardware}); using {} (more threads than that only wait on each other)",
                    hardware.threads
                ));
                Some(hardware.threads)
            }
            Some(asked) => Some(asked),
        };
        let mut budget = threads::budget_for(requested);
        if args.threads.is_some_and(|asked| asked > hardware.threads) {
            // Capped: what capped it is the reason.
            budget.source = hardware.source.clone();
        }
        // The run's inputs are never written, by any output flag.
        for (_, path) in run.data.files() {
            protect_input(&path);
        }
        if let Some(path) = &run.init_from {
            protect_input(path);
        }
        let out = args.out.as_deref().map(RunFolder::new);
        let log = args
            .log
            .clone()
            .or_else(|| out.as_ref().map(RunFolder::log));
        let save = args
            .save
            .clone()
            .or_else(|| out.as_ref().map(RunFolder::model));
        for (flag, path) in [("--log", &log), ("--save", &save)] {
            if let Some(path) = path {
                refuse_other_runs_file(flag, path, out.as_ref())?;
            }
        }
        if let Some(path) = &log {
            if path.as_os_str() == "-" {
                return Err(invalid(
                    "--log",
                    "-",
                    "a file path (the epoch lines are on stdout already)",
                ));
            }
            check_output("--log", path)?;
        }
        if let Some(sidecar) = save.as_deref().and_then(checkpoint::foreign_companion) {
            return Err(CliError::OutputPath {
                flag: "--save",
                path: sidecar,
                source: std::io::Error::new(
                    std::io::ErrorKind::AlreadyExists,
                    "the .npz's sidecar would replace this file, which nabla did not write",
                ),
            });
        }
        if let Some(path) = &save {
            let format = ModelFormat::of(path)
                .map_err(|_| invalid("--save", path.display(), "a .safetensors or .npz path"))?;
            for file in format.files(path) {
                check_output("--save", &file)?;
            }
        }
        if let Some(path) = &run.init_from {
            if ModelFormat::of(path).is_err() || !path.is_file() {
                return Err(invalid(
                    "--init-from",
                    path.display(),
                    "an existing .safetensors or .npz file",
                ));
            }
        }
        if args.checkpoint_every == Some(0) {
            return Err(invalid("--checkpoint-every", 0, "at least 1"));
        }
        let checkpoint_path = match (&out, &save) {
            (Some(out), _) => Some(out.checkpoint()),
            (None, Some(save)) => Some(save.with_extension("checkpoint.safetensors")),
            (None, None) => None,
        };
        let checkpoint = match (checkpoint_path, args.checkpoint_every) {
            (Some(path), every) => {
                check_output("--checkpoint-every", &path)?;
                // A new run never writes over another run's resumable state.
                if saved.is_none() && out.is_none() && path.is_file() {
                    return Err(CliError::OutputPath {
                        flag: "--save",
                        path: path.clone(),
                        source: std::io::Error::new(
                            std::io::ErrorKind::AlreadyExists,
                            format!(
                                "a run's checkpoint is there already: resume it with --resume {}, or remove it to start afresh",
                                path.display()
                            ),
                        ),
                    });
                }
                Some((path, every))
            }
            (None, Some(_)) => {
                return Err(invalid(
                    "--checkpoint-every",
                    args.checkpoint_every.unwrap_or(0),
                    "a place to write it: --out DIR or --save FILE",
                ))
            }
            (None, None) => None,
        };
        check_distinct_outputs(
            out.as_ref(),
            save.as_deref(),
            log.as_deref(),
            checkpoint.as_ref().map(|(path, _)| path.as_path()),
        )?;
        // Cannot fail: the names were parsed from these same types' names.
        let activation = run
            .activation
            .parse()
            .map_err(|_| invalid("--activation", &run.activation, "an activation"))?;
        let init = run
            .init
            .parse()
            .map_err(|_| invalid("--init", &run.init, "an initialisation"))?;
        let dtype = if run.dtype == "f64" {
            Dtype::F64
        } else {
            Dtype::F32
        };
        Ok(Self {
            run,
            layers_typed: args.layers.clone(),
            activation,
            init,
            dtype,
            threads: budget.threads,
            thread_source: budget.source,
            gemm: args.gemm,
            log,
            save,
            checkpoint,
            out,
            resume: args.resume.clone(),
            quiet: args.quiet,
            warnings,
            continues_elsewhere: false,
        })
    }
}

/// The run to resume: the saved settings, with the changeable ones taken from the flags
/// given; any other flag given must agree with the saved run.
fn merge_for_resume(
    saved: &RunConfig,
    given: &RunConfig,
    args: &TrainArgs,
) -> Result<RunConfig, CliError> {
    let mut run = saved.clone();
    let was_given = |id: &str| args.given.contains(id);
    if was_given("epochs") {
        run.train.epochs = given.train.epochs;
    }
    if was_given("patience") {
        run.train.patience = given.train.patience;
    }
    if was_given("min_delta") {
        run.train.min_delta = given.train.min_delta;
    }
    if was_given("no_restore_best") {
        run.train.restore_best = given.train.restore_best;
    }
    // Every other flag the user gave is compared, by its value in both configurations.
    let saved_values = flatten(&serde_json::to_value(saved).unwrap_or_default());
    let given_values = flatten(&serde_json::to_value(given).unwrap_or_default());
    for id in &args.given {
        if CHANGEABLE_ON_RESUME.contains(&id.as_str()) {
            continue;
        }
        let key = config_key(id);
        if let (Some(before), Some(now)) = (saved_values.get(&key), given_values.get(&key)) {
            if before != now {
                return Err(CliError::ResumeDiffers {
                    flag: format!("--{}", id.replace('_', "-")),
                    saved: before.clone(),
                    given: now.clone(),
                });
            }
        }
    }
    Ok(run)
}

/// The path of a flag's value in a [`RunConfig`] flattened to `a.b.c` keys.
fn config_key(id: &str) -> String {
    match id {
        "dataset" | "train_file" | "test_file" | "train_rows" | "test_rows" | "classes"
        | "val_split" | "val_file" => {
            format!("data.{id}")
        }
        "hidden" | "activation" | "layers" | "init" | "dtype" | "init_from" => id.to_string(),
        "lr_schedule" => "train.schedule.kind".to_string(),
        "lr_step_size" => "train.schedule.step_size".to_string(),
        "lr_gamma" => "train.schedule.gamma".to_string(),
        "lr_min" => "train.schedule.lr_min".to_string(),
        "lr_patience" => "train.schedule.patience".to_string(),
        "lr_factor" => "train.schedule.factor".to_string(),
        "warmup_epochs" => "train.schedule.warmup_epochs".to_string(),
        other => format!("train.{other}"),
    }
}

/// `{"a": {"b": 1}}` as `{"a.b": "1"}`.
fn flatten(value: &serde_json::Value) -> BTreeMap<String, String> {
    let mut flat = BTreeMap::new();
    fn walk(prefix: &str, value: &serde_json::Value, flat: &mut BTreeMap<String, String>) {
        match value {
            serde_json::Value::Object(map) => {
                for (key, value) in map {
                    let path = if prefix.is_empty() {
                        key.clone()
                    } else {
                        format!("{prefix}.{key}")
                    };
                    walk(&path, value, flat);
                }
            }
            other => {
                flat.insert(prefix.to_string(), other.to_string());
            }
        }
    }
    walk("", value, &mut flat);
    flat
}

/// Refuses two outputs of one run that name the same file (`--save m.npz --log m.json`,
/// `--log DIR/config.json` with `--out DIR`): one would overwrite the other.
fn check_distinct_outputs(
    out: Option<&RunFolder>,
    save: Option<&Path>,
    log: Option<&Path>,
    checkpoint: Option<&Path>,
) -> Result<(), CliError> {
    let mut outputs: Vec<(&'static str, PathBuf)> = Vec::new();
    if let Some(path) = save {
        let files =
            ModelFormat::of(path).map_or_else(|_| vec![path.to_path_buf()], |f| f.files(path));
        outputs.extend(files.into_iter().map(|file| ("--save", file)));
    }
    outputs.extend(log.map(|path| ("--log", path.to_path_buf())));
    outputs.extend(checkpoint.map(|path| ("the checkpoint", path.to_path_buf())));
    if let Some(folder) = out {
        outputs.push(("the run folder's config.json", folder.config()));
        outputs.push(("the run folder's summary.json", folder.summary()));
    }
    for (index, (first, first_path)) in outputs.iter().enumerate() {
        for (second, second_path) in &outputs[index + 1..] {
            if same_file(first_path, second_path) {
                return Err(CliError::OutputClash {
                    first,
                    second,
                    path: second_path.clone(),
                });
            }
        }
    }
    Ok(())
}

/// Refuses, before any work, an output path that could not be written at the end: its
/// directory must exist and take a new file, and the path must be a regular file or
/// absent (not a directory, not a device such as /dev/full).
pub(super) fn check_output(flag: &'static str, path: &Path) -> Result<(), CliError> {
    check_writable(path).map_err(|source| CliError::OutputPath {
        flag,
        path: path.to_path_buf(),
        source,
    })
}
