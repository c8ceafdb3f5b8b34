//! Raw command-line flags, as clap parses them; `settings` validates them.

use std::path::PathBuf;

use clap::error::ErrorKind;
use clap::parser::ValueSource;
use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand};
use nabla::data::preprocess::{Impute, Scale, Task};
use nabla::data::tabular::HeaderMode;
use nabla::optim::schedule::ScheduleKind;
use nabla::optim::OptimizerKind;
use nabla::threads::GemmThreading;
use nabla::{ActivationKind, Init};

use super::dtype::Dtype;

/// nabla: a from-scratch MLP batch trainer on ndarray and the system OpenBLAS.
///
/// With no subcommand it trains, by default the assignment's experiment (a): the bundled
/// 3,000/1,000 MNIST subset, 256 sigmoid hidden units, learning rate 0.01, batch 50,
/// 50 epochs, seed 10701.
#[derive(Debug, Parser)]
#[command(name = "nabla", version, about, args_conflicts_with_subcommands = true)]
pub struct Cli {
    /// What to do (default: train).
    #[command(subcommand)]
    pub command: Option<Command>,
    /// Training flags, when no subcommand is given.
    #[command(flatten)]
    pub train: TrainArgs,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Train a network and report loss and accuracy every epoch (the default).
    Train(Box<TrainArgs>),
    /// Loss, accuracy and confusion matrix of a saved model on a data set.
    Eval(EvalArgs),
    /// One predicted label per row of a CSV file.
    Predict(PredictArgs),
    /// Read a table as `--train-file` would and describe it: rows, header, delimiter,
    /// and each column's kind, missing values and range or categories.
    Inspect(InspectArgs),
    /// Draw loss and accuracy curves of training logs into an SVG.
    Plot(PlotArgs),
    /// Summarise training logs (final epoch of each) as Markdown and CSV tables.
    Summarize(SummarizeArgs),
    /// Write the assignment's CSV subset (first N training / test images) from MNIST IDX files.
    MakeSubset(MakeSubsetArgs),
    /// Run a grid (or a random sample) of training runs: locally N at a time, as a list of
    /// commands for GNU parallel, or as a Slurm job array; then tables, curves and a page.
    Sweep(Box<SweepArgs>),
}

/// Which data to use.
#[derive(Debug, Args, Clone)]
pub struct DataArgs {
    /// `mnist-subset` (the bundled 3,000/1,000 CSV subset), `mnist` (the bundled full
    /// MNIST), or a directory with train.csv[.gz] and test.csv[.gz] or the MNIST IDX files.
    #[arg(long, default_value = "mnist-subset", value_name = "NAME|DIR")]
    pub dataset: String,
    /// Training data, overriding --dataset: the assignment's CSV (no header, label last),
    /// or any table: CSV or TSV (plain or gzip) with or without a header, NumPy .npy
    /// (label last) or .npz (X and y). Needs --test-file or --test-split.
    #[arg(long, value_name = "FILE")]
    pub train_file: Option<PathBuf>,
    /// Test data in the layout of --train-file.
    #[arg(long, value_name = "FILE", requires = "train_file")]
    pub test_file: Option<PathBuf>,
    /// Hold out this fraction (0 < F < 1) of the --train-file rows as the test set,
    /// stratified by class and chosen with --seed.
    #[arg(
        long,
        value_name = "F",
        requires = "train_file",
        conflicts_with = "test_file"
    )]
    pub test_split: Option<f64>,
    /// Tables: the label column, by name or 0-based index (negative from the end)
    /// [default: the last column].
    #[arg(long, value_name = "NAME|INDEX", allow_hyphen_values = true)]
    pub label: Option<String>,
    /// Tables: columns to leave out, comma-separated.
    #[arg(long, value_delimiter = ',', value_name = "NAME[,NAME...]")]
    pub ignore: Vec<String>,
    /// Tables: columns to one-hot encode even if they hold numbers, comma-separated
    /// (text columns are categorical anyway).
    #[arg(long, value_delimiter = ',', value_name = "NAME[,NAME...]")]
    pub categorical: Vec<String>,
    /// Tables: whether the first row is a header: auto (detected), yes or no.
    #[arg(long, value_name = "auto|yes|no")]
    pub header: Option<HeaderMode>,
    /// Tables: the field delimiter (one character, or `tab`) [default: tab for .tsv,
    /// else sniffed from the first lines].
    #[arg(long, value_name = "CHAR")]
    pub delimiter: Option<String>,
    /// Tables: scaling of numeric columns, fitted on the training rows and kept in the
    /// model: standard, minmax or none [default: standard].
    #[arg(long, value_name = "standard|minmax|none")]
    pub scale: Option<Scale>,
    /// Tables: classification (text or integer labels) or regression (a numeric label;
    /// MSE on the standardised target, RMSE, MAE and R² reported) [default:
    /// classification; a label with fractions asks for regression].
    #[arg(long, value_name = "classification|regression")]
    pub task: Option<Task>,
    /// Tables: filling of missing numeric values (empty, NA, N/A, NaN, null, None, ?),
    /// fitted on the training rows: median, mean or none (refuse them) [default: median].
    #[arg(long, value_name = "median|mean|none")]
    pub impute: Option<Impute>,
    /// Use only the first N training rows.
    #[arg(long, value_name = "N")]
    pub train_rows: Option<usize>,
    /// Use only the first N test rows (at least 1: every epoch is evaluated on the test set).
    #[arg(long, value_name = "N")]
    pub test_rows: Option<usize>,
    /// Number of classes (labels are 0..classes).
    #[arg(long, default_value_t = nabla::data::MNIST_CLASSES)]
    pub classes: usize,
    /// Hold out this fraction (0 < F < 1) of the training rows as a validation set,
    /// stratified by class and chosen with --seed.
    #[arg(long, value_name = "F", conflicts_with = "val_file")]
    pub val_split: Option<f64>,
    /// A validation set (CSV, label last, like --train-file).
    #[arg(long, value_name = "CSV")]
    pub val_file: Option<PathBuf>,
}

/// Flags of `nabla train`.
#[derive(Debug, Args, Clone)]
pub struct TrainArgs {
    /// The data.
    #[command(flatten)]
    pub data: DataArgs,
    /// Hidden layer widths, comma-separated (e.g. 384,256); given once.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "256",
        value_name = "N[,N...]",
        action = clap::ArgAction::Set
    )]
    pub hidden: Vec<usize>,
    /// Activation of the hidden layers: sigmoid, relu, tanh or identity.
    #[arg(long, default_value = "sigmoid")]
    pub activation: ActivationKind,
    /// The network in PyTorch's words, instead of --hidden/--activation: e.g.
    /// "Conv2d(32, 3, padding=1), ReLU, MaxPool2d(2), Flatten, Linear(128), ReLU,
    /// Dropout(0.25), Linear(10)". Input widths come from the data (MNIST: 1x28x28).
    #[arg(long, value_name = "SPEC")]
    pub layers: Option<String>,
    /// Learning rate (> 0).
    #[arg(long, default_value_t = 0.01, allow_negative_numbers = true)]
    pub lr: f64,
    /// Rows per gradient step (>= 1).
    #[arg(long, default_value_t = 50)]
    pub batch_size: usize,
    /// Passes over the training set (>= 1).
    #[arg(long, default_value_t = 50)]
    pub epochs: usize,
    /// Seed of the weight initialisation and of shuffling.
    #[arg(long, default_value_t = nabla::DEFAULT_SEED)]
    pub seed: u64,
    /// Weight initialisation: zeros, uniform, xavier, he or orthogonal.
    #[arg(long, default_value = "uniform")]
    pub init: Init,
    /// Optimizer: sgd, adam or adamw (as torch.optim.SGD / Adam / AdamW).
    #[arg(long, default_value = "sgd")]
    pub optimizer: OptimizerKind,
    /// Weight decay lambda >= 0, on weight matrices only: sgd and adam add 2*lambda*W to
    /// the gradient (L2); adamw multiplies W by 1 - lr*lambda (decoupled, as AdamW).
    #[arg(long, default_value_t = 0.0, allow_negative_numbers = true)]
    pub weight_decay: f64,
    /// sgd: momentum in [0, 1).
    #[arg(long, default_value_t = 0.0, allow_negative_numbers = true)]
    pub momentum: f64,
    /// sgd: Nesterov momentum (with --momentum > 0).
    #[arg(long)]
    pub nesterov: bool,
    /// adam/adamw: decay of the first moment, in [0, 1).
    #[arg(long, default_value_t = 0.9, allow_negative_numbers = true)]
    pub beta1: f64,
    /// adam/adamw: decay of the second moment, in [0, 1).
    #[arg(long, default_value_t = 0.999, allow_negative_numbers = true)]
    pub beta2: f64,
    /// adam/adamw: added to the denominator after the square root.
    #[arg(long, default_value_t = 1e-8, allow_negative_numbers = true)]
    pub eps: f64,
    /// Learning-rate schedule, stepped once per epoch: constant, step (StepLR), cosine
    /// (CosineAnnealingLR over the epochs) or plateau (ReduceLROnPlateau on the monitored
    /// loss).
    #[arg(long, default_value = "constant")]
    pub lr_schedule: ScheduleKind,
    /// step: epochs between reductions.
    #[arg(long, default_value_t = 10)]
    pub lr_step_size: usize,
    /// step: the factor of each reduction.
    #[arg(long, default_value_t = 0.1, allow_negative_numbers = true)]
    pub lr_gamma: f64,
    /// cosine: the final learning rate; plateau: the smallest.
    #[arg(long, default_value_t = 0.0, allow_negative_numbers = true)]
    pub lr_min: f64,
    /// plateau: epochs without improvement before a reduction.
    #[arg(long, default_value_t = 10)]
    pub lr_patience: usize,
    /// plateau: the factor of each reduction.
    #[arg(long, default_value_t = 0.1, allow_negative_numbers = true)]
    pub lr_factor: f64,
    /// Linear warm-up: the first N epochs use lr*k/(N+1) in epoch k, then the schedule.
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub warmup_epochs: usize,
    /// Early stopping: stop when the monitored loss (validation, else training) has not
    /// improved by more than --min-delta for N epochs [default: off].
    #[arg(long, value_name = "N")]
    pub patience: Option<usize>,
    /// Early stopping: the improvement that counts.
    #[arg(long, default_value_t = 0.0, allow_negative_numbers = true)]
    pub min_delta: f64,
    /// Early stopping: keep the last epoch's weights instead of the best epoch's.
    #[arg(long)]
    pub no_restore_best: bool,
    /// Shuffle the training rows every epoch (seeded by --seed).
    #[arg(long)]
    pub shuffle: bool,
    /// Float type.
    #[arg(long, value_enum, default_value_t = Dtype::F32)]
    pub dtype: Dtype,
    /// Threads for the run (default: what this process may use: the cores, its CPU
    /// affinity and cgroup CPU quota, and OPENBLAS_NUM_THREADS / OMP_NUM_THREADS /
    /// RAYON_NUM_THREADS when set; the run header says which decided). More than the
    /// CPUs this process may use are reduced to them, with a warning.
    #[arg(long)]
    pub threads: Option<usize>,
    /// Who parallelises the GEMMs: auto (sliced wherever a hidden layer is wide enough to
    /// split, split otherwise; the run header says which), openblas (OpenBLAS's own
    /// threads), split (each product's column blocks on nabla's threads) or sliced (each
    /// core owns a slice of every hidden layer for the whole step; next to other work
    /// the step runs on one core, with the same numbers). Every choice but openblas uses
    /// one-thread OpenBLAS calls, so that the results depend on the settings alone.
    #[arg(long, default_value = "auto")]
    pub gemm: GemmThreading,
    /// Write one CSV row per epoch here (flushed after each epoch).
    #[arg(long, value_name = "FILE.csv")]
    pub log: Option<PathBuf>,
    /// Save the trained model here, in PyTorch state_dict names: FILE.safetensors (one
    /// file, architecture inside) or FILE.npz (plus a FILE.json sidecar). Written
    /// atomically, also on Ctrl-C; the path is checked before training starts.
    #[arg(long, value_name = "FILE")]
    pub save: Option<PathBuf>,
    /// Start from the weights in this .safetensors or .npz file (same architecture; files
    /// written by PyTorch or NumPy in state_dict names work too).
    #[arg(long, value_name = "FILE")]
    pub init_from: Option<PathBuf>,
    /// Put the run in DIR: config.json, log.csv, summary.json, model.safetensors and
    /// checkpoint.safetensors (DIR is created; it must not hold a run already).
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Write a resumable checkpoint every N epochs (and on Ctrl-C): DIR/checkpoint.safetensors
    /// with --out, else beside --save (m.checkpoint.safetensors).
    #[arg(long, value_name = "N")]
    pub checkpoint_every: Option<usize>,
    /// Continue a run exactly where it stopped, from a checkpoint file or a run folder. Its
    /// settings are taken from the checkpoint; --epochs, --patience, --min-delta,
    /// --no-restore-best and the output flags may change, any other flag given must agree.
    #[arg(long, value_name = "CHECKPOINT|DIR")]
    pub resume: Option<PathBuf>,
    /// No progress bar and no per-epoch lines: only the final summary.
    #[arg(long, short)]
    pub quiet: bool,
    /// The flags given on the command line (filled after parsing; a resume compares them).
    #[arg(skip)]
    pub given: std::collections::BTreeSet<String>,
}

/// Flags of `nabla eval`.
#[derive(Debug, Args)]
pub struct EvalArgs {
    /// The model (.safetensors, or .npz with its .json sidecar, from `nabla train --save`),
    /// or a run folder (its model.safetensors).
    #[arg(long, value_name = "FILE")]
    pub model: PathBuf,
    /// The data.
    #[command(flatten)]
    pub data: DataArgs,
    /// Float type.
    #[arg(long, value_enum, default_value_t = Dtype::F32)]
    pub dtype: Dtype,
    /// Print JSON (losses, accuracies, per-class precision/recall/F1, macro averages and
    /// the confusion matrix) instead of text.
    #[arg(long)]
    pub json: bool,
    /// The seed that chooses the --val-split rows. Default: the seed the model was trained
    /// with (nabla train records it in the model and the checkpoint), else 10701.
    #[arg(long)]
    pub seed: Option<u64>,
}

/// Flags of `nabla predict`.
#[derive(Debug, Args)]
pub struct PredictArgs {
    /// The model (.safetensors, or .npz with its .json sidecar, from `nabla train --save`),
    /// or a run folder (its model.safetensors).
    #[arg(long, value_name = "FILE")]
    pub model: PathBuf,
    /// The rows to predict: for a model trained on a table, a table with its columns (in
    /// any order; the label column may be there); else CSV rows of features (a trailing
    /// label column, if present, is ignored).
    #[arg(long, value_name = "FILE")]
    pub input: PathBuf,
    /// Write one probability column per class (named by the class) instead of labels.
    #[arg(long)]
    pub proba: bool,
    /// Write CSV with a header row to FILE (atomically) instead of stdout.
    #[arg(long, short, value_name = "FILE.csv")]
    pub output: Option<PathBuf>,
    /// Tables: whether the first row is a header [default: when it holds the model's
    /// column names].
    #[arg(long, value_name = "auto|yes|no")]
    pub header: Option<HeaderMode>,
    /// Tables: the field delimiter [default: tab for .tsv, else sniffed].
    #[arg(long, value_name = "CHAR")]
    pub delimiter: Option<String>,
    /// Float type.
    #[arg(long, value_enum, default_value_t = Dtype::F32)]
    pub dtype: Dtype,
}

/// Flags of `nabla inspect`.
#[derive(Debug, Args)]
pub struct InspectArgs {
    /// The table (CSV, TSV, gzip, .npy or .npz).
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// Whether the first row is a header: auto (detected), yes or no.
    #[arg(long, value_name = "auto|yes|no")]
    pub header: Option<HeaderMode>,
    /// The field delimiter (one character, or `tab`) [default: tab for .tsv, else sniffed].
    #[arg(long, value_name = "CHAR")]
    pub delimiter: Option<String>,
    /// Columns to read as categories even if they hold numbers, comma-separated.
    #[arg(long, value_delimiter = ',', value_name = "NAME[,NAME...]")]
    pub categorical: Vec<String>,
}

/// Flags of `nabla plot`.
#[derive(Debug, Args)]
pub struct PlotArgs {
    /// Training logs written by `nabla train --log`, or run folders (`--out DIR`).
    #[arg(value_name = "LOG.csv|DIR", required_unless_present = "model")]
    pub logs: Vec<PathBuf>,
    /// The SVG to write.
    #[arg(long, short, default_value = "curves.svg")]
    pub output: PathBuf,
    /// Draw this model's confusion matrix on the test set as a heat map, instead of curves.
    #[arg(long, value_name = "FILE", conflicts_with = "logs")]
    pub model: Option<PathBuf>,
    /// The data (for --model).
    #[command(flatten)]
    pub data: DataArgs,
    /// Float type (for --model).
    #[arg(long, value_enum, default_value_t = Dtype::F32)]
    pub dtype: Dtype,
}

/// Flags of `nabla summarize`.
#[derive(Debug, Args)]
pub struct SummarizeArgs {
    /// Training logs written by `nabla train --log`, or run folders (`--out DIR`).
    #[arg(required = true, value_name = "LOG.csv|DIR")]
    pub logs: Vec<PathBuf>,
    /// Write the Markdown table here (default: stdout).
    #[arg(long, value_name = "FILE.md")]
    pub markdown: Option<PathBuf>,
    /// Write the CSV table here.
    #[arg(long, value_name = "FILE.csv")]
    pub csv: Option<PathBuf>,
}

/// Flags of `nabla make-subset`.
#[derive(Debug, Args)]
pub struct MakeSubsetArgs {
    /// Directory with the four MNIST IDX files.
    #[arg(long, default_value = "data/mnist")]
    pub mnist: PathBuf,
    /// Output directory for train.csv.gz and test.csv.gz.
    #[arg(long, short, default_value = "data/mnist-subset")]
    pub out: PathBuf,
    /// Training rows to take.
    #[arg(long, default_value_t = nabla::data::SUBSET_TRAIN_ROWS)]
    pub train_rows: usize,
    /// Test rows to take.
    #[arg(long, default_value_t = nabla::data::SUBSET_TEST_ROWS)]
    pub test_rows: usize,
}

/// What the command line asked for: a command to run, or text clap has already
/// composed (help, version), or a refusal.
pub enum Parsed {
    /// Run this.
    Run(Box<Cli>),
    /// `--help` or `--version`: print this on stdout and exit 0.
    Print(String),
    /// A flag clap refused, as one line (without the `nabla: error:` prefix).
    Refused(String),
}

/// Parses `std::env::args`. clap's own refusals (unknown flag, bad value, missing
/// argument) become one line, like nabla's own errors.
pub fn parse() -> Parsed {
    let parsed = Cli::command()
        .try_get_matches()
        .and_then(|matches| Ok((Cli::from_arg_matches(&matches)?, matches)));
    match parsed {
        Ok((mut cli, matches)) => {
            // Which training flags the user gave (a resume takes the others from the run).
            let train = matches.subcommand_matches("train").unwrap_or(&matches);
            let given: std::collections::BTreeSet<String> = train
                .ids()
                .filter(|id| train.value_source(id.as_str()) == Some(ValueSource::CommandLine))
                .map(|id| id.to_string())
                .collect();
            match &mut cli.command {
                Some(Command::Train(args)) => args.given = given,
                _ => cli.train.given = given,
            }
            Parsed::Run(Box::new(cli))
        }
        Err(error) => match error.kind() {
            ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => {
                Parsed::Print(error.render().to_string())
            }
            _ => Parsed::Refused(one_line(&error.render().to_string())),
        },
    }
}

/// clap's message up to its first blank line (before the usage and the hint), as one
/// line: `invalid value 'x' for '--lr <LR>': invalid float literal`.
fn one_line(message: &str) -> String {
    message
        .lines()
        .take_while(|line| !line.trim().is_empty())
        .map(str::trim)
        .collect::<Vec<_>>()
        .join(" ")
        .trim_start_matches("error: ")
        .to_string()
}

/// Flags of `nabla sweep` (`scripts/sweep.sh` passes its flags here).
#[derive(Debug, Args, Clone)]
pub struct SweepArgs {
    /// Hidden widths per run, space-separated (e.g. "256 384,256").
    #[arg(long, value_name = "LIST")]
    pub hidden: Option<String>,
    /// Activations, space-separated.
    #[arg(long, value_name = "LIST")]
    pub activation: Option<String>,
    /// Networks in `nabla train --layers` words, separated by ';' (instead of --hidden
    /// and --activation), e.g. "Linear(128), ReLU, Linear(10); Conv2d(8, 3), ReLU,
    /// Flatten, Linear(10)".
    #[arg(long, value_name = "LIST")]
    pub layers: Option<String>,
    /// Learning rates, space-separated; with --random also a range,
    /// "loguniform:1e-4:1e-1" or "uniform:0.01:0.1".
    #[arg(long, value_name = "LIST")]
    pub lr: Option<String>,
    /// Batch sizes, space-separated.
    #[arg(long, value_name = "LIST")]
    pub batch_size: Option<String>,
    /// Optimizers, space-separated (sgd adam adamw).
    #[arg(long, value_name = "LIST")]
    pub optimizer: Option<String>,
    /// Epochs per run.
    #[arg(long, default_value_t = 50)]
    pub epochs: usize,
    /// Seed of every run.
    #[arg(long, default_value_t = nabla::DEFAULT_SEED)]
    pub seed: u64,
    /// Data set of every run (mnist-subset, mnist or a directory).
    #[arg(long, default_value = "mnist-subset")]
    pub dataset: String,
    /// Float type of every run.
    #[arg(long, default_value = "f32")]
    pub dtype: String,
    /// Hold out this fraction of each run's training rows for validation (results are
    /// then ranked by validation accuracy).
    #[arg(long, value_name = "F")]
    pub val_split: Option<f64>,
    /// More `nabla train` flags for every run, in one quoted string.
    #[arg(long, value_name = "FLAGS", allow_hyphen_values = true)]
    pub extra: Option<String>,
    /// Sample this many points from the lists and ranges instead of the whole grid.
    #[arg(long, value_name = "K")]
    pub random: Option<usize>,
    /// Seed of the random sample.
    #[arg(long, default_value_t = 1)]
    pub random_seed: u64,
    /// Runs at a time (default: as many as cores, one thread each, or fewer runs with more
    /// threads when there are fewer runs than cores).
    #[arg(long, value_name = "N")]
    pub jobs: Option<usize>,
    /// Threads per run (default: cores / jobs).
    #[arg(long, value_name = "N")]
    pub threads: Option<usize>,
    /// The sweep's folder: plan.json, runs/NAME/ (one run folder each), results.
    #[arg(long, default_value = "runs/sweep", value_name = "DIR")]
    pub out: PathBuf,
    /// Run every point again, even those that finished.
    #[arg(long)]
    pub force: bool,
    /// Print one complete `nabla train` command per point (for GNU parallel, xargs or any
    /// scheduler) and write the plan; run nothing.
    #[arg(long)]
    pub list: bool,
    /// Build the results (tables, curves, page) from the run folders in DIR, however they
    /// were run.
    #[arg(long, value_name = "DIR", exclusive = true)]
    pub collect: Option<PathBuf>,
    /// Run point I of the plan in --out (a Slurm array task, or by hand).
    #[arg(
        long,
        value_name = "I",
        conflicts_with_all = [
            "hidden", "activation", "layers", "lr", "batch_size", "optimizer", "epochs", "seed",
            "dataset", "dtype", "val_split", "extra", "random", "random_seed", "jobs",
            "threads", "force", "list", "slurm", "time", "partition", "mem",
        ]
    )]
    pub task_id: Option<usize>,
    /// Write a Slurm job-array batch script (DIR/sweep.sbatch), one task per point.
    #[arg(long)]
    pub slurm: bool,
    /// Submit the script with sbatch.
    #[arg(long, requires = "slurm")]
    pub submit: bool,
    /// Wait for the submitted array to finish, then collect the results.
    #[arg(long, requires = "submit")]
    pub wait: bool,
    /// Slurm: the time limit of each task (#SBATCH --time).
    #[arg(long, value_name = "TIME")]
    pub time: Option<String>,
    /// Slurm: the partition (#SBATCH --partition).
    #[arg(long, value_name = "NAME")]
    pub partition: Option<String>,
    /// Slurm: the memory of each task (#SBATCH --mem).
    #[arg(long, value_name = "SIZE")]
    pub mem: Option<String>,
}
