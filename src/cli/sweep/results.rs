//! A sweep's results, built from its run folders however they were run: `results.md`
//! (no times, so that the same sweep gives the same file), `results.csv` (with times and
//! each run's command line), `curves.svg`, and `results.html`, one self-contained page
//! (nothing loaded from elsewhere) with the sortable table, the curves and the best run's
//! confusion matrix. Runs are ranked by validation accuracy where they have a validation
//! set, else by test accuracy, best first.

use std::path::{Path, PathBuf};

use nabla::atomic_file::write_bytes_atomically;
use nabla::train::{check_fit, predict, ClassificationReport};
use nabla::{checkpoint, Float};

use super::super::dtype::{run_in_returning, RunInFloatReturning};
use super::super::log::LogTable;
use super::super::plot::{confusion_svg, curves_svg};
use super::super::run_folder::RunFolder;
use super::super::settings::DataChoice;
use super::super::summarize::{markdown_table, summary_row, write_csv, COLUMNS};
use super::super::CliError;
use super::plan::Plan;

/// One finished (or stopped) run: its summary row, its command, and how far it got
/// (empty when it finished).
struct Row {
    folder: PathBuf,
    values: Vec<String>,
    command: String,
    progress: String,
}

/// What `collect` wrote and what it found missing.
pub struct Collected {
    /// The files written.
    pub written: Vec<PathBuf>,
    /// Runs that logged epochs but did not finish, each `NAME (E of N epochs)`.
    pub incomplete: Vec<String>,
    /// Runs of the plan that never logged an epoch.
    pub missing: Vec<String>,
}

/// A run to collect: its folder, its command and its planned epochs.
struct Planned {
    folder: PathBuf,
    command: String,
    epochs: Option<usize>,
}

/// The runs of the sweep in `dir`: the plan's points, or without a plan every folder in
/// `DIR/runs`.
fn planned_runs(dir: &Path) -> Vec<Planned> {
    let binary = std::env::current_exe()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|_| "nabla".into());
    let mut runs: Vec<Planned> = match Plan::read(dir) {
        Ok(plan) => plan
            .points
            .iter()
            .map(|point| Planned {
                folder: Plan::folder(dir, point),
                command: shell_line(&binary, &plan.command(dir, point)),
                epochs: planned_epochs(&point.args),
            })
            .collect(),
        Err(_) => std::fs::read_dir(dir.join("runs"))
            .map(|entries| {
                entries
                    .filter_map(Result::ok)
                    .map(|entry| entry.path())
                    .filter(|path| path.is_dir())
                    .map(|folder| Planned {
                        folder,
                        command: String::new(),
                        epochs: None,
                    })
                    .collect()
            })
            .unwrap_or_default(),
    };
    runs.sort_by(|a, b| a.folder.cmp(&b.folder));
    runs
}

/// The epochs a run's `nabla train` arguments ask for (the last `--epochs` given).
fn planned_epochs(args: &[String]) -> Option<usize> {
    let mut epochs = None;
    for (index, arg) in args.iter().enumerate() {
        if arg == "--epochs" {
            epochs = args.get(index + 1).and_then(|v| v.parse().ok());
        } else if let Some(value) = arg.strip_prefix("--epochs=") {
            epochs = value.parse().ok();
        }
    }
    epochs
}

/// Whether the run in `folder` finished (all its epochs, or early stopping) and its log
/// holds every epoch its summary counts (a log cut short is not a finished run's).
fn finished(folder: &Path) -> bool {
    let Some(summary) = std::fs::read_to_string(RunFolder::new(folder).summary())
        .ok()
        .and_then(|text| serde_json::from_str::<serde_json::Value>(&text).ok())
    else {
        return false;
    };
    let stopped = summary["stopped"].as_str().unwrap_or_default();
    let ended = stopped == "completed" || stopped.starts_with("early stopping");
    let logged = LogTable::read(folder)
        .and_then(|log| log.numbers("epoch"))
        .map_or(0, |epochs| epochs.len() as u64);
    ended && summary["epochs"].as_u64() == Some(logged)
}

/// The last whole epoch the run in `folder` logged (`0` when it logged none).
fn logged_epochs(folder: &Path) -> String {
    LogTable::read(folder)
        .and_then(|log| log.last("epoch"))
        .unwrap_or_else(|_| "0".into())
}

/// Writes the results of the sweep in `dir` (finished runs ranked, best first; runs that
/// stopped early listed after them, with how far they got); returns the paths written
/// and the runs that are incomplete or missing.
pub fn collect(dir: &Path) -> Result<Collected, CliError> {
    let mut rows = Vec::new();
    let mut missing = Vec::new();
    let mut incomplete = Vec::new();
    for run in planned_runs(dir) {
        let name = run
            .folder
            .file_name()
            .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
        let values = RunFolder::new(&run.folder)
            .log()
            .is_file()
            .then(|| summary_row(&run.folder).ok())
            .flatten();
        let Some(values) = values else {
            missing.push(name);
            continue;
        };
        let progress = if finished(&run.folder) {
            String::new()
        } else {
            let done = logged_epochs(&run.folder);
            let of = run.epochs.map_or_else(String::new, |n| format!(" of {n}"));
            incomplete.push(format!("{name} ({done}{of} epochs)"));
            format!("incomplete: {done}{of} epochs")
        };
        rows.push(Row {
            folder: run.folder,
            values,
            command: run.command,
            progress,
        });
    }
    if rows.is_empty() {
        return Err(CliError::Write {
            path: dir.join("runs"),
            source: std::io::Error::new(
                std::io::ErrorKind::NotFound,
                "no run has logged an epoch yet",
            ),
        });
    }
    let column = |name: &str| COLUMNS.iter().position(|c| *c == name).unwrap_or(0);
    let (val, test) = (column("val_acc"), column("test_acc"));
    let ranked_by_val = rows.iter().all(|row| !row.values[val].is_empty());
    let key = if ranked_by_val { val } else { test };
    let value = |row: &Row| row.values[key].parse::<f64>().unwrap_or(f64::NEG_INFINITY);
    // Finished runs first, best first; incomplete runs after them, by name.
    rows.sort_by(|a, b| {
        (!a.progress.is_empty())
            .cmp(&!b.progress.is_empty())
            .then_with(|| {
                if a.progress.is_empty() {
                    value(b).total_cmp(&value(a))
                } else {
                    std::cmp::Ordering::Equal
                }
            })
            .then_with(|| a.values[0].cmp(&b.values[0]))
    });

    // The tables: the summary columns, `status` (how far an incomplete run got), then
    // in the CSV each run's command; results.md leaves out the times (it is the same for
    // the same sweep) and, like the page, every column empty for every run.
    let mut table_columns: Vec<&str> = COLUMNS.to_vec();
    table_columns.push("status");
    let table_rows: Vec<Vec<String>> = rows
        .iter()
        .map(|row| {
            let mut values = row.values.clone();
            values.push(row.progress.clone());
            values
        })
        .collect();
    let shown: Vec<usize> = (0..table_columns.len())
        .filter(|&i| table_rows.iter().any(|row| !row[i].is_empty()))
        .collect();
    let pick = |indices: &[usize]| -> (Vec<&str>, Vec<Vec<String>>) {
        (
            indices.iter().map(|&i| table_columns[i]).collect(),
            table_rows
                .iter()
                .map(|row| indices.iter().map(|&i| row[i].clone()).collect())
                .collect(),
        )
    };
    let seconds = column("seconds");
    let timeless: Vec<usize> = shown.iter().copied().filter(|&i| i != seconds).collect();
    let (markdown_columns, markdown_rows) = pick(&timeless);
    let mut written = Vec::new();
    let markdown = dir.join("results.md");
    write_file(
        &markdown,
        markdown_table(&markdown_columns, &markdown_rows).as_bytes(),
    )?;
    written.push(markdown);
    let mut csv_columns = table_columns.clone();
    csv_columns.push("command");
    let csv_rows: Vec<Vec<String>> = table_rows
        .iter()
        .zip(&rows)
        .map(|(values, row)| {
            let mut values = values.clone();
            values.push(row.command.clone());
            values
        })
        .collect();
    let csv = dir.join("results.csv");
    write_csv(&csv, &csv_columns, &csv_rows)?;
    written.push(csv);
    let curves = curves_svg(
        &rows
            .iter()
            .map(|row| row.folder.clone())
            .collect::<Vec<_>>(),
    )?;
    let svg = dir.join("curves.svg");
    write_file(&svg, curves.as_bytes())?;
    written.push(svg);
    // The best finished run's confusion matrix, when its model is there.
    let best = rows.first().filter(|row| row.progress.is_empty());
    let confusion = best.and_then(|row| best_confusion(&row.folder).ok());
    let (page_columns, page_rows) = pick(&shown);
    let commands: Vec<(&str, &str)> = rows
        .iter()
        .map(|row| (row.values[0].as_str(), row.command.as_str()))
        .collect();
    let html = page(
        dir,
        &page_columns,
        &page_rows,
        &commands,
        &curves,
        confusion.as_deref(),
        best.map(|row| row.values[0].as_str()),
        ranked_by_val,
    );
    let page_path = dir.join("results.html");
    write_file(&page_path, html.as_bytes())?;
    written.push(page_path);
    Ok(Collected {
        written,
        incomplete,
        missing,
    })
}

fn write_file(path: &Path, bytes: &[u8]) -> Result<(), CliError> {
    write_bytes_atomically(path, bytes).map_err(|source| CliError::Write {
        path: path.to_path_buf(),
        source,
    })
}

/// A command line a shell takes back: each argument quoted where it needs it.
pub fn shell_line(binary: &str, args: &[String]) -> String {
    std::iter::once(binary.to_string())
        .chain(args.iter().cloned())
        .map(|arg| {
            if !arg.is_empty()
                && arg
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_./,:=+@".contains(c))
            {
                arg
            } else {
                format!("'{}'", arg.replace('\'', "'\\''"))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// The model and data of a run folder, for its confusion matrix.
struct BestRun {
    model: PathBuf,
    data: DataChoice,
    seed: u64,
}

impl RunInFloatReturning for &BestRun {
    type Output = String;

    fn run<F: Float>(self) -> Result<String, CliError> {
        let model = checkpoint::load::<F>(&self.model)?;
        let dataset = self.data.load::<F>(self.seed)?;
        check_fit(&model, &dataset)?;
        let predictions = predict(&model, &dataset.test_x);
        confusion_svg(
            &ClassificationReport::new(dataset.test_y.view(), predictions.view(), dataset.classes)
                .confusion,
        )
    }
}

/// The confusion matrix of the run in `folder` on its test set, as an SVG document.
fn best_confusion(folder: &Path) -> Result<String, CliError> {
    let run = RunFolder::new(folder);
    let text = std::fs::read_to_string(run.config()).map_err(|source| CliError::Write {
        path: run.config(),
        source,
    })?;
    let config: serde_json::Value =
        serde_json::from_str(&text).map_err(|error| CliError::Write {
            path: run.config(),
            source: std::io::Error::other(error),
        })?;
    let data: DataChoice =
        serde_json::from_value(config["config"]["data"].clone()).map_err(|error| {
            CliError::Write {
                path: run.config(),
                source: std::io::Error::other(error),
            }
        })?;
    let best = BestRun {
        model: run.model(),
        data,
        seed: config["config"]["train"]["seed"]
            .as_u64()
            .unwrap_or(nabla::DEFAULT_SEED),
    };
    let dtype = if config["config"]["dtype"] == "f64" {
        super::super::dtype::Dtype::F64
    } else {
        super::super::dtype::Dtype::F32
    };
    run_in_returning(dtype, &best)
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The self-contained results page: the table (sortable), each run's command below it
/// (wrapped, so that the table fits the window), the curves and the confusion matrix.
#[allow(clippy::too_many_arguments)]
fn page(
    dir: &Path,
    columns: &[&str],
    rows: &[Vec<String>],
    commands: &[(&str, &str)],
    curves: &str,
    confusion: Option<&str>,
    best: Option<&str>,
    ranked_by_val: bool,
) -> String {
    let header: String = columns
        .iter()
        .map(|c| format!("<th>{}</th>", escape(c)))
        .collect();
    let body: String = rows
        .iter()
        .map(|row| {
            let cells: String = row
                .iter()
                .map(|v| format!("<td>{}</td>", escape(v)))
                .collect();
            format!("<tr>{cells}</tr>\n")
        })
        .collect();
    let commands: String = commands
        .iter()
        .filter(|(_, command)| !command.is_empty())
        .map(|(name, command)| {
            format!(
                "<dt>{}</dt><dd><code>{}</code></dd>\n",
                escape(name),
                escape(command)
            )
        })
        .collect();
    let commands = if commands.is_empty() {
        String::new()
    } else {
        format!("<h2>Commands</h2>\n<dl id=\"commands\">\n{commands}</dl>\n")
    };
    let best_heading = best.map_or_else(
        || "No run finished: no confusion matrix".to_string(),
        |name| {
            format!(
                "Best run: {}, confusion matrix on the test set",
                escape(name)
            )
        },
    );
    let ranking = if ranked_by_val {
        "validation accuracy"
    } else {
        "test accuracy"
    };
    let confusion = confusion.map_or_else(
        || "<p>(the best run's model file is not there)</p>".to_string(),
        |svg| svg.to_string(),
    );
    format!(
        r#"<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>nabla sweep: {title}</title>
<style>
body {{ font-family: sans-serif; margin: 2em; color: #222; }}
table {{ border-collapse: collapse; font-size: 13px; }}
th, td {{ border: 1px solid #ccc; padding: 3px 8px; text-align: right; }}
th {{ background: #eef; cursor: pointer; user-select: none; }}
th.sorted-down::after {{ content: " \25BC"; }}
th.sorted-up::after {{ content: " \25B2"; }}
tr:first-child td {{ background: #efe; }}
td:first-child {{ text-align: left; }}
#commands code {{ font-size: 11px; white-space: pre-wrap; overflow-wrap: anywhere; }}
#commands dd {{ margin: 0 0 0.6em 1.5em; }}
</style>
</head>
<body>
<h1>Sweep results</h1>
<p id="summary">{count} runs, ranked by {ranking}, best first; click a column to sort by it.</p>
<table id="results">
<thead><tr>{header}</tr></thead>
<tbody>
{body}</tbody>
</table>
{commands}<h2>Loss and accuracy</h2>
<div id="curves">{curves}</div>
<h2>{best_heading}</h2>
<div id="confusion">{confusion}</div>
<script>
(function () {{
  var table = document.getElementById("results");
  var headers = table.tHead.rows[0].cells;
  function sortBy(column) {{
    var body = table.tBodies[0];
    var rows = Array.prototype.slice.call(body.rows);
    var header = headers[column];
    var descending = !header.classList.contains("sorted-down");
    rows.sort(function (a, b) {{
      var x = a.cells[column].textContent, y = b.cells[column].textContent;
      var nx = parseFloat(x), ny = parseFloat(y);
      var order = (!isNaN(nx) && !isNaN(ny)) ? nx - ny : x.localeCompare(y);
      return descending ? -order : order;
    }});
    for (var i = 0; i < headers.length; i++) {{ headers[i].classList.remove("sorted-up", "sorted-down"); }}
    header.classList.add(descending ? "sorted-down" : "sorted-up");
    rows.forEach(function (row) {{ body.appendChild(row); }});
  }}
  for (var i = 0; i < headers.length; i++) {{
    headers[i].addEventListener("click", (function (c) {{ return function () {{ sortBy(c); }}; }})(i));
  }}
  var hash = window.location.hash.match(/sort=([a-z_]+)/);
  if (hash) {{
    for (var j = 0; j < headers.length; j++) {{ if (headers[j].textContent === hash[1]) {{ sortBy(j); }} }}
  }}
}})();
</script>
</body>
</html>
"#,
        title = escape(&dir.display().to_string()),
        count = rows.len(),
    )
}
