//! The IDX format of the MNIST files: a 4-byte magic number `00 00 TT DD` (element type
//! `TT`, here 0x08 = unsigned byte, and `DD` dimensions), `DD` big-endian `u32` sizes,
//! then the elements in row-major order. Plain or gzip-compressed.

use std::path::Path;

use ndarray::{Array1, Array2};

use super::file::read_all;
use super::DataError;

const UNSIGNED_BYTE: u8 = 0x08;

/// The images of an IDX3 file as `(count, rows * columns)` pixels.
pub fn load_idx_images(path: &Path) -> Result<Array2<u8>, DataError> {
    let mut bytes = read_all(path)?;
    let (dims, _) = parse(&bytes, path, "images", 3)?;
    let features = dims[1] * dims[2];
    // Drop the header in place, so that the pixels are never held twice.
    bytes.drain(..header_len(3));
    Ok(Array2::from_shape_vec((dims[0], features), bytes).expect("size checked by parse"))
}

/// Bytes before the data: the magic number and one `u32` per dimension.
fn header_len(dimensions: u8) -> usize {
    4 + 4 * dimensions as usize
}

/// The labels of an IDX1 file, each checked to be in `0..classes`.
pub fn load_idx_labels(path: &Path, classes: usize) -> Result<Array1<usize>, DataError> {
    let bytes = read_all(path)?;
    let (_, data) = parse(&bytes, path, "labels", 1)?;
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

/// Checks the header and returns the sizes and the element bytes.
fn parse<'a>(
    bytes: &'a [u8],
    path: &Path,
    what: &'static str,
    dimensions: u8,
) -> Result<(Vec<usize>, &'a [u8]), DataError> {
    let too_short = |expected: u64| DataError::IdxSize {
        path: path.to_path_buf(),
        expected,
        found: bytes.len() as u64,
    };
    if bytes.len() < 4 {
        return Err(too_short(4));
    }
    let magic = u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
    if bytes[0] != 0 || bytes[1] != 0 {
        return Err(DataError::IdxMagic {
            path: path.to_path_buf(),
            magic,
        });
    }
    if bytes[2] != UNSIGNED_BYTE {
        return Err(DataError::IdxElementType {
            path: path.to_path_buf(),
            found: bytes[2],
        });
    }
    if bytes[3] != dimensions {
        return Err(DataError::IdxDimensions {
            path: path.to_path_buf(),
            what,
            expected: dimensions,
            found: bytes[3],
        });
    }
    let header_len = header_len(dimensions);
    if bytes.len() < header_len {
        return Err(too_short(header_len as u64));
    }
    let dims: Vec<usize> = bytes[4..header_len]
        .chunks_exact(4)
        .map(|size| u32::from_be_bytes([size[0], size[1], size[2], size[3]]) as usize)
        .collect();
    let expected: u64 = dims.iter().map(|&d| d as u64).product();
    let data = &bytes[header_len..];
    if data.len() as u64 != expected {
        return Err(DataError::IdxSize {
            path: path.to_path_buf(),
            expected,
            found: data.len() as u64,
        });
    }
    Ok((dims, data))
}
