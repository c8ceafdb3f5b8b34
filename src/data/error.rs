//! Why a data set could not be loaded: every variant names the file and, where it
//! applies, the 1-based line and column or the byte counts involved.

use std::io;
use std::path::PathBuf;

use thiserror::Error;

use crate::limits::TooLarge;

/// A data-loading failure, with enough context to fix the input.
#[derive(Debug, Error)]
pub enum DataError {
    /// The file could not be opened or read.
    #[error("{path}: cannot read: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The operating system's reason.
        source: io::Error,
    },
    /// The file (after decompression) holds no data.
    #[error("{path}: the file is empty")]
    Empty {
        /// The file.
        path: PathBuf,
    },
    /// The file starts like gzip but does not decompress.
    #[error("{path}: corrupt gzip data: {detail}")]
    CorruptGzip {
        /// The file.
        path: PathBuf,
        /// The decompressor's message.
        detail: String,
    },
    /// A CSV row with another number of columns than the first row.
    #[error("{path}:{line}: expected {expected} columns (as on the first row), found {found}")]
    RaggedRow {
        /// The file.
        path: PathBuf,
        /// 1-based line.
        line: u64,
        /// Columns of the first row.
        expected: usize,
        /// Columns of this row.
        found: usize,
    },
    /// A CSV row with only a label and no feature columns.
    #[error("{path}:{line}: a row needs at least one feature column before the label")]
    NoFeatures {
        /// The file.
        path: PathBuf,
        /// 1-based line.
        line: u64,
    },
    /// A feature field that does not parse as a number.
    #[error("{path}:{line}:{column}: '{field}' is not a number")]
    NotANumber {
        /// The file.
        path: PathBuf,
        /// 1-based line.
        line: u64,
        /// 1-based column.
        column: usize,
        /// The field's text.
        field: String,
    },
    /// A feature field that is NaN or infinite.
    #[error("{path}:{line}:{column}: '{field}' is not finite")]
    NonFinite {
        /// The file.
        path: PathBuf,
        /// 1-based line.
        line: u64,
        /// 1-based column.
        column: usize,
        /// The field's text.
        field: String,
    },
    /// A label field that is not a non-negative integer.
    #[error("{path}:{line}:{column}: label '{field}' is not a non-negative integer")]
    LabelNotInteger {
        /// The file.
        path: PathBuf,
        /// 1-based line.
        line: u64,
        /// 1-based column.
        column: usize,
        /// The field's text.
        field: String,
    },
    /// A label outside `0..classes`.
    #[error("{path}:{location}: label {label} is outside 0..{classes}")]
    LabelOutOfRange {
        /// The file.
        path: PathBuf,
        /// `line:column` for CSV, `item N` (0-based) for IDX.
        location: String,
        /// The label.
        label: u64,
        /// The number of classes.
        classes: usize,
    },
    /// An IDX file whose first two bytes are not zero.
    #[error("{path}: not an IDX file: magic number 0x{magic:08x} (expected 0x0000TTDD)")]
    IdxMagic {
        /// The file.
        path: PathBuf,
        /// The first four bytes, big-endian.
        magic: u32,
    },
    /// An IDX file whose elements are not unsigned bytes.
    #[error("{path}: IDX element type 0x{found:02x}, expected 0x08 (unsigned byte)")]
    IdxElementType {
        /// The file.
        path: PathBuf,
        /// The type byte.
        found: u8,
    },
    /// An IDX file with the wrong number of dimensions.
    #[error("{path}: IDX {what} need {expected} dimensions, found {found}")]
    IdxDimensions {
        /// The file.
        path: PathBuf,
        /// "images" or "labels".
        what: &'static str,
        /// Dimensions required.
        expected: u8,
        /// Dimensions in the header.
        found: u8,
    },
    /// An IDX file that ends inside its header.
    #[error("{path}: the IDX header needs {expected} bytes, the file has {found}")]
    IdxHeader {
        /// The file.
        path: PathBuf,
        /// Header bytes needed.
        expected: usize,
        /// Bytes present.
        found: usize,
    },
    /// An IDX file shorter than its header says (truncated).
    #[error("{path}: truncated: the IDX header promises {expected} bytes of data, found {found}")]
    IdxSize {
        /// The file.
        path: PathBuf,
        /// Data bytes the header promises.
        expected: u64,
        /// Data bytes present.
        found: u64,
    },
    /// An IDX file with more data than its header says.
    #[error("{path}: the IDX data runs past the {expected} bytes its header promises")]
    IdxTrailing {
        /// The file.
        path: PathBuf,
        /// Data bytes the header promises.
        expected: u64,
    },
    /// A size in a file's header, or the data so far, too large for memory.
    #[error("{source}")]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// The size and the limit.
        source: TooLarge,
    },
    /// A validation fraction outside (0, 1).
    #[error("a validation fraction of {fraction}: expected a number in (0, 1)")]
    ValidationFraction {
        /// The fraction.
        fraction: f64,
    },
    /// A split that leaves the training or the validation set empty.
    #[error("holding out {fraction} of {rows} training rows leaves one of the sets empty")]
    ValidationSplitEmpty {
        /// The fraction.
        fraction: f64,
        /// Training rows before the split.
        rows: usize,
    },
    /// A directory where a file was expected.
    #[error("{path}: is a directory, not a data file")]
    IsDirectory {
        /// The path.
        path: PathBuf,
    },
    /// An image file and a label file with different item counts.
    #[error("{images} holds {image_count} images but {labels} holds {label_count} labels")]
    CountMismatch {
        /// The image file.
        images: PathBuf,
        /// The label file.
        labels: PathBuf,
        /// Images.
        image_count: usize,
        /// Labels.
        label_count: usize,
    },
    /// A feature matrix and a label vector of different lengths.
    #[error("the {part} set has {rows} rows of features but {labels} labels")]
    LengthMismatch {
        /// "training" or "test".
        part: &'static str,
        /// Feature rows.
        rows: usize,
        /// Labels.
        labels: usize,
    },
    /// Training and test sets with different feature counts.
    #[error("the training set has {train} features per row but the test set has {test}")]
    FeatureMismatch {
        /// Training features.
        train: usize,
        /// Test features.
        test: usize,
    },
    /// A directory that holds neither IDX files nor CSV files in the expected names.
    #[error("{path}: no data set found (expected train.csv[.gz] and test.csv[.gz], or the four MNIST IDX files)")]
    UnknownLayout {
        /// The directory.
        path: PathBuf,
    },
    /// A table cell that cannot be used (tables with named columns: `data::tabular`).
    #[error("{path}:{line}: column '{column}': '{value}' {problem}")]
    Cell {
        /// The file.
        path: PathBuf,
        /// 1-based line (the row number for NumPy files).
        line: u64,
        /// The column's name.
        column: String,
        /// The cell's text, quoted as [`crate::data`] quotes fields (at most 40 characters).
        value: String,
        /// What is wrong (`is text in a numeric column ...`).
        problem: String,
    },
    /// A table column that cannot be used (all missing, not found, one class ...).
    #[error("{path}: column '{column}': {problem}")]
    Column {
        /// The file.
        path: PathBuf,
        /// The column's name.
        column: String,
        /// What is wrong.
        problem: String,
    },
    /// A table that cannot be used as a whole (no rows, duplicate column names ...).
    #[error("{path}: {problem}")]
    Table {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        problem: String,
    },
    /// Regression targets whose mean or spread overflows.
    #[error("the regression targets (up to {largest:e} in size) overflow when their mean and spread are computed: rescale the target")]
    TargetOverflow {
        /// The largest magnitude.
        largest: f64,
    },
    /// Writing a data set failed.
    #[error("{path}: cannot write: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// The operating system's reason.
        source: io::Error,
    },
}
