//! Tables as people have them: named columns of numbers or text, with missing values,
//! read from CSV or TSV (plain or gzip; the delimiter from the extension or sniffed; a
//! header row detected or forced; quoted fields; `\r\n`), from NumPy `.npy` / `.npz`
//! files, or from Parquet. A [`Table`] is what the file says, typed per column; what the columns mean
//! (label, features, categories, scaling) is decided by [`crate::data::preprocess`].
//!
//! The assignment's headerless CSV keeps its own loader ([`crate::data::load_csv`]).

mod cells;
mod delimited;
mod numpy;
mod parquet;

use std::path::{Path, PathBuf};

pub use cells::{is_missing_token, MISSING_TOKENS};

use super::DataError;

/// The code of a missing value in a [`Column::Text`].
pub const MISSING_CODE: u32 = u32::MAX;

/// One column's values, `(rows)`.
#[derive(Clone, Debug, PartialEq)]
pub enum Column {
    /// Numbers; a missing value is NaN (a NaN in the file is read as missing too).
    Numbers(Vec<f64>),
    /// Text, dictionary-encoded: row `i` holds `levels[codes[i]]`, or is missing when
    /// `codes[i]` is [`MISSING_CODE`]. Levels are in order of first appearance.
    Text {
        /// One code per row.
        codes: Vec<u32>,
        /// The distinct values.
        levels: Vec<String>,
        /// How many of the non-missing values would parse as numbers: a column of
        /// numbers with a stray word in it (`12.5, 13.1, n/a-ish`) is text here, and
        /// preprocessing refuses it by the first text value ([`Column::Text::first_text`]).
        numeric_values: usize,
        /// The first non-missing value that is not a number, with its 1-based line.
        first_text: Option<(u64, String)>,
    },
}

impl Column {
    /// Rows in the column.
    pub fn len(&self) -> usize {
        match self {
            Column::Numbers(values) => values.len(),
            Column::Text { codes, .. } => codes.len(),
        }
    }

    /// Whether the column has no rows.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether row `row` is missing.
    pub fn is_missing(&self, row: usize) -> bool {
        match self {
            Column::Numbers(values) => values[row].is_nan(),
            Column::Text { codes, .. } => codes[row] == MISSING_CODE,
        }
    }

    /// How many rows are missing.
    pub fn missing(&self) -> usize {
        (0..self.len()).filter(|&row| self.is_missing(row)).count()
    }

    /// Row `row` as the text a message quotes (numbers in their shortest form).
    pub fn text_of(&self, row: usize) -> String {
        match self {
            Column::Numbers(values) if values[row].is_nan() => String::new(),
            Column::Numbers(values) => {
                let value = values[row];
                let large_or_tiny = value.abs() >= 1e16 || (value != 0.0 && value.abs() < 1e-4);
                if large_or_tiny {
                    format!("{value:e}")
                } else {
                    format!("{value}")
                }
            }
            Column::Text { codes, levels, .. } => {
                levels.get(codes[row] as usize).cloned().unwrap_or_default()
            }
        }
    }

    /// The rows `rows`, in that order.
    pub fn select(&self, rows: &[usize]) -> Column {
        match self {
            Column::Numbers(values) => Column::Numbers(rows.iter().map(|&r| values[r]).collect()),
            Column::Text {
                codes,
                levels,
                numeric_values,
                first_text,
            } => Column::Text {
                codes: rows.iter().map(|&r| codes[r]).collect(),
                levels: levels.clone(),
                numeric_values: *numeric_values,
                first_text: first_text.clone(),
            },
        }
    }
}

/// Whether the first row holds the column names.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HeaderMode {
    /// Detected: a header when the first row has text where the rows below have numbers
    /// (or, in an all-text table, values found nowhere below).
    #[default]
    Auto,
    /// The first row is the header.
    Yes,
    /// There is no header; columns are named `column1`, `column2`, ...
    No,
}

impl std::str::FromStr for HeaderMode {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        match text {
            "auto" => Ok(Self::Auto),
            "yes" | "true" => Ok(Self::Yes),
            "no" | "false" => Ok(Self::No),
            other => Err(format!("'{other}': expected auto, yes or no")),
        }
    }
}

/// How to read a table.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReadOptions {
    /// The field delimiter; `None`: tab for `.tsv`/`.tab`, else sniffed from the first
    /// lines (comma, tab, semicolon or `|`).
    pub delimiter: Option<u8>,
    /// Whether the first row is a header.
    pub header: HeaderMode,
    /// Columns read as text whatever they hold (`--categorical`, and a model's
    /// categorical columns at predict time), by name.
    pub text_columns: Vec<String>,
    /// The names a header would hold (a model's columns): with [`HeaderMode::Auto`], the
    /// first row is the header when it holds one of them, else as detected.
    pub expected_names: Vec<String>,
}

/// A table read from a file: named, typed columns of equal length.
#[derive(Clone, Debug, PartialEq)]
pub struct Table {
    /// The file it was read from.
    pub path: PathBuf,
    /// Column names (from the header, else `column1`, ... ; `x1`, ..., `y` for `.npz`).
    pub names: Vec<String>,
    /// The columns, in file order.
    pub columns: Vec<Column>,
    /// The 1-based line each row starts on (the row number for NumPy files).
    pub lines: Vec<u64>,
    /// Whether the file had a header row.
    pub header: bool,
}

impl Table {
    /// Reads `path` as its extension says (`.npy`, `.npz`, `.parquet`; anything else as
    /// delimited text, gzip recognised by its bytes).
    pub fn read(path: &Path, options: &ReadOptions) -> Result<Table, DataError> {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().to_lowercase())
            .unwrap_or_default();
        let name = name.strip_suffix(".gz").unwrap_or(&name);
        // The file's first bytes decide where they are sure (a Parquet file named .csv),
        // else its extension.
        let mut magic = [0u8; 8];
        let read = std::fs::File::open(path)
            .and_then(|mut file| std::io::Read::read(&mut file, &mut magic))
            .unwrap_or(0);
        let magic = &magic[..read];
        let table = if magic.starts_with(b"PAR1") {
            parquet::read_parquet(path, options)
        } else if magic.starts_with(b"\x93NUMPY")
            || (!magic.starts_with(b"PK") && name.ends_with(".npy"))
        {
            numpy::read_npy(path)
        } else if magic.starts_with(b"PK\x03\x04") || name.ends_with(".npz") {
            numpy::read_npz(path)
        } else if name.ends_with(".parquet") || name.ends_with(".pq") {
            // Not Parquet after all (no PAR1): read as text.
            delimited::read(path, options)
        } else {
            delimited::read(path, options)
        }?;
        check_unique(path, &table.names)?;
        Ok(table)
    }

    /// Rows in the table.
    pub fn rows(&self) -> usize {
        self.lines.len()
    }

    /// The index of the column called `name`.
    pub fn position(&self, name: &str) -> Option<usize> {
        self.names.iter().position(|n| n == name)
    }

    /// The rows `rows`, in that order.
    pub fn select(&self, rows: &[usize]) -> Table {
        Table {
            path: self.path.clone(),
            names: self.names.clone(),
            columns: self.columns.iter().map(|c| c.select(rows)).collect(),
            lines: rows.iter().map(|&r| self.lines[r]).collect(),
            header: self.header,
        }
    }

    /// The first `rows` rows.
    pub fn head(&self, rows: usize) -> Table {
        let rows: Vec<usize> = (0..rows.min(self.rows())).collect();
        self.select(&rows)
    }

    /// The error for cell `(row, column)`.
    pub fn cell_error(&self, row: usize, column: usize, problem: impl Into<String>) -> DataError {
        DataError::Cell {
            path: self.path.clone(),
            line: self.lines[row],
            column: self.names[column].clone(),
            value: super::csv::field_text(self.columns[column].text_of(row).as_bytes()),
            problem: problem.into(),
        }
    }

    /// The error for column `column`.
    pub fn column_error(&self, column: &str, problem: impl Into<String>) -> DataError {
        DataError::Column {
            path: self.path.clone(),
            column: column.to_string(),
            problem: problem.into(),
        }
    }
}

/// Whether the file at `path` starts like the assignment's CSV (a first row of
/// comma-separated numbers ending in a non-negative integer label): such a file keeps
/// the assignment's loader (and its errors) unless table flags are given.
pub fn looks_like_assignment(path: &Path) -> Result<bool, DataError> {
    let name = path.to_string_lossy().to_lowercase();
    if [".npy", ".npz", ".npy.gz", ".npz.gz"]
        .iter()
        .any(|ext| name.ends_with(ext))
    {
        return Ok(false);
    }
    delimited::looks_like_assignment(path)
}

/// Refuses two columns of one name (the second would hide the first).
pub(crate) fn check_unique(path: &Path, names: &[String]) -> Result<(), DataError> {
    let mut seen = std::collections::HashMap::new();
    for (j, name) in names.iter().enumerate() {
        if let Some(before) = seen.insert(name, j) {
            return Err(DataError::Table {
                path: path.to_path_buf(),
                problem: format!(
                    "columns {} and {} are both named '{name}'",
                    before + 1,
                    j + 1
                ),
            });
        }
    }
    Ok(())
}

/// Default names of columns without a header: `column1`, `column2`, ...
pub fn default_name(index: usize) -> String {
    format!("column{}", index + 1)
}
