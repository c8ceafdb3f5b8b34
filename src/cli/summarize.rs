//! `nabla summarize`: the final epoch of each training log as a Markdown and a CSV table.

use std::fmt::Write as _;

use nabla::atomic_file::{write_atomically, write_bytes_atomically};

use super::args::SummarizeArgs;
use super::log::LogTable;
use super::output::write_stdout;
use super::CliError;

/// Columns of the summary: taken from the log's last row, except `run` and `seconds`.
const COLUMNS: [&str; 13] = [
    "run",
    "hidden",
    "activation",
    "lr",
    "batch_size",
    "epochs",
    "dtype",
    "train_loss",
    "train_acc",
    "test_loss",
    "test_acc",
    "seconds",
    "dataset",
];

/// Reads every log and writes the tables.
pub fn run(args: &SummarizeArgs) -> Result<(), CliError> {
    let mut rows = Vec::new();
    for path in &args.logs {
        let log = LogTable::read(path)?;
        let total_seconds: f64 = log.numbers("seconds")?.iter().sum();
        let row = COLUMNS
            .iter()
            .map(|&column| match column {
                "run" => Ok(log.name()),
                "seconds" => Ok(format!("{total_seconds:.2}")),
                _ => log.last(column),
            })
            .collect::<Result<Vec<_>, _>>()?;
        rows.push(row);
    }
    let mut markdown = format!(
        "| {} |\n|{}\n",
        COLUMNS.join(" | "),
        "---|".repeat(COLUMNS.len())
    );
    for row in &rows {
        let _ = writeln!(markdown, "| {} |", row.join(" | "));
    }
    let write_error = |path: &std::path::Path| {
        let path = path.to_path_buf();
        move |source| CliError::Write { path, source }
    };
    match &args.markdown {
        Some(path) => {
            write_bytes_atomically(path, markdown.as_bytes()).map_err(write_error(path))?
        }
        None => {
            write_stdout(&markdown)?;
        }
    }
    if let Some(path) = &args.csv {
        write_atomically(path, |file| {
            let mut writer = csv::Writer::from_writer(file);
            writer.write_record(COLUMNS)?;
            for row in &rows {
                writer.write_record(row)?;
            }
            writer.flush()
        })
        .map_err(write_error(path))?;
    }
    Ok(())
}
