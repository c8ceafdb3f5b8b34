//! NumPy tables: a 2-D `.npy` array (columns `column1`, ...), or an `.npz` archive with
//! a 2-D `X` (columns `x1`, ...) and a 1-D `y` (column `y`, last). Any integer, float or
//! bool element type; the declared size is checked against the bytes present before
//! anything is allocated.

use std::io::{Cursor, Read};
use std::path::Path;

use ndarray::{Array, Array1, Array2, Dimension};
use ndarray_npy::{ReadNpyExt, ReadableElement};

use super::{default_name, Column, Table};
use crate::data::DataError;
use crate::limits::memory_headroom;

/// Reads a 2-D `.npy` array as a table.
pub(super) fn read_npy(path: &Path) -> Result<Table, DataError> {
    let bytes = read_file(path)?;
    check_declared_size(path, "the array", &bytes)?;
    let array: Array2<f64> = read_any(path, "the array", &bytes)?;
    let names = (0..array.ncols()).map(default_name).collect();
    Ok(table(
        path,
        names,
        array.columns().into_iter().map(|c| c.to_vec()).collect(),
    ))
}

/// Reads `X` (2-D) and `y` (1-D) from an `.npz` archive as one table, `y` last.
pub(super) fn read_npz(path: &Path) -> Result<Table, DataError> {
    let bytes = read_file(path)?;
    let bad = |problem: String| DataError::Table {
        path: path.to_path_buf(),
        problem,
    };
    let names: Vec<String> = zip::ZipArchive::new(Cursor::new(&bytes[..]))
        .map_err(|error| bad(format!("not an .npz archive: {error}")))?
        .file_names()
        .map(str::to_string)
        .collect();
    let member = |key: &str| -> Result<Vec<u8>, DataError> {
        let wanted = [format!("{key}.npy"), key.to_string()];
        if !names.iter().any(|name| wanted.contains(name)) {
            return Err(bad(format!(
                "no array '{key}' (it holds {}; nabla reads X and y)",
                names
                    .iter()
                    .map(|n| n.trim_end_matches(".npy"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
        let mut zip = zip::ZipArchive::new(Cursor::new(&bytes[..]))
            .map_err(|error| bad(format!("not an .npz archive: {error}")))?;
        let name = names
            .iter()
            .find(|name| wanted.contains(name))
            .cloned()
            .unwrap_or_default();
        let mut file = zip
            .by_name(&name)
            .map_err(|error| bad(format!("array '{key}': {error}")))?;
        let limit = memory_headroom().bytes;
        let mut data = Vec::new();
        (&mut file)
            .take(limit.saturating_add(1))
            .read_to_end(&mut data)
            .map_err(|error| bad(format!("array '{key}': {error}")))?;
        if data.len() as u64 > limit {
            return Err(bad(format!("array '{key}' does not fit in memory")));
        }
        Ok(data)
    };
    let x_bytes = member("X")?;
    check_declared_size(path, "X", &x_bytes)?;
    let x: Array2<f64> = read_any(path, "X", &x_bytes)?;
    let mut names: Vec<String> = (0..x.ncols()).map(|j| format!("x{}", j + 1)).collect();
    let mut columns: Vec<Vec<f64>> = x.columns().into_iter().map(|c| c.to_vec()).collect();
    // Without `y` (rows to predict), the table is X alone.
    let has_y = names_in(&names_of(&bytes), "y");
    if !has_y {
        return checked(table(path, names, columns));
    }
    let y_bytes = member("y")?;
    check_declared_size(path, "y", &y_bytes)?;
    // A column vector (n, 1) is read as the 1-D y it is.
    let y: Array1<f64> = match read_any::<ndarray::Ix1>(path, "y", &y_bytes) {
        Ok(y) => y,
        Err(error) => match read_any::<ndarray::Ix2>(path, "y", &y_bytes) {
            Ok(y) if y.ncols() == 1 => y.column(0).to_owned(),
            _ => return Err(error),
        },
    };
    if y.len() != x.nrows() {
        return Err(bad(format!(
            "X has {} rows but y has {} values",
            x.nrows(),
            y.len()
        )));
    }
    names.push("y".into());
    columns.push(y.to_vec());
    checked(table(path, names, columns))
}

/// The member names of the archive in `bytes` (empty if it is no archive).
fn names_of(bytes: &[u8]) -> Vec<String> {
    zip::ZipArchive::new(Cursor::new(bytes))
        .map(|archive| archive.file_names().map(str::to_string).collect())
        .unwrap_or_default()
}

/// Whether `names` holds the array `key` (`key.npy` or `key`).
fn names_in(names: &[String], key: &str) -> bool {
    names
        .iter()
        .any(|name| name == key || *name == format!("{key}.npy"))
}

/// Refuses an infinite value (as the CSV reader does), naming its row and column; NaN is
/// a missing value.
fn checked(table: Table) -> Result<Table, DataError> {
    for (j, column) in table.columns.iter().enumerate() {
        if let Column::Numbers(values) = column {
            if let Some(row) = values.iter().position(|v| v.is_infinite()) {
                return Err(table.cell_error(row, j, "is not finite"));
            }
        }
    }
    Ok(table)
}

fn table(path: &Path, names: Vec<String>, columns: Vec<Vec<f64>>) -> Table {
    let rows = columns.first().map_or(0, Vec::len);
    Table {
        path: path.to_path_buf(),
        names,
        columns: columns.into_iter().map(Column::Numbers).collect(),
        lines: (1..=rows as u64).collect(),
        header: false,
    }
}

fn read_file(path: &Path) -> Result<Vec<u8>, DataError> {
    let (file, mut reader) = crate::data::file::DataFile::open(path)?;
    let limit = memory_headroom().bytes;
    let mut bytes = Vec::new();
    (&mut reader)
        .take(limit.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(|error| file.read_error(error))?;
    if bytes.len() as u64 > limit {
        return Err(DataError::Table {
            path: path.to_path_buf(),
            problem: "the file does not fit in memory".into(),
        });
    }
    Ok(bytes)
}

/// NumPy itself refuses headers over 10,000 bytes by default.
const MAX_HEADER: usize = 1 << 16;

/// Refuses an array whose header length runs past the file or [`MAX_HEADER`], or whose
/// header declares more elements than it has bytes (every element type takes at least
/// one byte): the reader would allocate either first.
fn check_declared_size(path: &Path, what: &str, bytes: &[u8]) -> Result<(), DataError> {
    let refuse = |problem: String| DataError::Table {
        path: path.to_path_buf(),
        problem: format!("{what}: {problem}"),
    };
    let (start, length) = match bytes.get(..12) {
        Some(head) if head.starts_with(b"\x93NUMPY") => match head[6] {
            1 => (10, u16::from_le_bytes([head[8], head[9]]) as usize),
            2 | 3 => (
                12,
                u32::from_le_bytes([head[8], head[9], head[10], head[11]]) as usize,
            ),
            version => {
                return Err(refuse(format!(
                    ".npy format version {version} is not supported"
                )))
            }
        },
        _ => return Err(refuse("not a .npy array (no \\x93NUMPY magic)".into())),
    };
    if length > MAX_HEADER || start + length > bytes.len() {
        return Err(refuse(format!(
            "a header of {length} bytes (at most {MAX_HEADER}, and within the file)"
        )));
    }
    let header = String::from_utf8_lossy(&bytes[start..start + length]);
    let shape = header
        .split("'shape':")
        .nth(1)
        .and_then(|rest| rest.split(')').next())
        .map(|inner| inner.trim().trim_start_matches('('));
    let elements = shape.map(|inner| {
        inner
            .split(',')
            .map(str::trim)
            .filter(|part| !part.is_empty())
            .try_fold(1u64, |product, part| {
                part.parse::<u64>()
                    .ok()
                    .and_then(|n| product.checked_mul(n))
            })
    });
    match elements {
        Some(Some(elements)) if elements <= bytes.len() as u64 => Ok(()),
        Some(Some(elements)) => Err(DataError::Table {
            path: path.to_path_buf(),
            problem: format!(
                "{what}: the header declares {elements} values but the array has {} bytes",
                bytes.len()
            ),
        }),
        _ => Err(DataError::Table {
            path: path.to_path_buf(),
            problem: format!("{what}: not a .npy array with a readable shape"),
        }),
    }
}

/// The array in `bytes` as f64, whatever numeric element type it holds.
fn read_any<D: Dimension>(
    path: &Path,
    what: &str,
    bytes: &[u8],
) -> Result<Array<f64, D>, DataError> {
    fn as_f64<T: ReadableElement + Copy + Into<f64>, D: Dimension>(
        bytes: &[u8],
    ) -> Option<Array<f64, D>> {
        Array::<T, D>::read_npy(bytes)
            .ok()
            .map(|a| a.mapv(Into::into))
    }
    let wide = |bytes: &[u8]| -> Option<Array<f64, D>> {
        Array::<i64, D>::read_npy(bytes)
            .ok()
            .map(|a| a.mapv(|v| v as f64))
            .or_else(|| {
                Array::<u64, D>::read_npy(bytes)
                    .ok()
                    .map(|a| a.mapv(|v| v as f64))
            })
            .or_else(|| {
                Array::<bool, D>::read_npy(bytes)
                    .ok()
                    .map(|a| a.mapv(|v| f64::from(u8::from(v))))
            })
    };
    as_f64::<f64, D>(bytes)
        .or_else(|| as_f64::<f32, D>(bytes))
        .or_else(|| as_f64::<i32, D>(bytes))
        .or_else(|| as_f64::<u32, D>(bytes))
        .or_else(|| as_f64::<i16, D>(bytes))
        .or_else(|| as_f64::<u16, D>(bytes))
        .or_else(|| as_f64::<i8, D>(bytes))
        .or_else(|| as_f64::<u8, D>(bytes))
        .or_else(|| wide(bytes))
        .ok_or_else(|| DataError::Table {
            path: path.to_path_buf(),
            problem: format!(
                "{what}: expected a {}-D array of numbers (text arrays are not read: write a CSV)",
                D::NDIM.unwrap_or(0)
            ),
        })
}
