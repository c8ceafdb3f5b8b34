//! The IDX format of the MNIST files: a 4-byte magic number `00 00 TT DD` (element type
//! `TT`, here 0x08 = unsigned byte, and `DD` dimensions), `DD` big-endian `u32` sizes,
//! then the elements in row-major order. Plain or gzip-compressed.
//!
//! The header is read first and the size it declares checked (checked arithmetic, and
//! against the memory available) before the data is read; memory is reserved for no
//! more than the file can hold, and the data is read to at most one byte past the
//! declared size, so a file that runs longer than its header says is refused without
//! decompressing the rest.

use std::io::Read;
use std::path::Path;

use ndarray::{Array1, Array2};

use super::file::DataFile;
use super::DataError;
use crate::limits::{check_memory, product};

const UNSIGNED_BYTE: u8 = 0x08;

/// The images of an IDX3 file as `(count, rows * columns)` pixels.
pub fn load_idx_images(path: &Path) -> Result<Array2<u8>, DataError> {
    let (dims, data) = read_idx(path, "images", 3)?;
    let shape = (dims[0], dims[1] * dims[2]);
    Array2::from_shape_vec(shape, data).map_err(|_| DataError::IdxSize {
        path: path.to_path_buf(),
        expected: product(&dims).unwrap_or(u64::MAX),
        found: 0,
    })
}

/// The labels of an IDX1 file, each checked to be in `0..classes`.
pub fn load_idx_labels(path: &Path, classes: usize) -> Result<Array1<usize>, DataError> {
    let (_, data) = read_idx(path, "labels", 1)?;
    if let Some((item, &label)) = data
        .iter()
        .enumerate()
        .find(|&(_, &label)| label as usize >= classes)
    {
        return Err(DataError::LabelOutOfRange {
            path: path.to_path_buf(),
            location: format!("item {item}"),
            label: label as u64,
            classes,
        });
    }
    Ok(data.iter().map(|&label| label as usize).collect())
}

/// An image file and its label file, checked to hold the same number of items.
pub fn load_idx_pair(
    images: &Path,
    labels: &Path,
    classes: usize,
) -> Result<(Array2<u8>, Array1<usize>), DataError> {
    let pixels = load_idx_images(images)?;
    let label_values = load_idx_labels(labels, classes)?;
    if pixels.nrows() != label_values.len() {
        return Err(DataError::CountMismatch {
            images: images.to_path_buf(),
            labels: labels.to_path_buf(),
            image_count: pixels.nrows(),
            label_count: label_values.len(),
        });
    }
    Ok((pixels, label_values))
}

/// Reads and checks the header, then exactly the data it declares: the sizes and the
/// element bytes.
fn read_idx(
    path: &Path,
    what: &'static str,
    dimensions: u8,
) -> Result<(Vec<usize>, Vec<u8>), DataError> {
    let (file, mut reader) = DataFile::open(path)?;
    let mut magic = [0u8; 4];
    let read = read_up_to(&mut reader, &mut magic, &file)?;
    if read < magic.len() {
        return Err(too_short(path, 4, read));
    }
    if magic[0] != 0 || magic[1] != 0 {
        return Err(DataError::IdxMagic {
            path: path.to_path_buf(),
            magic: u32::from_be_bytes(magic),
        });
    }
    if magic[2] != UNSIGNED_BYTE {
        return Err(DataError::IdxElementType {
            path: path.to_path_buf(),
            found: magic[2],
        });
    }
    if magic[3] != dimensions {
        return Err(DataError::IdxDimensions {
            path: path.to_path_buf(),
            what,
            expected: dimensions,
            found: magic[3],
        });
    }
    let mut sizes = vec![0u8; 4 * dimensions as usize];
    let read = read_up_to(&mut reader, &mut sizes, &file)?;
    if read < sizes.len() {
        return Err(too_short(path, 4 + sizes.len(), 4 + read));
    }
    let dims: Vec<usize> = sizes
        .chunks_exact(4)
        .map(|size| u32::from_be_bytes([size[0], size[1], size[2], size[3]]) as usize)
        .collect();
    let expected = check_memory(
        format!("{}: the IDX {what} ({dims:?})", path.display()),
        product(&dims),
    )
    .map_err(|source| DataError::TooLarge {
        path: path.to_path_buf(),
        source,
    })?;
    // Reserved up front: the declared size, but never more than the file can hold (the
    // vector grows with what is really read beyond that).
    let mut data = Vec::with_capacity(expected.min(file.max_stream_len()) as usize);
    reader
        .take(expected.saturating_add(1))
        .read_to_end(&mut data)
        .map_err(|error| file.read_error(error))?;
    match (data.len() as u64).cmp(&expected) {
        std::cmp::Ordering::Equal => Ok((dims, data)),
        std::cmp::Ordering::Less => Err(DataError::IdxSize {
            path: path.to_path_buf(),
            expected,
            found: data.len() as u64,
        }),
        std::cmp::Ordering::Greater => Err(DataError::IdxTrailing {
            path: path.to_path_buf(),
            expected,
        }),
    }
}

/// Fills as much of `buffer` as the stream holds; returns how much.
fn read_up_to(
    reader: &mut impl Read,
    buffer: &mut [u8],
    file: &DataFile,
) -> Result<usize, DataError> {
    let mut filled = 0;
    while filled < buffer.len() {
        match reader.read(&mut buffer[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(error) if error.kind() == std::io::ErrorKind::Interrupted => {}
            Err(error) => return Err(file.read_error(error)),
        }
    }
    Ok(filled)
}

fn too_short(path: &Path, expected: usize, found: usize) -> DataError {
    DataError::IdxHeader {
        path: path.to_path_buf(),
        expected,
        found,
    }
}
