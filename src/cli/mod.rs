//! The binary's commands: raw flags (`args`), their validation into library settings,
//! and one module per subcommand. Nothing here computes; it calls the library and prints.

mod args;
mod make_subset;

pub use args::parse;
use args::{Cli, Command};

/// An error for the user: printed once by `main`, which exits with status 2.
pub type CliError = Box<dyn std::error::Error + Send + Sync>;

/// Runs the parsed command line.
pub fn run(cli: Cli) -> Result<(), CliError> {
    match cli.command {
        Some(Command::MakeSubset(args)) => make_subset::run(&args),
        None => Ok(()),
    }
}
