//! The `.npz` model file (a zip of `.npy` arrays, stored or deflated) and its JSON
//! architecture sidecar, which records the SHA-256 of the `.npz` it describes.
//!
//! Arrays are read by a small `.npy` reader of nabla's own, so that each header's shape
//! is checked against the model before any data is read, and the data is read to exactly
//! the size the header declares.

use std::io::{Cursor, Read};
use std::path::{Path, PathBuf};

use ndarray::ArrayD;
use ndarray_npy::NpzWriter;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use thiserror::Error;
use zip::ZipArchive;

use super::architecture::ArchitectureProblem;
use super::{
    fill_model, read_file, sidecar_path, Architecture, ArraySource, CheckpointError, TrainedRecord,
};
use crate::atomic_file::write_bytes_atomically;
use crate::data::preprocess::Preprocessing;
use crate::float::Float;
use crate::layers::StateValues;
use crate::limits::product;
use crate::network::MultiLayerPerceptron;

/// The sidecar `m.json`: the architecture and the SHA-256 of `m.npz`, and, while a save
/// is under way, the entry of the `.npz` being replaced.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Sidecar {
    #[serde(flatten)]
    entry: SidecarEntry,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    previous: Option<SidecarEntry>,
}

/// One `.npz`'s architecture and hash, the seed of the run that trained it and, for a
/// model trained on a table, its preprocessing.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct SidecarEntry {
    #[serde(flatten)]
    architecture: Architecture,
    npz_sha256: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    seed: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    preprocessing: Option<Preprocessing>,
}

/// Writes `model` to `path`, with what `record` holds in the sidecar, in
/// three atomic steps so that the pair is old-or-new under a kill at any point: the
/// sidecar first describes both the new `.npz` and the one on disk (`previous`), then the
/// `.npz` is replaced, then the sidecar keeps only the new entry. The loader takes the
/// entry whose hash matches the `.npz` it finds.
pub(super) fn save_with_record<F: Float>(
    model: &MultiLayerPerceptron<F>,
    path: &Path,
    record: &TrainedRecord,
) -> Result<(), CheckpointError> {
    for (file, bytes) in save_plan(model, path, record)? {
        write_bytes_atomically(&file, &bytes).map_err(CheckpointError::io(&file))?;
    }
    Ok(())
}

/// The atomic writes of a [`save_with_record`], in order (see there).
fn save_plan<F: Float>(
    model: &MultiLayerPerceptron<F>,
    path: &Path,
    record: &TrainedRecord,
) -> Result<Vec<(PathBuf, Vec<u8>)>, CheckpointError> {
    let mut npz = NpzWriter::new(Cursor::new(Vec::new()));
    for (position, layer) in model.layers().iter().enumerate() {
        for (name, shape) in layer.state_entries() {
            let key = format!("{position}.{name}");
            let added = match layer.state_values(name) {
                Some(StateValues::Floats(values)) => ArrayD::from_shape_vec(shape, values)
                    .map_err(std::io::Error::other)
                    .and_then(|array| npz.add_array(key, &array).map_err(std::io::Error::other)),
                Some(StateValues::Count(count)) => npz
                    .add_array(key, &ndarray::arr0(count as i64))
                    .map_err(std::io::Error::other),
                None => continue,
            };
            added.map_err(CheckpointError::io(path))?;
        }
    }
    let bytes = npz
        .finish()
        .map_err(|error| CheckpointError::io(path)(std::io::Error::other(error)))?
        .into_inner();
    let entry = SidecarEntry {
        architecture: Architecture::of(model),
        npz_sha256: sha256_hex(&bytes),
        seed: record.seed,
        preprocessing: record.preprocessing.clone(),
    };
    let sidecar_file = sidecar_path(path);
    let on_disk = read_sidecar(&sidecar_file)
        .ok()
        .and_then(|sidecar| sidecar.matching(path).cloned());
    let mut plan = Vec::new();
    if let Some(previous) = on_disk.filter(|previous| *previous != entry) {
        let both = Sidecar {
            entry: entry.clone(),
            previous: Some(previous),
        };
        plan.push((sidecar_file.clone(), sidecar_json(&both)));
    }
    plan.push((path.to_path_buf(), bytes));
    let new = Sidecar {
        entry,
        previous: None,
    };
    plan.push((sidecar_file, sidecar_json(&new)));
    Ok(plan)
}

fn sidecar_json(sidecar: &Sidecar) -> Vec<u8> {
    // Cannot fail: strings, integers and finite numbers.
    serde_json::to_string_pretty(sidecar)
        .expect("the sidecar serialises")
        .into_bytes()
}

fn read_sidecar(path: &Path) -> Result<Sidecar, CheckpointError> {
    let bytes = read_file(path).map_err(|error| match error {
        CheckpointError::Io { path, source } => CheckpointError::ArchitectureIo { path, source },
        other => other,
    })?;
    serde_json::from_slice(&bytes).map_err(|error| CheckpointError::Architecture {
        path: path.to_path_buf(),
        problem: ArchitectureProblem::Json(error),
    })
}

impl Sidecar {
    /// The entry describing the `.npz` at `npz` as it is now, if either does.
    fn matching(&self, npz: &Path) -> Option<&SidecarEntry> {
        let found = sha256_hex(&read_file(npz).ok()?);
        self.entry_for(&found)
    }

    fn entry_for(&self, sha256: &str) -> Option<&SidecarEntry> {
        std::iter::once(&self.entry)
            .chain(&self.previous)
            .find(|entry| entry.npz_sha256 == sha256)
    }
}

/// Whether the file at `path` is a sidecar nabla wrote.
pub(super) fn is_sidecar(path: &Path) -> bool {
    read_sidecar(path).is_ok()
}

/// What the sidecar of the `.npz` at `path` records for it: the seed and the
/// preprocessing.
pub(super) fn recorded(path: &Path) -> Result<TrainedRecord, CheckpointError> {
    let sidecar = read_sidecar(&sidecar_path(path))?;
    Ok(sidecar
        .matching(path)
        .map(|entry| TrainedRecord {
            seed: entry.seed,
            preprocessing: entry.preprocessing.clone(),
        })
        .unwrap_or_default())
}

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Loads a model written by [`save_with_record`]: the sidecar entry whose hash is the `.npz`'s, then
/// the arrays.
pub(super) fn load<F: Float>(path: &Path) -> Result<MultiLayerPerceptron<F>, CheckpointError> {
    let sidecar_file = sidecar_path(path);
    let sidecar = read_sidecar(&sidecar_file)?;
    let mut archive = NpzFile::open(path)?;
    let found = archive.sha256.clone();
    let Some(entry) = sidecar.entry_for(&found) else {
        return Err(CheckpointError::SidecarMismatch {
            path: path.to_path_buf(),
            sidecar: sidecar_file,
            expected: sidecar.entry.npz_sha256,
            found,
        });
    };
    entry
        .architecture
        .check()
        .map_err(|problem| CheckpointError::Architecture {
            path: sidecar_file.clone(),
            problem,
        })?;
    let mut model = entry
        .architecture
        .build()
        .map_err(|source| CheckpointError::Model {
            path: sidecar_file.clone(),
            source,
        })?;
    fill_model(&mut model, &mut archive, path)?;
    Ok(model)
}

/// Fills `model` from the arrays of an `.npz` (no sidecar needed: PyTorch or NumPy may
/// have written it).
pub(super) fn load_weights_into<F: Float>(
    model: &mut MultiLayerPerceptron<F>,
    path: &Path,
) -> Result<(), CheckpointError> {
    let mut archive = NpzFile::open(path)?;
    fill_model(model, &mut archive, path)
}

/// What is wrong with one `.npy` array.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum NpyProblem {
    /// The member does not open or read (corrupt compressed data).
    #[error("cannot read the member: {0}")]
    Read(String),
    /// No `\x93NUMPY` magic.
    #[error("not a .npy array (no \\x93NUMPY magic)")]
    Magic,
    /// A format version other than 1, 2 or 3.
    #[error(".npy format version {0} is not supported")]
    Version(u8),
    /// A header that does not parse.
    #[error("unreadable .npy header: {0}")]
    Header(String),
    /// An element type other than little- or big-endian float32/float64.
    #[error("holds '{0}' values, expected float32 ('<f4'), float64 ('<f8') or int64 ('<i8')")]
    Dtype(String),
    /// Fewer data bytes than the header declares.
    #[error("truncated: {found} of the {expected} data bytes its header declares")]
    Truncated {
        /// Bytes declared.
        expected: u64,
        /// Bytes present.
        found: u64,
    },
    /// More data bytes than the header declares.
    #[error("more data than the {expected} bytes its header declares")]
    Trailing {
        /// Bytes declared.
        expected: u64,
    },
}

/// The header of a `.npy` array.
#[derive(Clone, Debug, PartialEq, Eq)]
struct NpyHeader {
    /// 4 or 8.
    item_bytes: usize,
    /// A signed integer (`<i8`: BatchNorm's `num_batches_tracked`), not a float.
    integer: bool,
    big_endian: bool,
    fortran_order: bool,
    shape: Vec<usize>,
}

/// Parses the header at the start of `reader`, leaving it at the data.
fn read_npy_header(reader: &mut impl Read) -> Result<NpyHeader, NpyProblem> {
    let read = |reader: &mut dyn Read, buffer: &mut [u8]| {
        reader
            .read_exact(buffer)
            .map_err(|error| match error.kind() {
                std::io::ErrorKind::UnexpectedEof => {
                    NpyProblem::Header("the file ends in the header".into())
                }
                _ => NpyProblem::Read(error.to_string()),
            })
    };
    let mut preamble = [0u8; 8];
    read(reader, &mut preamble)?;
    if &preamble[..6] != b"\x93NUMPY" {
        return Err(NpyProblem::Magic);
    }
    let header_len = match preamble[6] {
        1 => {
            let mut length = [0u8; 2];
            read(reader, &mut length)?;
            u16::from_le_bytes(length) as usize
        }
        2 | 3 => {
            let mut length = [0u8; 4];
            read(reader, &mut length)?;
            u32::from_le_bytes(length) as usize
        }
        version => return Err(NpyProblem::Version(version)),
    };
    // NumPy itself refuses headers over 10,000 bytes by default.
    const MAX_HEADER: usize = 1 << 16;
    if header_len > MAX_HEADER {
        return Err(NpyProblem::Header(format!(
            "a header of {header_len} bytes (at most {MAX_HEADER})"
        )));
    }
    let mut text = vec![0u8; header_len];
    read(reader, &mut text)?;
    let text = String::from_utf8(text).map_err(|_| NpyProblem::Header("not text".into()))?;
    parse_header_dict(&text)
}

/// Parses `{'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }`.
fn parse_header_dict(text: &str) -> Result<NpyHeader, NpyProblem> {
    let bad = |what: &str| {
        NpyProblem::Header(format!(
            "{what} in {}",
            text.trim().chars().take(80).collect::<String>()
        ))
    };
    let value_after = |key: &str| -> Result<&str, NpyProblem> {
        let at = ["'", "\""]
            .iter()
            .find_map(|quote| text.find(&format!("{quote}{key}{quote}")))
            .ok_or_else(|| bad(&format!("no '{key}'")))?;
        let rest = &text[at + key.len() + 2..];
        let colon = rest.find(':').ok_or_else(|| bad("no ':'"))?;
        Ok(rest[colon + 1..].trim_start())
    };
    let descr_text = value_after("descr")?;
    let quote = descr_text
        .chars()
        .next()
        .filter(|c| *c == '\'' || *c == '"')
        .ok_or_else(|| bad("descr is not a string"))?;
    let descr = descr_text[1..]
        .split(quote)
        .next()
        .ok_or_else(|| bad("descr is not closed"))?;
    let (big_endian, item_bytes, integer) = match descr {
        "<f4" | "=f4" => (false, 4, false),
        "<f8" | "=f8" => (false, 8, false),
        ">f4" => (true, 4, false),
        ">f8" => (true, 8, false),
        "<i8" | "=i8" => (false, 8, true),
        ">i8" => (true, 8, true),
        other => return Err(NpyProblem::Dtype(other.to_string())),
    };
    let fortran_text = value_after("fortran_order")?;
    let fortran_order = if fortran_text.starts_with("True") {
        true
    } else if fortran_text.starts_with("False") {
        false
    } else {
        return Err(bad("fortran_order is not True or False"));
    };
    let shape_text = value_after("shape")?;
    let inner = shape_text
        .strip_prefix('(')
        .and_then(|rest| rest.split(')').next())
        .ok_or_else(|| bad("shape is not a tuple"))?;
    let shape = inner
        .split(',')
        .map(str::trim)
        .filter(|part| !part.is_empty())
        .map(|part| {
            part.trim_end_matches('L')
                .parse::<usize>()
                .map_err(|_| bad("a shape entry is not a size"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(NpyHeader {
        integer,
        item_bytes,
        big_endian,
        fortran_order,
        shape,
    })
}

/// One member of an `.npz` read from memory.
type Member<'a> = zip::read::ZipFile<'a, Cursor<Vec<u8>>>;

/// An `.npz` read into memory.
struct NpzFile<'a> {
    path: &'a Path,
    /// The SHA-256 of the whole file, in hex.
    sha256: String,
    archive: ZipArchive<Cursor<Vec<u8>>>,
}

impl<'a> NpzFile<'a> {
    fn open(path: &'a Path) -> Result<Self, CheckpointError> {
        let bytes = read_file(path)?;
        let sha256 = sha256_hex(&bytes);
        let archive =
            ZipArchive::new(Cursor::new(bytes)).map_err(|source| CheckpointError::Zip {
                path: path.to_path_buf(),
                source,
            })?;
        Ok(Self {
            path,
            sha256,
            archive,
        })
    }

    /// The member holding `key` (`key.npy`, or `key` as it is).
    fn member(&self, key: &str) -> Option<String> {
        let with_extension = format!("{key}.npy");
        self.archive
            .file_names()
            .find(|name| *name == with_extension || *name == key)
            .map(str::to_string)
    }

    fn problem(&self, key: &str, problem: NpyProblem) -> CheckpointError {
        CheckpointError::Npy {
            path: self.path.to_path_buf(),
            key: key.to_string(),
            problem,
        }
    }

    /// Opens `key`'s member and reads its header.
    fn open_member(
        &mut self,
        key: &str,
    ) -> Result<Option<(NpyHeader, Member<'_>)>, CheckpointError> {
        let Some(name) = self.member(key) else {
            return Ok(None);
        };
        let path = self.path.to_path_buf();
        let mut member = self
            .archive
            .by_name(&name)
            .map_err(|source| CheckpointError::Zip {
                path: path.clone(),
                source,
            })?;
        let header = read_npy_header(&mut member).map_err(|problem| CheckpointError::Npy {
            path,
            key: key.to_string(),
            problem,
        })?;
        Ok(Some((header, member)))
    }
}

impl ArraySource for NpzFile<'_> {
    fn names(&self) -> Vec<String> {
        self.archive
            .file_names()
            .map(|name| name.trim_end_matches(".npy").to_string())
            .collect()
    }

    fn shape(&mut self, key: &str) -> Result<Option<Vec<usize>>, CheckpointError> {
        Ok(self.open_member(key)?.map(|(header, _)| header.shape))
    }

    fn read_into<F: Float>(&mut self, key: &str, target: &mut [F]) -> Result<(), CheckpointError> {
        let Some((header, member)) = self.open_member(key)? else {
            return Ok(());
        };
        // The shape was accepted against the model, so this size is the model's.
        let expected = product(&header.shape)
            .and_then(|count| count.checked_mul(header.item_bytes as u64))
            .unwrap_or(u64::MAX);
        let mut data = Vec::new();
        let read = member
            .take(expected.saturating_add(1))
            .read_to_end(&mut data);
        if let Err(error) = read {
            return Err(self.problem(key, NpyProblem::Read(error.to_string())));
        }
        let found = data.len() as u64;
        if found < expected {
            return Err(self.problem(key, NpyProblem::Truncated { expected, found }));
        }
        if found > expected {
            return Err(self.problem(key, NpyProblem::Trailing { expected }));
        }
        let value = |chunk: &[u8]| -> f64 {
            if header.integer {
                let mut word = [0u8; 8];
                word.copy_from_slice(chunk);
                let integer = if header.big_endian {
                    i64::from_be_bytes(word)
                } else {
                    i64::from_le_bytes(word)
                };
                return integer as f64;
            }
            match (header.item_bytes, header.big_endian) {
                (4, false) => f32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]).into(),
                (4, true) => f32::from_be_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]).into(),
                (_, big_endian) => {
                    let mut word = [0u8; 8];
                    word.copy_from_slice(chunk);
                    if big_endian {
                        f64::from_be_bytes(word)
                    } else {
                        f64::from_le_bytes(word)
                    }
                }
            }
        };
        let values = data.chunks_exact(header.item_bytes).map(value);
        if header.fortran_order && header.shape.len() == 2 {
            // Column-major: element (i, j) is at j * rows + i.
            let (rows, columns) = (header.shape[0], header.shape[1]);
            for (index, value) in values.enumerate() {
                let (i, j) = (index % rows, index / rows);
                target[i * columns + j] = F::from_f64(value);
            }
        } else {
            for (slot, value) in target.iter_mut().zip(values) {
                *slot = F::from_f64(value);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layers::Layer;
    use crate::{ActivationKind, Init};

    fn weights(model: &MultiLayerPerceptron<f64>) -> Vec<f64> {
        model
            .layers()
            .iter()
            .filter_map(|layer| match layer {
                Layer::Linear(linear) => Some(linear.weights().iter().copied().collect::<Vec<_>>()),
                _ => None,
            })
            .flatten()
            .collect()
    }

    #[test]
    fn a_save_stopped_after_any_write_leaves_the_old_model_or_the_new_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.npz");
        let build = |sizes: &[usize], seed| {
            MultiLayerPerceptron::<f64>::from_sizes(
                sizes,
                ActivationKind::Relu,
                Init::Uniform,
                seed,
            )
            .unwrap()
        };
        // The new model differs in its weights and in its architecture.
        let (old, new) = (build(&[4, 3, 2], 1), build(&[4, 5, 2], 2));
        let plan = save_plan(&new, &path, &TrainedRecord::default()).unwrap();
        assert_eq!(
            plan.len(),
            2,
            "no model on disk yet: the npz, then its sidecar"
        );
        save_with_record(&old, &path, &TrainedRecord::default()).unwrap();
        let plan = save_plan(&new, &path, &TrainedRecord::default()).unwrap();
        assert_eq!(plan.len(), 3);
        for done in 0..=plan.len() {
            save_with_record(&old, &path, &TrainedRecord::default()).unwrap();
            for (file, bytes) in &plan[..done] {
                write_bytes_atomically(file, bytes).unwrap();
            }
            let loaded = load::<f64>(&path).unwrap();
            let expected = if done >= 2 { &new } else { &old };
            assert_eq!(
                weights(&loaded),
                weights(expected),
                "stopped after {done} writes"
            );
        }
    }
}
