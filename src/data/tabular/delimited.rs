//! CSV and TSV tables: the whole (decompressed) file in memory, the header and the
//! delimiter decided from the first rows, then the rows parsed in parallel chunks (split
//! at line ends when the file has no quotes; one chunk otherwise), numbers first and the
//! text columns in a second pass.

use std::borrow::Cow;
use std::collections::HashMap;
use std::io::Read;
use std::path::Path;

use rayon::prelude::*;

use super::cells::{classify, trim, Cell};
use super::{default_name, Column, HeaderMode, ReadOptions, Table, MISSING_CODE};
use crate::data::csv::field_text;
use crate::data::file::DataFile;
use crate::data::DataError;
use crate::limits::{memory_headroom, TooLarge};
use crate::threads;

/// Rows looked at to decide the header.
const SAMPLE_ROWS: usize = 50;
/// Lines looked at to sniff the delimiter.
const SNIFF_LINES: usize = 20;
/// The delimiters sniffed, in order of preference on a tie.
const DELIMITERS: [u8; 4] = [b',', b'\t', b';', b'|'];
/// Bytes below which a file is parsed in one chunk.
const PARALLEL_BYTES: usize = 1 << 20;

/// One record's fields, as bytes.
type Record = Vec<Vec<u8>>;

/// A text column: one code per row, and the levels.
type TextColumn = (Vec<u32>, Vec<String>);

/// Reads the delimited table at `path`.
pub(super) fn read(path: &Path, options: &ReadOptions) -> Result<Table, DataError> {
    let bytes = read_bytes(path)?;
    refuse_utf16(path, &bytes)?;
    let text = bytes.strip_prefix(b"\xef\xbb\xbf").unwrap_or(&bytes);
    let delimiter = options
        .delimiter
        .unwrap_or_else(|| sniff_delimiter(path, text));
    let (sample, header_end) = first_records(path, text, delimiter)?;
    let Some(first) = sample.first() else {
        return Err(DataError::Empty {
            path: path.to_path_buf(),
        });
    };
    let width = first.len();
    let header = match options.header {
        HeaderMode::Yes => true,
        HeaderMode::No => false,
        // A file for a trained model: a header when the first row names one of its
        // columns (a missing or extra one is then named in the error).
        HeaderMode::Auto
            if first.iter().any(|field| {
                options
                    .expected_names
                    .iter()
                    .any(|name| trim(field) == name.as_bytes())
            }) =>
        {
            true
        }
        HeaderMode::Auto => looks_like_header(&sample),
    };
    let names = if header {
        header_names(path, first)?
    } else {
        (0..width).map(default_name).collect()
    };
    let (body, body_line) = if header {
        let line = 1 + count_lines(&text[..header_end]);
        (&text[header_end..], line)
    } else {
        (text, 1)
    };
    let text_columns: Vec<bool> = names
        .iter()
        .map(|name| options.text_columns.contains(name))
        .collect();
    let shape = Shape {
        path,
        delimiter,
        width,
    };
    let parsed = parse_numbers(&shape, body, body_line, &text_columns)?;
    if parsed.lines.is_empty() {
        return Err(DataError::Table {
            path: path.to_path_buf(),
            problem: "no rows below the header".into(),
        });
    }
    let text_wanted: Vec<bool> = (0..width)
        .map(|j| text_columns[j] || parsed.counts[j].texts > 0)
        .collect();
    let mut texts = parse_texts(&shape, body, &text_wanted, &names)?;
    let mut columns = Vec::with_capacity(width);
    for (j, (numbers, counts)) in parsed.numbers.into_iter().zip(parsed.counts).enumerate() {
        if text_wanted[j] {
            let (codes, levels) = texts.remove(&j).unwrap_or_default();
            columns.push(Column::Text {
                codes,
                levels,
                numeric_values: counts.numbers,
                first_text: counts.first_text,
            });
        } else {
            if let Some((line, value)) = counts.first_infinite {
                return Err(DataError::Cell {
                    path: path.to_path_buf(),
                    line,
                    column: names[j].clone(),
                    value,
                    problem: "is not finite".into(),
                });
            }
            columns.push(Column::Numbers(numbers));
        }
    }
    Ok(Table {
        path: path.to_path_buf(),
        names,
        columns,
        lines: parsed.lines,
        header,
    })
}

/// Refuses UTF-16 text (a byte-order mark, or NUL bytes in the first kilobyte): read as
/// bytes it would be garbage.
fn refuse_utf16(path: &Path, bytes: &[u8]) -> Result<(), DataError> {
    let head = &bytes[..bytes.len().min(1024)];
    if head.starts_with(b"\xff\xfe") || head.starts_with(b"\xfe\xff") || head.contains(&0) {
        return Err(DataError::Table {
            path: path.to_path_buf(),
            problem: "is UTF-16 (or binary) text: nabla reads UTF-8 (convert it, e.g. iconv -f UTF-16 -t UTF-8)".into(),
        });
    }
    Ok(())
}

/// Whether the file at `path` starts like the assignment's CSV: a first row of
/// comma-separated finite numbers ending in a non-negative integer (so no header).
pub(super) fn looks_like_assignment(path: &Path) -> Result<bool, DataError> {
    let (file, reader) = DataFile::open(path)?;
    let mut head = Vec::new();
    reader
        .take(1 << 20)
        .read_to_end(&mut head)
        .map_err(|error| file.read_error(error))?;
    let first = match memchr::memchr(b'\n', &head) {
        Some(end) => &head[..end],
        None => &head[..],
    };
    let fields: Vec<&[u8]> = first.split(|&b| b == b',').collect();
    let number = |field: &[u8]| matches!(classify(field), Cell::Number(v) if v.is_finite());
    let label =
        |field: &[u8]| matches!(classify(field), Cell::Number(v) if v >= 0.0 && v.fract() == 0.0);
    Ok(fields.len() >= 2
        && fields.iter().all(|field| number(field))
        && fields.last().is_some_and(|field| label(field)))
}

/// The file's bytes (decompressed), refused when they would not fit in memory. A plain
/// file is read in parallel pieces (positioned reads on nabla's threads).
fn read_bytes(path: &Path) -> Result<Vec<u8>, DataError> {
    let (file, reader) = DataFile::open(path)?;
    let memory = memory_headroom();
    let too_large = |bytes: u64| DataError::TooLarge {
        path: path.to_path_buf(),
        source: TooLarge {
            what: format!("{}: the file's text and its values", path.display()),
            needed: Some(bytes.saturating_mul(2)),
            available: memory.bytes,
            limit: memory.limit,
        },
    };
    if !file.is_gzip() {
        drop(reader);
        let length = file.max_stream_len();
        if length > memory.bytes / 2 {
            return Err(too_large(length));
        }
        return read_plain(path, length as usize).map_err(|error| file.read_error(error));
    }
    let mut bytes = Vec::new();
    reader
        .take(memory.bytes.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(|error| file.read_error(error))?;
    if bytes.len() as u64 > memory.bytes / 2 {
        return Err(too_large(bytes.len() as u64));
    }
    if bytes.is_empty() {
        return Err(DataError::Empty {
            path: path.to_path_buf(),
        });
    }
    Ok(bytes)
}

/// The first `length` bytes of the plain file at `path`, read in pieces on nabla's
/// threads. A file that shrinks meanwhile is an error ("changed while being read").
fn read_plain(path: &Path, length: usize) -> std::io::Result<Vec<u8>> {
    use std::os::unix::fs::FileExt;
    let file = std::fs::File::open(path)?;
    let mut bytes = vec![0u8; length];
    let piece = (length / (4 * threads::available_cores().max(1))).max(PARALLEL_BYTES);
    let threads = threads::budget().threads;
    threads::on_pool(threads, || {
        bytes
            .par_chunks_mut(piece)
            .enumerate()
            .try_for_each(|(index, chunk)| {
                file.read_exact_at(chunk, (index * piece) as u64)
                    .map_err(|error| match error.kind() {
                        std::io::ErrorKind::UnexpectedEof => {
                            std::io::Error::other("the file changed (shrank) while being read")
                        }
                        _ => error,
                    })
            })
    })?;
    Ok(bytes)
}

/// Refuses a table whose values (8 bytes each, twice: the columns and the features
/// made from them) would not fit.
fn check_memory(path: &Path, rows: usize, width: usize) -> Result<(), DataError> {
    let memory = memory_headroom();
    let needed = (rows as u64)
        .saturating_mul(width as u64)
        .saturating_mul(16);
    if needed > memory.bytes {
        return Err(DataError::TooLarge {
            path: path.to_path_buf(),
            source: TooLarge {
                what: format!("{}: {rows} rows of {width} columns", path.display()),
                needed: Some(needed),
                available: memory.bytes,
                limit: memory.limit,
            },
        });
    }
    Ok(())
}

/// The number of `\n` in `bytes`.
fn count_lines(bytes: &[u8]) -> u64 {
    memchr::memchr_iter(b'\n', bytes).count() as u64
}

/// Tab for `.tsv` and `.tab` files; otherwise the candidate that appears the same
/// (non-zero) number of times on each of the first lines, the most often; else the
/// commonest on the first line; else a comma.
fn sniff_delimiter(path: &Path, text: &[u8]) -> u8 {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().to_lowercase())
        .unwrap_or_default();
    let name = name.strip_suffix(".gz").unwrap_or(&name);
    if name.ends_with(".tsv") || name.ends_with(".tab") {
        return b'\t';
    }
    let lines: Vec<&[u8]> = text
        .split(|&b| b == b'\n')
        .filter(|line| !trim(line).is_empty())
        .take(SNIFF_LINES)
        .collect();
    let counts = |delimiter: u8| -> Vec<usize> {
        lines
            .iter()
            .map(|line| line.iter().filter(|&&b| b == delimiter).count())
            .collect()
    };
    let consistent = DELIMITERS
        .iter()
        .filter_map(|&d| {
            let counts = counts(d);
            let first = *counts.first()?;
            (first > 0 && counts.iter().all(|&c| c == first)).then_some((first, d))
        })
        // max_by_key keeps the last of equals; iterate in reverse preference.
        .rev()
        .max_by_key(|&(count, _)| count);
    if let Some((_, delimiter)) = consistent {
        return delimiter;
    }
    DELIMITERS
        .iter()
        .rev()
        .map(|&d| (counts(d).first().copied().unwrap_or(0), d))
        .filter(|&(count, _)| count > 0)
        .max_by_key(|&(count, _)| count)
        .map_or(b',', |(_, d)| d)
}

/// A CSV reader over `bytes` with nabla's settings.
fn csv_reader(bytes: &[u8], delimiter: u8) -> csv::Reader<&[u8]> {
    csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .delimiter(delimiter)
        .buffer_capacity(1 << 16)
        .from_reader(bytes)
}

/// The error for a CSV syntax failure at `line`.
fn syntax_error(path: &Path, error: csv::Error) -> DataError {
    let line = error.position().map_or(0, |p| p.line());
    DataError::Table {
        path: path.to_path_buf(),
        problem: format!("line {line}: {error}"),
    }
}

/// The first [`SAMPLE_ROWS`] records, and the byte offset just past the first one.
fn first_records(
    path: &Path,
    text: &[u8],
    delimiter: u8,
) -> Result<(Vec<Record>, usize), DataError> {
    let mut reader = csv_reader(text, delimiter);
    let mut record = csv::ByteRecord::new();
    let mut sample = Vec::new();
    let mut first_end = 0;
    while sample.len() < SAMPLE_ROWS {
        match reader.read_byte_record(&mut record) {
            Ok(true) => {}
            Ok(false) => break,
            Err(error) => return Err(syntax_error(path, error)),
        }
        if sample.is_empty() {
            first_end = reader.position().byte() as usize;
        }
        sample.push(record.iter().map(<[u8]>::to_vec).collect());
    }
    Ok((sample, first_end))
}

/// Whether the first of `rows` is a header: it has text in a column whose other sampled
/// values are numbers (or missing, with at least one number); or, in a table with no
/// numbers below the first row, each of its values appears nowhere below it.
fn looks_like_header(rows: &[Record]) -> bool {
    let Some((first, below)) = rows.split_first() else {
        return false;
    };
    if below.is_empty() {
        // A lone row of text (no numbers) is a header without data.
        return first.iter().all(|field| classify(field) == Cell::Text);
    }
    let cells = |j: usize| below.iter().filter_map(move |row| row.get(j));
    let mut any_number_below = false;
    for (j, field) in first.iter().enumerate() {
        let numbers = cells(j)
            .filter(|f| matches!(classify(f), Cell::Number(_)))
            .count();
        let texts = cells(j).filter(|f| classify(f) == Cell::Text).count();
        any_number_below |= numbers > 0;
        if classify(field) == Cell::Text && numbers > 0 && texts == 0 {
            return true;
        }
    }
    if !any_number_below {
        return first.iter().enumerate().all(|(j, field)| {
            classify(field) == Cell::Text && cells(j).all(|below| trim(below) != trim(field))
        });
    }
    sniffer_votes(first, below) > 0
}

/// Python's `csv.Sniffer.has_header` vote: per column whose values below are all of one
/// kind (integers, decimals, or text of one length), +1 when the first row's value is not
/// of that kind, -1 when it is (`country,2019` above `FR,59.3`: a header).
fn sniffer_votes(first: &[Vec<u8>], below: &[Record]) -> i64 {
    #[derive(PartialEq)]
    enum Kind {
        Integer,
        Decimal,
        Length(usize),
    }
    let kind = |field: &[u8]| match classify(field) {
        Cell::Number(v) if v.fract() == 0.0 && !trim(field).contains(&b'.') => Some(Kind::Integer),
        Cell::Number(_) => Some(Kind::Decimal),
        Cell::Text => Some(Kind::Length(trim(field).len())),
        Cell::Missing => None,
    };
    let mut votes = 0;
    for (j, field) in first.iter().enumerate() {
        let mut kinds = below
            .iter()
            .filter_map(|row| row.get(j))
            .filter_map(|f| kind(f));
        let Some(column) = kinds.next() else { continue };
        if !kinds.all(|k| k == column) {
            continue;
        }
        match kind(field) {
            Some(first) if first == column => votes -= 1,
            Some(_) => votes += 1,
            None => {}
        }
    }
    votes
}

/// The names in a header row: trimmed, `columnN` for an empty one; two equal names are
/// refused.
fn header_names(path: &Path, row: &[Vec<u8>]) -> Result<Vec<String>, DataError> {
    let names: Vec<String> = row
        .iter()
        .enumerate()
        .map(|(j, field)| match trim(field) {
            b"" => Ok(default_name(j)),
            name => std::str::from_utf8(name).map(str::to_string).map_err(|_| DataError::Table {
                path: path.to_path_buf(),
                problem: format!(
                    "the name of column {} ('{}') is not UTF-8 text: nabla reads UTF-8 (convert the file, e.g. iconv -f LATIN1 -t UTF-8)",
                    j + 1,
                    field_text(name)
                ),
            }),
        })
        .collect::<Result<_, _>>()?;
    super::check_unique(path, &names)?;
    Ok(names)
}

/// The file and its layout.
struct Shape<'a> {
    path: &'a Path,
    delimiter: u8,
    width: usize,
}

impl Shape<'_> {
    /// Refuses a record of another width than the first row's.
    fn check_width(&self, record: &csv::ByteRecord, line: u64) -> Result<(), DataError> {
        if record.len() != self.width {
            return Err(DataError::RaggedRow {
                path: self.path.to_path_buf(),
                line,
                expected: self.width,
                found: record.len(),
            });
        }
        Ok(())
    }
}

/// What one column's numbers pass found.
#[derive(Clone, Debug, Default)]
struct Counts {
    numbers: usize,
    texts: usize,
    first_text: Option<(u64, String)>,
    first_infinite: Option<(u64, String)>,
}

impl Counts {
    fn merge(&mut self, later: Counts) {
        self.numbers += later.numbers;
        self.texts += later.texts;
        self.first_text = self.first_text.take().or(later.first_text);
        self.first_infinite = self.first_infinite.take().or(later.first_infinite);
    }
}

/// The numbers pass over some rows: every column as numbers (NaN where missing or
/// text), what each column held, and each row's line.
struct Numbers {
    numbers: Vec<Vec<f64>>,
    counts: Vec<Counts>,
    lines: Vec<u64>,
}

/// Parses `body` (starting on line `first_line`): by hand in parallel chunks when it has
/// no quotes, else with the CSV reader in one piece.
fn parse_numbers(
    shape: &Shape<'_>,
    body: &[u8],
    first_line: u64,
    text_columns: &[bool],
) -> Result<Numbers, DataError> {
    if memchr::memchr(b'"', body).is_some() {
        return parse_chunk(shape, body, first_line, text_columns);
    }
    let chunks = split_chunks(body, first_line);
    let threads = threads::budget().threads;
    // Each chunk's rows are counted first, so that every chunk writes its values straight
    // into its part of the columns (no copy to join them).
    let rows: Vec<usize> = threads::on_pool(threads, || {
        chunks
            .par_iter()
            .map(|&(chunk, _)| count_rows(chunk))
            .collect()
    });
    let total: usize = rows.iter().sum();
    check_memory(shape.path, total, shape.width)?;
    let mut numbers: Vec<Vec<f64>> = (0..shape.width).map(|_| vec![0.0; total]).collect();
    let mut lines = vec![0u64; total];
    let mut targets: Vec<(Vec<&mut [f64]>, &mut [u64])> = Vec::with_capacity(chunks.len());
    let mut rest_lines: &mut [u64] = &mut lines;
    for &count in &rows {
        let (head, tail) = std::mem::take(&mut rest_lines).split_at_mut(count);
        targets.push((Vec::with_capacity(shape.width), head));
        rest_lines = tail;
    }
    for column in &mut numbers {
        let mut rest: &mut [f64] = column;
        for (target, &count) in targets.iter_mut().zip(&rows) {
            let (head, tail) = std::mem::take(&mut rest).split_at_mut(count);
            target.0.push(head);
            rest = tail;
        }
    }
    let parts: Vec<Result<Vec<Counts>, DataError>> = threads::on_pool(threads, || {
        chunks
            .par_iter()
            .zip(targets.into_par_iter())
            .map(|(&(chunk, line), (mut columns, lines))| {
                parse_plain_chunk(shape, chunk, line, text_columns, &mut columns, lines)
            })
            .collect()
    });
    let mut counts = vec![Counts::default(); shape.width];
    for part in parts {
        for (total, part) in counts.iter_mut().zip(part?) {
            total.merge(part);
        }
    }
    Ok(Numbers {
        numbers,
        counts,
        lines,
    })
}

/// Whether `line` (without its `\n`) is blank: empty, or only a `\r`. The CSV reader
/// skips such lines, and so does the hand-split path.
fn is_blank(line: &[u8]) -> bool {
    line.is_empty() || line == b"\r"
}

/// The lines of `chunk` that are not blank.
fn count_rows(chunk: &[u8]) -> usize {
    let mut rows = 0;
    let mut start = 0;
    while start < chunk.len() {
        let end = memchr::memchr(b'\n', &chunk[start..]).map_or(chunk.len(), |at| start + at);
        rows += usize::from(!is_blank(&chunk[start..end]));
        start = end + 1;
    }
    rows
}

/// `body` cut at line ends into about four chunks per core, each with its first line;
/// one chunk when the body is small.
fn split_chunks(body: &[u8], first_line: u64) -> Vec<(&[u8], u64)> {
    if body.len() < PARALLEL_BYTES {
        return vec![(body, first_line)];
    }
    let pieces = 4 * threads::available_cores().max(1);
    let target = body.len().div_ceil(pieces);
    let mut chunks = Vec::with_capacity(pieces);
    let (mut start, mut line) = (0, first_line);
    while start < body.len() {
        let end = match memchr::memchr(b'\n', &body[(start + target).min(body.len())..]) {
            Some(offset) => (start + target + offset + 1).min(body.len()),
            None => body.len(),
        };
        chunks.push((&body[start..end], line));
        line += count_lines(&body[start..end]);
        start = end;
    }
    chunks
}

/// One field's part in the numbers pass: its value, and what it tells of its column.
fn take_field(counts: &mut Counts, field: &[u8], line: u64, as_text: bool) -> f64 {
    if as_text {
        return f64::NAN;
    }
    match classify(field) {
        Cell::Missing => f64::NAN,
        Cell::Number(value) => {
            counts.numbers += 1;
            if value.is_infinite() && counts.first_infinite.is_none() {
                counts.first_infinite = Some((line, field_text(trim(field))));
            }
            value
        }
        Cell::Text => {
            counts.texts += 1;
            if counts.first_text.is_none() {
                counts.first_text = Some((line, field_text(trim(field))));
            }
            f64::NAN
        }
    }
}

/// The numbers pass over a chunk without quotes, split by hand (lines at `\n`, fields
/// at the delimiter; blank lines skipped), written into `columns` (one slice per column,
/// as many rows as [`count_rows`] found) and `lines`.
fn parse_plain_chunk(
    shape: &Shape<'_>,
    chunk: &[u8],
    first_line: u64,
    text_columns: &[bool],
    columns: &mut [&mut [f64]],
    lines: &mut [u64],
) -> Result<Vec<Counts>, DataError> {
    let mut counts = vec![Counts::default(); shape.width];
    let mut line = first_line;
    let mut row = 0;
    let mut start = 0;
    while start < chunk.len() {
        let end = memchr::memchr(b'\n', &chunk[start..]).map_or(chunk.len(), |at| start + at);
        let text = &chunk[start..end];
        start = end + 1;
        if is_blank(text) {
            line += 1;
            continue;
        }
        let text = text.strip_suffix(b"\r").unwrap_or(text);
        let mut found = 0;
        let mut field_start = 0;
        loop {
            let field_end = memchr::memchr(shape.delimiter, &text[field_start..])
                .map_or(text.len(), |at| field_start + at);
            if found < shape.width {
                let field = &text[field_start..field_end];
                columns[found][row] =
                    take_field(&mut counts[found], field, line, text_columns[found]);
            }
            found += 1;
            if field_end == text.len() {
                break;
            }
            field_start = field_end + 1;
        }
        if found != shape.width {
            return Err(DataError::RaggedRow {
                path: shape.path.to_path_buf(),
                line,
                expected: shape.width,
                found,
            });
        }
        lines[row] = line;
        row += 1;
        line += 1;
    }
    Ok(counts)
}

/// The numbers pass over one chunk that starts on line `first_line`.
fn parse_chunk(
    shape: &Shape<'_>,
    chunk: &[u8],
    first_line: u64,
    text_columns: &[bool],
) -> Result<Numbers, DataError> {
    let mut reader = csv_reader(chunk, shape.delimiter);
    let mut record = csv::ByteRecord::new();
    let estimate = chunk.len() / (4 * shape.width).max(1);
    let mut part = Numbers {
        numbers: (0..shape.width)
            .map(|_| Vec::with_capacity(estimate))
            .collect(),
        counts: vec![Counts::default(); shape.width],
        lines: Vec::with_capacity(estimate),
    };
    loop {
        match reader.read_byte_record(&mut record) {
            Ok(true) => {}
            Ok(false) => break,
            Err(error) => return Err(syntax_error(shape.path, error)),
        }
        let line = first_line + record.position().map_or(1, |p| p.line()) - 1;
        shape.check_width(&record, line)?;
        for (j, field) in record.iter().enumerate() {
            let value = take_field(&mut part.counts[j], field, line, text_columns[j]);
            part.numbers[j].push(value);
        }
        part.lines.push(line);
    }
    Ok(part)
}

/// The text pass: for each column marked in `wanted`, one code per row and the levels
/// (in order of first appearance). By hand in parallel chunks when the body has no
/// quotes (each chunk with its own dictionaries, joined in order), else with the CSV
/// reader.
fn parse_texts(
    shape: &Shape<'_>,
    body: &[u8],
    wanted: &[bool],
    names: &[String],
) -> Result<HashMap<usize, TextColumn>, DataError> {
    let columns: Vec<usize> = (0..shape.width).filter(|&j| wanted[j]).collect();
    if columns.is_empty() {
        return Ok(HashMap::new());
    }
    let parts: Vec<Vec<Dictionary<'_>>> = if memchr::memchr(b'"', body).is_some() {
        vec![quoted_texts(shape, body, &columns)?]
    } else {
        let chunks = split_chunks(body, 1);
        let threads = threads::budget().threads;
        threads::on_pool(threads, || {
            chunks
                .par_iter()
                .map(|&(chunk, _)| plain_texts(shape, chunk, &columns))
                .collect()
        })
    };
    // Join the chunks' dictionaries in order: a value keeps the code of its first
    // appearance in the file.
    let mut out = HashMap::new();
    for (slot, &j) in columns.iter().enumerate() {
        let mut codes_of: HashMap<&[u8], u32> = HashMap::new();
        let mut levels: Vec<String> = Vec::new();
        let mut codes: Vec<u32> =
            Vec::with_capacity(parts.iter().map(|p| p[slot].codes.len()).sum());
        for part in &parts {
            let dictionary = &part[slot];
            let global: Vec<u32> = dictionary
                .levels
                .iter()
                .map(|level| {
                    if let Some(&code) = codes_of.get(level.as_ref()) {
                        return Ok(code);
                    }
                    let text = std::str::from_utf8(level).map_err(|_| DataError::Column {
                        path: shape.path.to_path_buf(),
                        column: names[j].clone(),
                        problem: format!(
                            "'{}' is not UTF-8 text: nabla reads UTF-8 (convert the file, e.g. iconv -f LATIN1 -t UTF-8), so that no two values merge",
                            field_text(level)
                        ),
                    })?;
                    levels.push(text.to_string());
                    codes_of.insert(level.as_ref(), (levels.len() - 1) as u32);
                    Ok((levels.len() - 1) as u32)
                })
                .collect::<Result<_, DataError>>()?;
            codes.extend(dictionary.codes.iter().map(|&code| {
                if code == MISSING_CODE {
                    MISSING_CODE
                } else {
                    global[code as usize]
                }
            }));
        }
        out.insert(j, (codes, levels));
    }
    Ok(out)
}

/// One column's text values in one chunk: a code per row, and the distinct values (as
/// slices of the file where they can be) in order of first appearance.
#[derive(Default)]
struct Dictionary<'a> {
    codes: Vec<u32>,
    levels: Vec<Cow<'a, [u8]>>,
    index: HashMap<Cow<'a, [u8]>, u32>,
}

impl<'a> Dictionary<'a> {
    /// Adds one row's value (trimmed; a missing token is missing).
    fn push(&mut self, field: Cow<'a, [u8]>) {
        let trimmed = trim(&field);
        let code = if super::is_missing_token(trimmed) {
            MISSING_CODE
        } else if let Some(&code) = self.index.get(trimmed) {
            code
        } else {
            let code = self.levels.len() as u32;
            let level = match field {
                Cow::Borrowed(field) => Cow::Borrowed(trim(field)),
                Cow::Owned(_) => Cow::Owned(trimmed.to_vec()),
            };
            self.levels.push(level.clone());
            self.index.insert(level, code);
            code
        };
        self.codes.push(code);
    }
}

/// The text pass over a chunk without quotes (rows already checked by the numbers pass).
fn plain_texts<'a>(shape: &Shape<'_>, chunk: &'a [u8], columns: &[usize]) -> Vec<Dictionary<'a>> {
    let mut dictionaries: Vec<Dictionary<'a>> =
        columns.iter().map(|_| Dictionary::default()).collect();
    let mut start = 0;
    while start < chunk.len() {
        let end = memchr::memchr(b'\n', &chunk[start..]).map_or(chunk.len(), |at| start + at);
        let text = &chunk[start..end];
        start = end + 1;
        if is_blank(text) {
            continue;
        }
        let text = text.strip_suffix(b"\r").unwrap_or(text);
        let (mut j, mut slot, mut field_start) = (0, 0, 0);
        while slot < columns.len() {
            let field_end = memchr::memchr(shape.delimiter, &text[field_start..])
                .map_or(text.len(), |at| field_start + at);
            if j == columns[slot] {
                dictionaries[slot].push(Cow::Borrowed(&text[field_start..field_end]));
                slot += 1;
            }
            j += 1;
            field_start = (field_end + 1).min(text.len());
        }
    }
    dictionaries
}

/// The text pass with the CSV reader (a body with quotes, whose fields are unescaped
/// copies), in one piece.
fn quoted_texts<'a>(
    shape: &Shape<'_>,
    body: &'a [u8],
    columns: &[usize],
) -> Result<Vec<Dictionary<'a>>, DataError> {
    let mut dictionaries: Vec<Dictionary<'a>> =
        columns.iter().map(|_| Dictionary::default()).collect();
    let mut reader = csv_reader(body, shape.delimiter);
    let mut record = csv::ByteRecord::new();
    loop {
        match reader.read_byte_record(&mut record) {
            Ok(true) => {}
            Ok(false) => break,
            Err(error) => return Err(syntax_error(shape.path, error)),
        }
        for (slot, &j) in columns.iter().enumerate() {
            dictionaries[slot].push(Cow::Owned(record[j].to_vec()));
        }
    }
    Ok(dictionaries)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(text: &str) -> Vec<Vec<Vec<u8>>> {
        text.lines()
            .map(|line| line.split(',').map(|f| f.as_bytes().to_vec()).collect())
            .collect()
    }

    #[test]
    fn a_header_is_text_above_numbers_or_values_found_nowhere_below() {
        assert!(looks_like_header(&rows("a,b,target\n1,2,x\n3,4,y")));
        assert!(!looks_like_header(&rows("1,2,3\n4,5,6")));
        assert!(!looks_like_header(&rows("1,2,x\n3,4,y")));
        assert!(looks_like_header(&rows("colour,size\nred,big\nblue,small")));
        assert!(!looks_like_header(&rows("red,big\nblue,small\nred,small")));
        // A lone row of text is a header with no data under it; one with a number is data.
        assert!(looks_like_header(&rows("a,b")));
        assert!(!looks_like_header(&rows("a,1")));
        // Numbers as names: csv.Sniffer's vote (a year above decimals, a name above codes).
        assert!(looks_like_header(&rows(
            "country,2019,2020,2021\nFR,59.3,13.0,1\nDE,41.2,22.5,0\nIT,50.1,17.0,1"
        )));
        assert!(!looks_like_header(&rows(
            "FR,59.3,13.0,1\nDE,41.2,22.5,0\nIT,50.1,17.0,1"
        )));
    }

    #[test]
    fn delimiters_come_from_the_extension_or_the_lines() {
        let sniff = |name: &str, text: &str| sniff_delimiter(Path::new(name), text.as_bytes());
        assert_eq!(sniff("t.tsv", "a,b\n1,2"), b'\t');
        assert_eq!(sniff("t.csv", "a;b;c\n1,5;2;3\n"), b';');
        assert_eq!(sniff("t.txt", "a\tb\n1\t2\n"), b'\t');
        assert_eq!(sniff("t.txt", "a|b|c\n1|2|3\n"), b'|');
        assert_eq!(sniff("t.csv", "a\n1\n"), b',');
    }

    #[test]
    fn chunks_start_on_line_boundaries_with_their_line_numbers() {
        let body: String = (0..200_000).map(|i| format!("{i},{}\n", i * 2)).collect();
        let chunks = split_chunks(body.as_bytes(), 2);
        assert!(chunks.len() > 1);
        let mut line = 2;
        for (chunk, first) in &chunks {
            assert_eq!(*first, line);
            assert!(chunk.ends_with(b"\n"));
            line += count_lines(chunk);
        }
        assert_eq!(
            chunks.iter().map(|(c, _)| c.len()).sum::<usize>(),
            body.len()
        );
    }
}
