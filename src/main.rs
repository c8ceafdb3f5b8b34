//! The `nabla` command line: parse, run, print an error once, choose the exit code.

mod cli;

use std::process::ExitCode;

use cli::{CliError, Parsed};

fn main() -> ExitCode {
    cli::fit_openblas_to_address_space();
    let command = match cli::parse() {
        Parsed::Run(command) => command,
        Parsed::Print(text) => {
            // A closed stdout is a normal end here too; any other failure is reported.
            return match cli::write_stdout(&text) {
                Ok(_) => ExitCode::SUCCESS,
                Err(error) => refuse(&error.to_string()),
            };
        }
        Parsed::Refused(message) => return refuse(&message),
    };
    match cli::run(*command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(CliError::Interrupted(message)) => {
            cli::tell(&format!("nabla: {message}"));
            ExitCode::from(cli::INTERRUPTED_STATUS)
        }
        Err(error) => refuse(&error.to_string()),
    }
}

/// Prints `nabla: error: MESSAGE` as one line on stderr (control characters escaped, so
/// that input echoed in a message cannot move the cursor or ring the bell) and returns
/// exit status 2.
fn refuse(message: &str) -> ExitCode {
    let line: String = message
        .chars()
        .map(|c| match c {
            '\n' | '\r' | '\t' => ' '.to_string(),
            c if c.is_control() => c.escape_unicode().to_string(),
            c => c.to_string(),
        })
        .collect();
    cli::tell(&format!("nabla: error: {line}"));
    ExitCode::from(2)
}
