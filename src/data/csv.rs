//! The assignment's CSV format: one example per row, the feature values followed by the
//! class label in the last column, comma-separated, no header; plain or gzip-compressed.
//!
//! Parsing streams byte records through the csv crate (no per-field `String`), checks
//! every value once, and reports the 1-based line and column of the first bad field.

use std::io::Write;
use std::path::Path;

use flate2::write::GzEncoder;

use ndarray::{Array1, Array2, ArrayView1, ArrayView2};

use super::file::DataFile;
use super::DataError;
use crate::atomic_file::write_atomically;
use crate::float::Float;
use crate::limits::{memory_headroom, TooLarge};

/// Features `(rows, columns - 1)` and labels `(rows)` of a CSV file; every label must be
/// in `0..classes`.
pub fn load_csv<F: Float>(
    path: &Path,
    classes: usize,
) -> Result<(Array2<F>, Array1<usize>), DataError> {
    read_csv(path, Some(classes)).map(|(x, labels)| (x, Array1::from(labels)))
}

/// Features `(rows, columns)` of a CSV file without a label column (for prediction).
pub fn load_csv_features<F: Float>(path: &Path) -> Result<Array2<F>, DataError> {
    read_csv(path, None).map(|(x, _)| x)
}

/// Reads every row; with `classes`, the last column is a label in `0..classes`.
fn read_csv<F: Float>(
    path: &Path,
    classes: Option<usize>,
) -> Result<(Array2<F>, Vec<usize>), DataError> {
    let (file, reader) = DataFile::open(path)?;
    let mut csv_reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .buffer_capacity(1 << 16)
        .from_reader(reader);
    let mut record = csv::ByteRecord::new();
    let mut values: Vec<F> = Vec::new();
    let mut labels: Vec<usize> = Vec::new();
    let mut rows = 0;
    let mut width = None;
    let label_columns = usize::from(classes.is_some());
    // The values grow with the data actually read; they are checked against the memory
    // available as they grow (a small gzip can hold a very large CSV).
    let memory = memory_headroom();
    loop {
        match csv_reader.read_byte_record(&mut record) {
            Ok(true) => {}
            Ok(false) => break,
            Err(error) => return Err(csv_error(&file, error)),
        }
        let line = record.position().map_or(0, |position| position.line());
        let expected = *width.get_or_insert(record.len());
        if record.len() != expected {
            return Err(DataError::RaggedRow {
                path: path.to_path_buf(),
                line,
                expected,
                found: record.len(),
            });
        }
        if expected <= label_columns {
            return Err(DataError::NoFeatures {
                path: path.to_path_buf(),
                line,
            });
        }
        let feature_columns = expected - label_columns;
        for (index, field) in record.iter().take(feature_columns).enumerate() {
            values.push(parse_feature(field, path, line, index + 1)?);
        }
        let bytes = (values.len() as u64).saturating_mul(std::mem::size_of::<F>() as u64);
        if bytes > memory.bytes {
            return Err(DataError::TooLarge {
                path: path.to_path_buf(),
                source: TooLarge {
                    what: format!("{}: the CSV values read by line {line}", path.display()),
                    needed: Some(bytes),
                    available: memory.bytes,
                    limit: memory.limit,
                },
            });
        }
        if let Some(classes) = classes {
            labels.push(parse_label(
                &record[expected - 1],
                path,
                line,
                expected,
                classes,
            )?);
        }
        rows += 1;
    }
    let Some(columns) = width else {
        return Err(DataError::Empty {
            path: path.to_path_buf(),
        });
    };
    // Cannot fail: every row pushed exactly `columns - label_columns` values (ragged
    // rows and rows without features were refused above).
    let x = Array2::from_shape_vec((rows, columns - label_columns), values)
        .expect("every row pushed the same number of values");
    Ok((x, labels))
}

fn csv_error(file: &DataFile, error: csv::Error) -> DataError {
    match error.into_kind() {
        csv::ErrorKind::Io(io_error) => file.read_error(io_error),
        other => file.read_error(std::io::Error::other(format!("{other:?}"))),
    }
}

/// How many characters of a bad field an error message quotes.
const QUOTED_CHARACTERS: usize = 40;

/// A bad field as an error quotes it: at most [`QUOTED_CHARACTERS`] characters, control
/// characters escaped (`\u{1b}`), and `...` when cut.
pub(super) fn field_text(field: &[u8]) -> String {
    let text = String::from_utf8_lossy(field);
    let mut quoted: String = text
        .chars()
        .take(QUOTED_CHARACTERS)
        .flat_map(|c| {
            if c.is_control() {
                c.escape_unicode().collect::<Vec<_>>()
            } else {
                vec![c]
            }
        })
        .collect();
    if text.chars().count() > QUOTED_CHARACTERS {
        quoted.push_str("...");
    }
    quoted
}

fn parse_feature<F: Float>(
    field: &[u8],
    path: &Path,
    line: u64,
    column: usize,
) -> Result<F, DataError> {
    let value = std::str::from_utf8(field)
        .ok()
        .and_then(|text| text.trim().parse::<F>().ok())
        .ok_or_else(|| DataError::NotANumber {
            path: path.to_path_buf(),
            line,
            column,
            field: field_text(field),
        })?;
    if !value.is_finite() {
        return Err(DataError::NonFinite {
            path: path.to_path_buf(),
            line,
            column,
            field: field_text(field),
        });
    }
    Ok(value)
}

/// A label: a non-negative integer, also when written as a float (`3.0`, `3e0`).
fn parse_label(
    field: &[u8],
    path: &Path,
    line: u64,
    column: usize,
    classes: usize,
) -> Result<usize, DataError> {
    let text = std::str::from_utf8(field).unwrap_or("").trim();
    let label = text.parse::<u64>().ok().or_else(|| {
        text.parse::<f64>()
            .ok()
            .filter(|v| v.is_finite() && *v >= 0.0 && v.fract() == 0.0 && *v < u64::MAX as f64)
            .map(|v| v as u64)
    });
    let Some(label) = label else {
        return Err(DataError::LabelNotInteger {
            path: path.to_path_buf(),
            line,
            column,
            field: field_text(field),
        });
    };
    if label >= classes as u64 {
        return Err(DataError::LabelOutOfRange {
            path: path.to_path_buf(),
            location: format!("{line}:{column}"),
            label,
            classes,
        });
    }
    Ok(label as usize)
}

/// Writes 8-bit pixels `(rows, features)` as `pixel / 255` values followed by the label,
/// in the shortest decimal that reads back as the same `f64` (`0`, `1`, `0.5019607843137255`).
/// A path ending in `.gz` is gzip-compressed (deterministically: no timestamp).
/// The file is written atomically ([`crate::atomic_file`]).
pub fn write_pixels_csv(
    path: &Path,
    pixels: ArrayView2<'_, u8>,
    labels: ArrayView1<'_, usize>,
) -> Result<(), DataError> {
    let texts: Vec<String> = (0..=255u8)
        .map(|p| format!("{}", p as f64 / 255.0))
        .collect();
    let written = write_atomically(path, |file| {
        if path.extension().is_some_and(|ext| ext == "gz") {
            let mut encoder = GzEncoder::new(file, flate2::Compression::default());
            write_rows(&mut encoder, pixels, labels, &texts)?;
            encoder.finish().map(drop)
        } else {
            write_rows(file, pixels, labels, &texts)
        }
    });
    written.map_err(|source| DataError::Write {
        path: path.to_path_buf(),
        source,
    })
}

fn write_rows(
    sink: &mut impl Write,
    pixels: ArrayView2<'_, u8>,
    labels: ArrayView1<'_, usize>,
    pixel_texts: &[String],
) -> std::io::Result<()> {
    let mut line = String::new();
    for (row, label) in pixels.rows().into_iter().zip(labels) {
        line.clear();
        for &pixel in row {
            line.push_str(&pixel_texts[pixel as usize]);
            line.push(',');
        }
        line.push_str(&label.to_string());
        line.push('\n');
        sink.write_all(line.as_bytes())?;
    }
    Ok(())
}
