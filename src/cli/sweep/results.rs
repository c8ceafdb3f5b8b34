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
use super::super::plot::{confusion_svg, curves_svg};
use super::super::run_folder::RunFolder;
use super::super::settings::DataChoice;
use super::super::summarize::{markdown_table, summary_row, write_csv, COLUMNS};
use super::super::CliError;
use super::plan::Plan;

/// One finished (or stopped) run: its summary row and its command.
struct Row {
    folder: PathBuf,
    values: Vec<String>,
    command: String,
}

/// Writes the results of the sweep in `dir`; returns the paths written.
pub fn collect(dir: &Path) -> Result<Vec<PathBuf>, CliError> {
    let plan = Plan::read(dir).ok();
    let binary = std::env::current_exe()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|_| "nabla".into());
    let mut folders: Vec<(PathBuf, String)> = match &plan {
        Some(plan) => plan
            .points
            .iter()
            .map(|point| {
                (
                    Plan::folder(dir, point),
                    shell_line(&binary, &plan.command(dir, point)),
                )
            })
            .collect(),
        None => std::fs::read_dir(dir.join("runs"))
            .map(|entries| {
                entries
                    .filter_map(Result::ok)
                    .map(|entry| entry.path())
                    .filter(|path| path.is_dir())
                    .map(|path| (path, String::new()))
                    .collect()
            })
            .unwrap_or_default(),
    };
    folders.sort();
    let mut rows: Vec<Row> = folders
        .into_iter()
        .filter(|(folder, _)| RunFolder::new(folder).log().is_file())
        .filter_map(|(folder, command)| {
            summary_row(&folder).ok().map(|values| Row {
                folder,
                values,
                command,
            })
        })
        .collect();
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
    rows.sort_by(|a, b| {
        value(b)
            .total_cmp(&value(a))
            .then_with(|| a.values[0].cmp(&b.values[0]))
    });

    let seconds = column("seconds");
    let timeless: Vec<&str> = COLUMNS
        .iter()
        .copied()
        .filter(|c| *c != "seconds")
        .collect();
    let markdown_rows: Vec<Vec<String>> = rows
        .iter()
        .map(|row| {
            row.values
                .iter()
                .enumerate()
                .filter(|(i, _)| *i != seconds)
                .map(|(_, v)| v.clone())
                .collect()
        })
        .collect();
    let mut written = Vec::new();
    let markdown = dir.join("results.md");
    write_file(
        &markdown,
        markdown_table(&timeless, &markdown_rows).as_bytes(),
    )?;
    written.push(markdown);
    let mut csv_columns = COLUMNS.to_vec();
    csv_columns.push("command");
    let csv_rows: Vec<Vec<String>> = rows
        .iter()
        .map(|row| {
            let mut values = row.values.clone();
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
    // The best run's confusion matrix, when its model is there.
    let best = &rows[0];
    let confusion = best_confusion(&best.folder).ok();
    let html = page(
        dir,
        &csv_columns,
        &csv_rows,
        &curves,
        confusion.as_deref(),
        &best.values[0],
        ranked_by_val,
    );
    let page_path = dir.join("results.html");
    write_file(&page_path, html.as_bytes())?;
    written.push(page_path);
    Ok(written)
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

/// The self-contained results page.
fn page(
    dir: &Path,
    columns: &[&str],
    rows: &[Vec<String>],
    curves: &str,
    confusion: Option<&str>,
    best: &str,
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
                .enumerate()
                .map(|(i, v)| {
                    if columns[i] == "command" {
                        format!("<td><code>{}</code></td>", escape(v))
                    } else {
                        format!("<td>{}</td>", escape(v))
                    }
                })
                .collect();
            format!("<tr>{cells}</tr>\n")
        })
        .collect();
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
code {{ font-size: 11px; }}
td:first-child, td:last-child {{ text-align: left; }}
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
<h2>Loss and accuracy</h2>
<div id="curves">{curves}</div>
<h2>Best run: {best_escaped}, confusion matrix on the test set</h2>
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
        best_escaped = escape(best),
    )
}
