//! The binary's commands: raw flags (`args`), their validation (`settings`), and one
//! module per subcommand. Nothing here computes: it calls the library and prints.

mod address_space;
mod args;
mod dtype;
mod error;
mod eval;
mod inspect;
mod log;
mod make_subset;
mod output;
mod plot;
mod predict;
mod progress;
mod run_folder;
mod settings;
mod signals;
mod summarize;
mod sweep;
mod train;

pub use address_space::fit_openblas_to_address_space;
use args::Command;
pub use args::{parse, Cli, Parsed};
pub use error::CliError;
pub use output::{tell, write_stdout};
pub use signals::INTERRUPTED_STATUS;

/// Runs the parsed command line.
pub fn run(cli: Cli) -> Result<(), CliError> {
    match cli.command {
        None => train::run(&cli.train),
        Some(Command::Train(args)) => train::run(&args),
        Some(Command::Eval(args)) => eval::run(&args),
        Some(Command::Predict(args)) => predict::run(&args),
        Some(Command::Inspect(args)) => inspect::run(&args),
        Some(Command::Plot(args)) => plot::run(&args),
        Some(Command::Summarize(args)) => summarize::run(&args),
        Some(Command::MakeSubset(args)) => make_subset::run(&args),
        Some(Command::Sweep(args)) => sweep::run(&args),
    }
}
