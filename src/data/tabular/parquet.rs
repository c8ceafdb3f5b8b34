//! Parquet tables (the `parquet` crate's row reader, without Arrow): numeric columns
//! (integers, floats, decimals, dates and times as their numbers) are numbers, strings
//! and booleans are text, nulls are missing. Nested columns (lists, maps, groups) are
//! refused by name.

use std::collections::HashMap;
use std::fs::File;
use std::path::Path;

use parquet::file::reader::{FileReader, SerializedFileReader};
use parquet::record::Field;

use parquet::basic::{LogicalType, TimeUnit};

use super::{Column, ReadOptions, Table, MISSING_CODE};
use crate::data::file::DataFile;
use crate::data::DataError;
use crate::limits::{memory_headroom, TooLarge};

/// One column as it is read.
enum Builder {
    /// No value seen yet (nulls so far).
    Unknown(usize),
    Numbers(Vec<f64>),
    Text {
        codes: Vec<u32>,
        levels: Vec<String>,
        index: HashMap<String, u32>,
    },
}

/// A cell: a number, text, or missing.
enum Value {
    Number(f64),
    Text(String),
    Missing,
}

impl Builder {
    fn push(&mut self, value: Value) -> Result<(), &'static str> {
        match (&mut *self, value) {
            (Builder::Unknown(nulls), Value::Missing) => *nulls += 1,
            (Builder::Unknown(nulls), Value::Number(number)) => {
                let mut values = vec![f64::NAN; *nulls];
                values.push(number);
                *self = Builder::Numbers(values);
            }
            (Builder::Unknown(nulls), Value::Text(text)) => {
                *self = Builder::Text {
                    codes: vec![MISSING_CODE; *nulls],
                    levels: Vec::new(),
                    index: HashMap::new(),
                };
                self.push(Value::Text(text))?;
            }
            (Builder::Numbers(values), Value::Number(number)) => values.push(number),
            (Builder::Numbers(values), Value::Missing) => values.push(f64::NAN),
            (Builder::Text { codes, .. }, Value::Missing) => codes.push(MISSING_CODE),
            (
                Builder::Text {
                    codes,
                    levels,
                    index,
                },
                Value::Text(text),
            ) => {
                let next = levels.len() as u32;
                let code = *index.entry(text.clone()).or_insert(next);
                if code == next {
                    levels.push(text);
                }
                codes.push(code);
            }
            _ => return Err("mixes numbers and text"),
        }
        Ok(())
    }

    fn finish(self) -> Column {
        match self {
            Builder::Unknown(nulls) => Column::Numbers(vec![f64::NAN; nulls]),
            Builder::Numbers(values) => Column::Numbers(values),
            Builder::Text { codes, levels, .. } => Column::Text {
                codes,
                levels,
                numeric_values: 0,
                first_text: None,
            },
        }
    }
}

/// A Parquet field as a table cell (`None`: nested, not a table cell); timestamps and
/// times in seconds, `unit` the seconds per count of a column whose logical type says so
/// (nanoseconds arrive as plain integers).
fn value(field: &Field, unit: f64) -> Option<Value> {
    Some(match field {
        Field::Null => Value::Missing,
        Field::Bool(b) => Value::Text(b.to_string()),
        Field::Byte(v) => Value::Number(f64::from(*v)),
        Field::Short(v) => Value::Number(f64::from(*v)),
        Field::Int(v) => Value::Number(f64::from(*v)),
        Field::Long(v) => Value::Number(*v as f64 * unit),
        Field::UByte(v) => Value::Number(f64::from(*v)),
        Field::UShort(v) => Value::Number(f64::from(*v)),
        Field::UInt(v) => Value::Number(f64::from(*v)),
        Field::ULong(v) => Value::Number(*v as f64),
        Field::Float16(v) => Value::Number(f64::from(*v)),
        Field::Float(v) if v.is_nan() => Value::Missing,
        Field::Float(v) => Value::Number(f64::from(*v)),
        Field::Double(v) if v.is_nan() => Value::Missing,
        Field::Double(v) => Value::Number(*v),
        Field::Decimal(_) => Value::Number(field.to_string().parse().ok()?),
        Field::Str(text) => Value::Text(text.trim().to_string()),
        Field::Bytes(bytes) => {
            Value::Text(String::from_utf8_lossy(bytes.data()).trim().to_string())
        }
        Field::Date(v) => Value::Number(f64::from(*v)),
        Field::TimeMillis(v) => Value::Number(f64::from(*v) * 1e-3),
        Field::TimestampMillis(v) => Value::Number(*v as f64 * 1e-3),
        Field::TimeMicros(v) | Field::TimestampMicros(v) => Value::Number(*v as f64 * 1e-6),
        Field::Group(_) | Field::ListInternal(_) | Field::MapInternal(_) => return None,
    })
}

/// Reads the Parquet file at `path` as a table (rows numbered from 1 in errors).
///
/// The `parquet` crate can panic on corrupt pages (an index out of bounds in its
/// decoders, found by nabla's fuzzing): such a panic is caught, kept off stderr, and
/// becomes an error naming the file.
pub(super) fn read_parquet(path: &Path, options: &ReadOptions) -> Result<Table, DataError> {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let outcome = std::panic::catch_unwind(|| read_unguarded(path, options));
    std::panic::set_hook(previous);
    outcome.unwrap_or_else(|payload| {
        let detail = payload
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_default();
        Err(DataError::Table {
            path: path.to_path_buf(),
            problem: format!("corrupt Parquet data (the reader failed: {detail})"),
        })
    })
}

/// [`read_parquet`] without the guard.
fn read_unguarded(path: &Path, options: &ReadOptions) -> Result<Table, DataError> {
    // A regular, non-empty file (a device or a pipe is refused before opening).
    drop(DataFile::open(path)?);
    let bad = |problem: String| DataError::Table {
        path: path.to_path_buf(),
        problem: if problem.contains("Disabled feature") {
            format!("{problem} (nabla reads snappy, gzip and zstd pages: rewrite the file with one of them)")
        } else {
            problem
        },
    };
    let file = File::open(path).map_err(|source| DataError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let reader = SerializedFileReader::new(file)
        .map_err(|error| bad(format!("not a readable Parquet file: {error}")))?;
    let metadata = reader.metadata().file_metadata();
    let names: Vec<String> = metadata
        .schema_descr()
        .root_schema()
        .get_fields()
        .iter()
        .map(|field| field.name().to_string())
        .collect();
    let rows = u64::try_from(metadata.num_rows()).unwrap_or(0);
    let memory = memory_headroom();
    let needed = rows.saturating_mul(names.len() as u64).saturating_mul(16);
    if needed > memory.bytes {
        return Err(DataError::TooLarge {
            path: path.to_path_buf(),
            source: TooLarge {
                what: format!("{}: {rows} rows of {} columns", path.display(), names.len()),
                needed: Some(needed),
                available: memory.bytes,
                limit: memory.limit,
            },
        });
    }
    // Timestamps and times become seconds whatever their unit (a file in microseconds
    // and one in nanoseconds give the same numbers); dates stay days.
    let units: Vec<f64> = metadata
        .schema_descr()
        .columns()
        .iter()
        .map(|column| match column.logical_type_ref() {
            Some(LogicalType::Timestamp { unit, .. }) | Some(LogicalType::Time { unit, .. }) => {
                match unit {
                    TimeUnit::MILLIS => 1e-3,
                    TimeUnit::MICROS => 1e-6,
                    TimeUnit::NANOS => 1e-9,
                }
            }
            _ => 1.0,
        })
        .collect();
    let as_text: Vec<bool> = names
        .iter()
        .map(|name| options.text_columns.contains(name))
        .collect();
    let mut builders: Vec<Builder> = names.iter().map(|_| Builder::Unknown(0)).collect();
    let iterator = reader
        .get_row_iter(None)
        .map_err(|error| bad(format!("cannot read its rows: {error}")))?;
    let mut count = 0u64;
    for row in iterator {
        let row = row.map_err(|error| bad(format!("row {}: {error}", count + 1)))?;
        count += 1;
        for (j, (name, field)) in row.get_column_iter().enumerate() {
            let Some(builder) = builders.get_mut(j) else {
                return Err(bad(format!("row {count} has more columns than the schema")));
            };
            let value = value(field, units.get(j).copied().unwrap_or(1.0)).ok_or_else(|| {
                DataError::Column {
                    path: path.to_path_buf(),
                    column: name.clone(),
                    problem: "is a nested column (list, map or group): nabla reads flat tables"
                        .into(),
                }
            })?;
            // A column named in --categorical (or a model's categorical column) is text.
            let value = match value {
                Value::Number(number) if as_text.get(j) == Some(&true) => {
                    Value::Text(format!("{number}"))
                }
                value => value,
            };
            builder.push(value).map_err(|problem| DataError::Column {
                path: path.to_path_buf(),
                column: name.clone(),
                problem: problem.into(),
            })?;
        }
    }
    if count == 0 {
        return Err(bad("no rows".into()));
    }
    Ok(Table {
        path: path.to_path_buf(),
        names,
        columns: builders.into_iter().map(Builder::finish).collect(),
        lines: (1..=count).collect(),
        header: true,
    })
}
