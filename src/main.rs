//! The `nabla` command line: parse, run, print an error once, choose the exit code.

mod cli;

use std::process::ExitCode;

fn main() -> ExitCode {
    let command = cli::parse();
    match cli::run(command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("nabla: error: {error:#}");
            ExitCode::from(2)
        }
    }
}
