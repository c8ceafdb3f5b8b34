//! Raw command-line flags, as clap parses them (validation happens in `settings`).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// nabla: a from-scratch MLP batch trainer on ndarray and OpenBLAS.
#[derive(Debug, Parser)]
#[command(name = "nabla", version, about)]
pub struct Cli {
    /// What to do (default: train).
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Write the assignment's CSV subset (first N training / test images) from MNIST IDX files.
    MakeSubset(MakeSubsetArgs),
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

/// Parses `std::env::args`, exiting with status 2 and clap's message on bad flags.
pub fn parse() -> Cli {
    Cli::parse()
}
