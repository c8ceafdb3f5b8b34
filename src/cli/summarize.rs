//! `nabla summarize`: the final epoch of each training log as a Markdown and a CSV table.

use std::fmt::Write as _;

use nabla::atomic_file::{protect_input, write_atomically, write_bytes_atomically};

use super::args::SummarizeArgs;
use super::log::LogTable;
use super::output::write_stdout;
use super::run_folder::{claim_outputs, log_of};
use super::CliError;

/// Columns of the summary: taken from the log's last row, except `run` and `seconds`
/// (the sum over the epochs); `lr` is the run's `--lr` (the log's `base_lr`). For a
/// regression run the `*_acc` columns hold its R² (higher is better, as accuracy).
pub const COLUMNS: [&str; 17] = [
    "run",
    "hidden",
    "activation",
    "lr",
    "batch_size",
    "epochs",
    "dtype",
    "optimizer",
    "train_loss",
    "train_acc",
    "val_loss",
    "val_acc",
    "test_loss",
    "test_acc",
    "best_epoch",
    "seconds",
    "dataset",
];

/// The epoch of the lowest validation loss (training loss without a validation set).
fn best_epoch(log: &LogTable) -> Result<String, CliError> {
    let epochs = log.numbers("epoch")?;
    let validation = log.has("val_loss") && !log.last("val_loss")?.is_empty();
    let losses = log.numbers(if validation { "val_loss" } else { "train_loss" })?;
    Ok(epochs
        .iter()
        .zip(&losses)
        .min_by(|a, b| a.1.total_cmp(b.1))
        .map_or_else(String::new, |(epoch, _)| epoch.to_string()))
}

/// The summary row of one log (or run folder), in [`COLUMNS`] order.
pub fn summary_row(path: &std::path::Path) -> Result<Vec<String>, CliError> {
    let log = LogTable::read(path)?;
    let total_seconds: f64 = log.numbers("seconds")?.iter().sum();
    let best_epoch = best_epoch(&log)?;
    COLUMNS
        .iter()
        .map(|&column| match column {
            "run" => Ok(log.name()),
            "seconds" => Ok(format!("{total_seconds:.2}")),
            "best_epoch" => Ok(best_epoch.clone()),
            "lr" if log.has("base_lr") => Ok(log.last("base_lr")?),
            // A regression run's score is its R².
            column if column.ends_with("_acc") && log.has(&column.replace("_acc", "_r2")) => {
                Ok(log.last(&column.replace("_acc", "_r2"))?)
            }
            // Columns older logs lack are left empty.
            column if !log.has(column) => Ok(String::new()),
            column => Ok(log.last(column)?),
        })
        .collect()
}

/// `rows` under `columns` as a Markdown table.
pub fn markdown_table(columns: &[&str], rows: &[Vec<String>]) -> String {
    let mut markdown = format!(
        "| {} |\n|{}\n",
        columns.join(" | "),
        "---|".repeat(columns.len())
    );
    for row in rows {
        let _ = writeln!(markdown, "| {} |", row.join(" | "));
    }
    markdown
}

/// `rows` under `columns` as CSV, written to `path` atomically.
pub fn write_csv(
    path: &std::path::Path,
    columns: &[&str],
    rows: &[Vec<String>],
) -> Result<(), CliError> {
    write_atomically(path, |file| {
        let mut writer = csv::Writer::from_writer(file);
        writer.write_record(columns)?;
        for row in rows {
            writer.write_record(row)?;
        }
        writer.flush()
    })
    .map_err(|source| CliError::Write {
        path: path.to_path_buf(),
        source,
    })
}

/// Reads every log and writes the tables.
pub fn run(args: &SummarizeArgs) -> Result<(), CliError> {
    for path in &args.logs {
        protect_input(&log_of(path));
    }
    let outputs: Vec<(&'static str, &std::path::Path)> = [
        args.markdown.as_deref().map(|path| ("--markdown", path)),
        args.csv.as_deref().map(|path| ("--csv", path)),
    ]
    .into_iter()
    .flatten()
    .collect();
    let _locks = claim_outputs(&outputs)?;
    let rows = args
        .logs
        .iter()
        .map(|path| summary_row(path))
        .collect::<Result<Vec<_>, _>>()?;
    let markdown = markdown_table(&COLUMNS, &rows);
    match &args.markdown {
        Some(path) => {
            write_bytes_atomically(path, markdown.as_bytes()).map_err(|source| CliError::Write {
                path: path.clone(),
                source,
            })?
        }
        None => {
            write_stdout(&markdown)?;
        }
    }
    if let Some(path) = &args.csv {
        write_csv(path, &COLUMNS, &rows)?;
    }
    Ok(())
}
