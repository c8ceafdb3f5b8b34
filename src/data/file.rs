//! Opening data files that may be gzip-compressed (recognised by their magic bytes, not
//! their name), and turning read errors into [`DataError`]s that name the file.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use flate2::bufread::GzDecoder;

use super::DataError;

const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// Where a byte stream comes from: the path, and whether it is being decompressed.
#[derive(Clone, Debug)]
pub struct DataFile {
    path: PathBuf,
    gzip: bool,
    /// The file's length on disk.
    length: u64,
}

/// Deflate expands at most about 1032-fold (its longest match, 258 bytes, costs at least
/// two bits): a bound on what a gzip file can decompress to.
const DEFLATE_MAX_RATIO: u64 = 1032;

impl DataFile {
    /// Opens `path`, sniffing the first two bytes for the gzip magic number, and returns
    /// the file's description with its (decompressed) byte stream. A directory, a device,
    /// a pipe, or an empty file, is refused.
    pub fn open(path: &Path) -> Result<(Self, Box<dyn Read + Send>), DataError> {
        let io_error = |source| DataError::Io {
            path: path.to_path_buf(),
            source,
        };
        if path.is_dir() {
            return Err(DataError::IsDirectory {
                path: path.to_path_buf(),
            });
        }
        // Judged before opening: a device (/dev/zero) could be read without end, and
        // opening a named pipe waits for a writer; the data is read twice besides (to
        // load it and to fingerprint it), which a pipe cannot give.
        let metadata = std::fs::metadata(path).map_err(io_error)?;
        if !metadata.is_file() {
            return Err(io_error(io::Error::new(
                io::ErrorKind::InvalidInput,
                "is a device or a pipe, not a data file",
            )));
        }
        let file = File::open(path).map_err(io_error)?;
        let length = file.metadata().map_err(io_error)?.len();
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
            length,
        };
        Ok((file, reader))
    }

    /// The most bytes the stream can hold: the file's length, or for gzip the length
    /// times deflate's largest expansion. A bound for reserving memory up front, which a
    /// header's claim alone must never decide.
    pub fn max_stream_len(&self) -> u64 {
        if self.gzip {
            self.length.saturating_mul(DEFLATE_MAX_RATIO)
        } else {
            self.length
        }
    }

    /// Whether the stream is being decompressed.
    pub fn is_gzip(&self) -> bool {
        self.gzip
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
