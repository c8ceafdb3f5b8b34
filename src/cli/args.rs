//! Raw command-line flags, as clap parses them; `settings` validates them.

use std::path::PathBuf;

use clap::error::ErrorKind;
use clap::{Args, Parser, Subcommand};
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
    Train(TrainArgs),
    /// Loss, accuracy and confusion matrix of a saved model on a data set.
    Eval(EvalArgs),
    /// One predicted label per row of a CSV file.
    Predict(PredictArgs),
    /// Draw loss and accuracy curves of training logs into an SVG.
    Plot(PlotArgs),
    /// Summarise training logs (final epoch of each) as Markdown and CSV tables.
    Summarize(SummarizeArgs),
    /// Write the assignment's CSV subset (first N training / test images) from MNIST IDX files.
    MakeSubset(MakeSubsetArgs),
}

/// Which data to use.
#[derive(Debug, Args, Clone)]
pub struct DataArgs {
    /// `mnist-subset` (the bundled 3,000/1,000 CSV subset), `mnist` (the bundled full
    /// MNIST), or a directory with train.csv[.gz] and test.csv[.gz] or the MNIST IDX files.
    #[arg(long, default_value = "mnist-subset", value_name = "NAME|DIR")]
    pub dataset: String,
    /// Explicit training CSV file (label last); needs --test-file, overrides --dataset.
    #[arg(long, value_name = "CSV", requires = "test_file")]
    pub train_file: Option<PathBuf>,
    /// Explicit test CSV file (label last); needs --train-file.
    #[arg(long, value_name = "CSV", requires = "train_file")]
    pub test_file: Option<PathBuf>,
    /// Use only the first N training rows.
    #[arg(long, value_name = "N")]
    pub train_rows: Option<usize>,
    /// Use only the first N test rows (at least 1: every epoch is evaluated on the test set).
    #[arg(long, value_name = "N")]
    pub test_rows: Option<usize>,
    /// Number of classes (labels are 0..classes).
    #[arg(long, default_value_t = nabla::data::MNIST_CLASSES)]
    pub classes: usize,
}

/// Flags of `nabla train`.
#[derive(Debug, Args, Clone)]
pub struct TrainArgs {
    /// The data.
    #[command(flatten)]
    pub data: DataArgs,
    /// Hidden layer widths, comma-separated (e.g. 384,256).
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "256",
        value_name = "N[,N...]"
    )]
    pub hidden: Vec<usize>,
    /// Activation of the hidden layers: sigmoid, relu or tanh.
    #[arg(long, default_value = "sigmoid")]
    pub activation: ActivationKind,
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
    /// L2 weight decay lambda (>= 0; adds 2*lambda*W to weight gradients).
    #[arg(long, default_value_t = 0.0, allow_negative_numbers = true)]
    pub weight_decay: f64,
    /// Momentum in [0, 1).
    #[arg(long, default_value_t = 0.0, allow_negative_numbers = true)]
    pub momentum: f64,
    /// Nesterov momentum (with --momentum > 0).
    #[arg(long)]
    pub nesterov: bool,
    /// Shuffle the training rows every epoch (seeded by --seed).
    #[arg(long)]
    pub shuffle: bool,
    /// Float type.
    #[arg(long, value_enum, default_value_t = Dtype::F32)]
    pub dtype: Dtype,
    /// Threads for OpenBLAS and rayon together (default: the number of cores; more than
    /// the cores are reduced to the cores, with a warning).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Who parallelises the GEMMs: openblas (OpenBLAS's own threads) or split (column
    /// blocks on nabla's threads, each a one-thread OpenBLAS call).
    #[arg(long, default_value = "openblas")]
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
    /// No progress bar and no per-epoch lines: only the final summary.
    #[arg(long, short)]
    pub quiet: bool,
}

/// Flags of `nabla eval`.
#[derive(Debug, Args)]
pub struct EvalArgs {
    /// The model (.safetensors, or .npz with its .json sidecar, from `nabla train --save`).
    #[arg(long, value_name = "FILE")]
    pub model: PathBuf,
    /// The data.
    #[command(flatten)]
    pub data: DataArgs,
    /// Float type.
    #[arg(long, value_enum, default_value_t = Dtype::F32)]
    pub dtype: Dtype,
}

/// Flags of `nabla predict`.
#[derive(Debug, Args)]
pub struct PredictArgs {
    /// The model (.safetensors, or .npz with its .json sidecar, from `nabla train --save`).
    #[arg(long, value_name = "FILE")]
    pub model: PathBuf,
    /// CSV rows of features (a trailing label column, if present, is ignored).
    #[arg(long, value_name = "FILE.csv")]
    pub input: PathBuf,
    /// Float type.
    #[arg(long, value_enum, default_value_t = Dtype::F32)]
    pub dtype: Dtype,
}

/// Flags of `nabla plot`.
#[derive(Debug, Args)]
pub struct PlotArgs {
    /// Training logs written by `nabla train --log`.
    #[arg(required = true, value_name = "LOG.csv")]
    pub logs: Vec<PathBuf>,
    /// The SVG to write.
    #[arg(long, short, default_value = "curves.svg")]
    pub output: PathBuf,
}

/// Flags of `nabla summarize`.
#[derive(Debug, Args)]
pub struct SummarizeArgs {
    /// Training logs written by `nabla train --log`.
    #[arg(required = true, value_name = "LOG.csv")]
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
    match Cli::try_parse() {
        Ok(cli) => Parsed::Run(Box::new(cli)),
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
