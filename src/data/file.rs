//! Opening data files that may be gzip-compressed (recognised by their magic bytes, not
//! their name), and turning read errors into [`DataError`]s that name the file.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use flate2::bufread::GzDecoder;

use super::DataError;

const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// Where a byte stream comes from: the path, and whether it is being decompressed.
#[derive(Clone, Debug)]
pub struct DataFile {
    path: PathBuf,
    gzip: bool,
    size_hint: usize,
}

impl DataFile {
    /// Opens `path`, sniffing the first two bytes for the gzip magic number, and returns
    /// the file's description with its (decompressed) byte stream.
    pub fn open(path: &Path) -> Result<(Self, Box<dyn Read + Send>), DataError> {
        let io_error = |source| DataError::Io {
            path: path.to_path_buf(),
            source,
        };
        let mut file = File::open(path).map_err(io_error)?;
        let size_hint = decompressed_size_hint(&mut file);
        let mut buffered = BufReader::with_capacity(1 << 16, file);
        let head = buffered.fill_buf().map_err(io_error)?;
        if head.is_empty() {
            return Err(DataError::Empty {
                path: path.to_path_buf(),
            });
        }
        let gzip = head.starts_with(&GZIP_MAGIC);
        let reader: Box<dyn Read + Send> = if gzip {
            Box::new(GzDecoder::new(buffered))
        } else {
            Box::new(buffered)
        };
        let file = Self {
            path: path.to_path_buf(),
            gzip,
            size_hint: if gzip {
                size_hint.gzip
            } else {
                size_hint.plain
            },
        };
        Ok((file, reader))
    }

    /// The error for a failure while reading this file: corrupt gzip if it is gzip.
    pub fn read_error(&self, error: io::Error) -> DataError {
        if self.gzip && error.kind() != io::ErrorKind::PermissionDenied {
            DataError::CorruptGzip {
                path: self.path.clone(),
                detail: error.to_string(),
            }
        } else {
            DataError::Io {
                path: self.path.clone(),
                source: error,
            }
        }
    }
}

/// Likely sizes of the contents: the file's length if it is plain, and the gzip
/// trailer's ISIZE (the uncompressed length mod 2^32) if it is gzip. Only a hint for
/// reserving memory; 0 when unknown.
struct SizeHint {
    plain: usize,
    gzip: usize,
}

fn decompressed_size_hint(file: &mut File) -> SizeHint {
    let plain = file.metadata().map_or(0, |m| m.len() as usize);
    let mut trailer = [0u8; 4];
    let gzip = (plain >= 18)
        .then(|| {
            file.seek(SeekFrom::End(-4)).ok()?;
            file.read_exact(&mut trailer).ok()?;
            file.seek(SeekFrom::Start(0)).ok()
        })
        .flatten()
        .map_or(0, |_| u32::from_le_bytes(trailer) as usize);
    SizeHint { plain, gzip }
}

/// The whole (decompressed) contents of `path`, read into one allocation of the expected
/// size; an error if there are none.
pub fn read_all(path: &Path) -> Result<Vec<u8>, DataError> {
    let (file, mut reader) = DataFile::open(path)?;
    let mut bytes = Vec::with_capacity(file.size_hint.saturating_add(1).min(1 << 32));
    reader
        .read_to_end(&mut bytes)
        .map_err(|error| file.read_error(error))?;
    if bytes.is_empty() {
        return Err(DataError::Empty {
            path: path.to_path_buf(),
        });
    }
    Ok(bytes)
}

/// `dir/NAME.gz` if it exists, else `dir/NAME`; a not-found error naming both otherwise.
pub fn find_compressed_or_plain(dir: &Path, name: &str) -> Result<PathBuf, DataError> {
    let compressed = dir.join(format!("{name}.gz"));
    if compressed.is_file() {
        return Ok(compressed);
    }
    let plain = dir.join(name);
    if plain.is_file() {
        return Ok(plain);
    }
    Err(DataError::Io {
        path: plain,
        source: io::Error::new(io::ErrorKind::NotFound, "no such file (nor with .gz)"),
    })
}
