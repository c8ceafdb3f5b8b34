//! `nabla inspect FILE`: a table as `--train-file` reads it: rows, header, and per
//! column its kind, missing values and range or categories; with the seconds the read
//! took (what `scripts/bench_load.sh` compares with pandas).

use std::fmt::Write as _;
use std::time::Instant;

use nabla::atomic_file::protect_input;
use nabla::data::tabular::{Column, ReadOptions, Table, MISSING_CODE};

use super::args::InspectArgs;
use super::output::write_stdout;
use super::settings::delimiter_byte;
use super::CliError;

/// Categories listed per text column (names and values are printed escaped, so that a
/// quoted line end cannot break the listing).
const SHOWN_LEVELS: usize = 5;

/// Reads the table and prints its description.
pub fn run(args: &InspectArgs) -> Result<(), CliError> {
    protect_input(&args.file);
    let options = ReadOptions {
        delimiter: args.delimiter.as_deref().map(delimiter_byte).transpose()?,
        header: args.header.unwrap_or_default(),
        text_columns: args.categorical.clone(),
        expected_names: Vec::new(),
    };
    let started = Instant::now();
    let table = Table::read(&args.file, &options)?;
    let seconds = started.elapsed().as_secs_f64();
    write_stdout(&describe(&table, seconds)).map(drop)
}

/// The description: one line for the table, one per column.
fn describe(table: &Table, seconds: f64) -> String {
    let mut text = format!(
        "{}: {} rows, {} columns, {}, read in {seconds:.3} s\n",
        table.path.display(),
        table.rows(),
        table.names.len(),
        if table.header {
            "header row"
        } else {
            "no header (columns named column1, ...)"
        },
    );
    let width = table
        .names
        .iter()
        .map(|n| n.chars().count())
        .max()
        .unwrap_or(0)
        .max(6);
    let _ = writeln!(
        text,
        "{:<width$}  {:<7}  {:>7}  values",
        "column", "kind", "missing"
    );
    for (name, column) in table.names.iter().zip(&table.columns) {
        let missing = column.missing();
        let (kind, values) = match column {
            Column::Numbers(values) => {
                let present = values.iter().filter(|v| !v.is_nan());
                let (min, max, sum, count) = present.fold(
                    (f64::INFINITY, f64::NEG_INFINITY, 0.0, 0usize),
                    |(min, max, sum, count), &v| (min.min(v), max.max(v), sum + v, count + 1),
                );
                let summary = if count == 0 {
                    "all missing".to_string()
                } else {
                    format!("min {min} mean {:.6} max {max}", sum / count as f64)
                };
                ("numeric", summary)
            }
            Column::Text {
                codes,
                levels,
                numeric_values,
                first_text,
            } => {
                let mut counts = vec![0usize; levels.len()];
                for &code in codes.iter().filter(|&&c| c != MISSING_CODE) {
                    counts[code as usize] += 1;
                }
                let mut order: Vec<usize> = (0..levels.len()).collect();
                order.sort_by(|&a, &b| counts[b].cmp(&counts[a]).then(levels[a].cmp(&levels[b])));
                let shown: Vec<String> = order
                    .iter()
                    .take(SHOWN_LEVELS)
                    .map(|&k| format!("{} ({})", levels[k].escape_debug(), counts[k]))
                    .collect();
                let more = if levels.len() > SHOWN_LEVELS {
                    ", ..."
                } else {
                    ""
                };
                let mut summary =
                    format!("{} categories: {}{more}", levels.len(), shown.join(", "));
                let present = codes.len() - missing;
                if *numeric_values > present - numeric_values {
                    if let Some((line, value)) = first_text {
                        let _ = write!(summary, "; numbers with text (line {line}: '{value}')");
                    }
                } else if levels.len() == present && present >= 20 {
                    summary.push_str("; a different value on every row (an ID?)");
                }
                ("text", summary)
            }
        };
        let name = name.escape_debug().to_string();
        let _ = writeln!(text, "{name:<width$}  {kind:<7}  {missing:>7}  {values}");
    }
    text
}
