//! Model files: the weights in PyTorch's `nn.Sequential` `state_dict` names, with the
//! architecture, written atomically and read back with every size and value checked.
//!
//! Keys are `"{position}.weight"` `(out, in)` and `"{position}.bias"` `(out)`, where the
//! position counts every layer, activations included (`0.weight`, `0.bias`, `2.weight`,
//! ... for linear, activation, linear), so PyTorch's `load_state_dict` takes them as
//! they are, with strict key matching. Two formats, chosen by the file's extension:
//!
//! - **`.safetensors`** (the default): one file, the architecture in its `__metadata__`
//!   (`format`, `dtype`, `layers`). A reader finds the old file or the new one under the
//!   name, never a mix. PyTorch: `net.load_state_dict(safetensors.torch.load_file(path))`.
//! - **`.npz`**, for NumPy users: the arrays, plus the architecture in a JSON sidecar
//!   (`m.json` beside `m.npz`) that records the SHA-256 of the `.npz`; a sidecar that does
//!   not match its `.npz` (a save interrupted between the two files) is refused.
//!   Compressed archives (`np.savez_compressed`) are read too.
//!
//! Every size in a file is checked against the model before any array is read, and a
//! weight that is NaN or infinite is refused with its key and position.

mod architecture;
mod npz;
mod resume;
mod safetensors;

use std::path::{Path, PathBuf};

use thiserror::Error;

pub use architecture::{Architecture, ArchitectureProblem, LayerSpec, LayerSpecError};
pub use resume::{load_training, save_training, training_run};

use crate::data::preprocess::Preprocessing;
use crate::float::Float;
use crate::layers::StateValues;
use crate::limits::TooLarge;
use crate::network::{ModelError, MultiLayerPerceptron};

/// The two model file formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ModelFormat {
    /// `.safetensors`: one file, architecture in its metadata.
    Safetensors,
    /// `.npz` plus a `.json` sidecar.
    Npz,
}

impl ModelFormat {
    /// The format a path's extension names (`.safetensors` or `.npz`, any case).
    pub fn of(path: &Path) -> Result<Self, CheckpointError> {
        let extension = path
            .extension()
            .map(|extension| extension.to_string_lossy().to_lowercase());
        match extension.as_deref() {
            Some("safetensors") => Ok(ModelFormat::Safetensors),
            Some("npz") => Ok(ModelFormat::Npz),
            _ => Err(CheckpointError::Extension {
                path: path.to_path_buf(),
            }),
        }
    }

    /// The files a model saved at `path` consists of (`m.npz` and `m.json` for npz).
    pub fn files(self, path: &Path) -> Vec<PathBuf> {
        match self {
            ModelFormat::Safetensors => vec![path.to_path_buf()],
            ModelFormat::Npz => vec![path.to_path_buf(), sidecar_path(path)],
        }
    }
}

/// The sidecar path of an `.npz` model: `m.npz` -> `m.json`.
pub fn sidecar_path(path: &Path) -> PathBuf {
    path.with_extension("json")
}

/// Whether a save to `path` would replace a file nabla did not write: for an `.npz`, a
/// `.json` beside it that is not a nabla sidecar (the user's own file of that name).
pub fn foreign_companion(path: &Path) -> Option<PathBuf> {
    match ModelFormat::of(path).ok()? {
        ModelFormat::Npz => {
            let sidecar = sidecar_path(path);
            (sidecar.is_file() && !npz::is_sidecar(&sidecar)).then_some(sidecar)
        }
        ModelFormat::Safetensors => None,
    }
}

/// What a trained model's file records beside its weights and architecture.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TrainedRecord {
    /// The seed of the run that trained it (it chose that run's validation rows, which
    /// `nabla eval --val-split` must hold out again).
    pub seed: Option<u64>,
    /// For a model trained on a table, the preprocessing its inputs need.
    pub preprocessing: Option<Preprocessing>,
}

/// Writes `model` to `path` in the format its extension names, atomically.
pub fn save<F: Float>(model: &MultiLayerPerceptron<F>, path: &Path) -> Result<(), CheckpointError> {
    save_trained(model, path, &TrainedRecord::default())
}

/// Writes `model` as [`save`] does, with `record`: `seed` and `preprocessing` (JSON)
/// metadata entries in `.safetensors` (PyTorch's loaders ignore them), fields of the
/// same names in an `.npz`'s sidecar.
pub fn save_trained<F: Float>(
    model: &MultiLayerPerceptron<F>,
    path: &Path,
    record: &TrainedRecord,
) -> Result<(), CheckpointError> {
    match ModelFormat::of(path)? {
        ModelFormat::Safetensors => safetensors::save_with_record(model, path, record),
        ModelFormat::Npz => npz::save_with_record(model, path, record),
    }
}

/// What [`save_trained`] recorded in the model file at `path` (empty for a model saved
/// without, such as PyTorch's).
pub fn trained_record(path: &Path) -> Result<TrainedRecord, CheckpointError> {
    match ModelFormat::of(path)? {
        ModelFormat::Safetensors => safetensors::recorded(path),
        ModelFormat::Npz => npz::recorded(path),
    }
}

/// Loads a network saved by [`save`]: its architecture and weights (stored as f32 or
/// f64), converted to `F`.
pub fn load<F: Float>(path: &Path) -> Result<MultiLayerPerceptron<F>, CheckpointError> {
    match ModelFormat::of(path)? {
        ModelFormat::Safetensors => safetensors::load(path),
        ModelFormat::Npz => npz::load(path),
    }
}

/// Replaces the weights of every linear layer of `model` with the arrays of the same
/// names in `path` (a `.safetensors` or `.npz` file written by [`save`], by PyTorch or
/// by NumPy in the same layout; no architecture needed), checking every shape and value.
pub fn load_weights_into<F: Float>(
    model: &mut MultiLayerPerceptron<F>,
    path: &Path,
) -> Result<(), CheckpointError> {
    match ModelFormat::of(path)? {
        ModelFormat::Safetensors => safetensors::load_weights_into(model, path),
        ModelFormat::Npz => npz::load_weights_into(model, path),
    }
}

/// A model file's named arrays: shapes first, values only once a shape is accepted.
trait ArraySource {
    /// The names present, for messages.
    fn names(&self) -> Vec<String>;
    /// The shape of `key`, or `None` if there is no such array.
    fn shape(&mut self, key: &str) -> Result<Option<Vec<usize>>, CheckpointError>;
    /// The values of `key` in row-major order into `target` (its shape was accepted).
    fn read_into<F: Float>(&mut self, key: &str, target: &mut [F]) -> Result<(), CheckpointError>;
}

/// Fills every layer's `state_dict` entries (parameters, running statistics) of `model`
/// from `source`, checking each array's presence and shape before reading it, and each
/// value after.
fn fill_model<F: Float, S: ArraySource>(
    model: &mut MultiLayerPerceptron<F>,
    source: &mut S,
    path: &Path,
) -> Result<(), CheckpointError> {
    for (position, layer) in model.layers_mut().iter_mut().enumerate() {
        for (name, expected) in layer.state_entries() {
            let key = format!("{position}.{name}");
            match source.shape(&key)? {
                None => {
                    return Err(CheckpointError::MissingKey {
                        path: path.to_path_buf(),
                        key,
                        available: source.names().join(", "),
                    })
                }
                Some(found) if found != expected => {
                    return Err(CheckpointError::Shape {
                        path: path.to_path_buf(),
                        key,
                        expected,
                        found,
                    })
                }
                Some(_) => {}
            }
            let counted = matches!(layer.state_values(name), Some(StateValues::Count(_)));
            let values = if counted {
                let mut count = [0f64];
                source.read_into(&key, &mut count)?;
                if !(count[0] >= 0.0 && count[0].fract() == 0.0) {
                    return Err(CheckpointError::NonFinite {
                        path: path.to_path_buf(),
                        key,
                        position: Vec::new(),
                        value: count[0],
                    });
                }
                StateValues::Count(count[0] as u64)
            } else {
                let mut values = vec![F::zero(); expected.iter().product()];
                source.read_into(&key, &mut values)?;
                // A variance below zero would be NaN at the first evaluation.
                let variance = name == "running_var";
                if let Some(index) = values
                    .iter()
                    .position(|value| !value.is_finite() || (variance && *value < F::zero()))
                {
                    return Err(CheckpointError::NonFinite {
                        path: path.to_path_buf(),
                        key,
                        position: unravel(index, &expected),
                        value: values[index].to_f64(),
                    });
                }
                StateValues::Floats(values)
            };
            // Cannot fail: the entry is the layer's own and its shape was checked.
            let accepted = layer.set_state_values(name, values);
            debug_assert!(accepted, "{key} is one of the layer's entries");
        }
    }
    Ok(())
}

/// The multi-index of the `index`-th value of a row-major array of `shape`.
fn unravel(mut index: usize, shape: &[usize]) -> Vec<usize> {
    let mut position = vec![0; shape.len()];
    for (slot, &extent) in position.iter_mut().zip(shape).rev() {
        *slot = index % extent.max(1);
        index /= extent.max(1);
    }
    position
}

/// Why a model file could not be written or read.
#[derive(Debug, Error)]
pub enum CheckpointError {
    /// A path whose extension names no model format.
    #[error("{path}: expected a .safetensors or .npz model file")]
    Extension {
        /// The path.
        path: PathBuf,
    },
    /// The file could not be created, written, renamed or opened.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The operating system's reason.
        source: std::io::Error,
    },
    /// A file too large to read into memory.
    #[error("{path}: {source}")]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// The size and the limit.
        source: TooLarge,
    },
    /// A `.safetensors` file that does not parse (header, offsets, sizes).
    #[error("{path}: not a readable .safetensors file: {source}")]
    Safetensors {
        /// The file.
        path: PathBuf,
        /// What the reader said.
        source: ::safetensors::SafeTensorError,
    },
    /// A `.npz` archive that does not open.
    #[error("{path}: not a readable .npz file: {source}")]
    Zip {
        /// The file.
        path: PathBuf,
        /// What the zip reader said.
        source: zip::result::ZipError,
    },
    /// An array inside a `.npz` that is not a readable `.npy`.
    #[error("{path}: '{key}': {problem}")]
    Npy {
        /// The file.
        path: PathBuf,
        /// The array.
        key: String,
        /// What is wrong.
        problem: npz::NpyProblem,
    },
    /// An array of another element type than float32 or float64.
    #[error("{path}: '{key}' holds {dtype} values, expected float32 or float64")]
    Dtype {
        /// The file.
        path: PathBuf,
        /// The array.
        key: String,
        /// Its element type.
        dtype: String,
    },
    /// The architecture (sidecar or metadata) cannot be read.
    #[error("{path}: cannot read the architecture: {source}")]
    ArchitectureIo {
        /// The sidecar.
        path: PathBuf,
        /// The operating system's reason.
        source: std::io::Error,
    },
    /// The architecture (sidecar or metadata) is malformed.
    #[error("{path}: bad architecture: {problem}")]
    Architecture {
        /// The sidecar or model file.
        path: PathBuf,
        /// What is wrong.
        problem: architecture::ArchitectureProblem,
    },
    /// An `.npz` whose sidecar records another file's SHA-256.
    #[error("{path}: the architecture in {sidecar} belongs to another version of this file (SHA-256 {expected} recorded, {found} found): was a save interrupted? Save the model again")]
    SidecarMismatch {
        /// The `.npz`.
        path: PathBuf,
        /// The sidecar.
        sidecar: PathBuf,
        /// The hash the sidecar records.
        expected: String,
        /// The hash of the `.npz`.
        found: String,
    },
    /// An array the model needs is not in the file.
    #[error("{path}: no array '{key}' (the file has: {available})")]
    MissingKey {
        /// The file.
        path: PathBuf,
        /// The missing key.
        key: String,
        /// The keys present, comma-separated.
        available: String,
    },
    /// An array of the wrong shape.
    #[error("{path}: '{key}' has shape {found:?}, the model needs {expected:?}")]
    Shape {
        /// The file.
        path: PathBuf,
        /// The key.
        key: String,
        /// The model's shape.
        expected: Vec<usize>,
        /// The file's shape.
        found: Vec<usize>,
    },
    /// A weight that is NaN or infinite.
    #[error("{path}: '{key}' at {position:?} is {value}: a model's weights must be finite (and a variance, a count at least 0)")]
    NonFinite {
        /// The file.
        path: PathBuf,
        /// The array.
        key: String,
        /// The entry (row and column of a weight matrix, index of a bias).
        position: Vec<usize>,
        /// The value.
        value: f64,
    },
    /// A resumable checkpoint that cannot be resumed: no training state, contents that
    /// do not match its digest, counters that disagree, a state that does not parse.
    #[error("{path}: not a checkpoint nabla can resume: {detail}")]
    Training {
        /// The checkpoint.
        path: PathBuf,
        /// What is wrong.
        detail: String,
    },
    /// The architecture describes layers that do not make a network.
    #[error("{path}: {source}")]
    Model {
        /// The sidecar or model file.
        path: PathBuf,
        /// Why the layers do not make a network.
        source: ModelError,
    },
}

impl CheckpointError {
    fn io(path: &Path) -> impl FnOnce(std::io::Error) -> Self + '_ {
        move |source| CheckpointError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}

/// The whole file at `path`, after checking that it is a regular file (not a device or a
/// pipe, which could be read without end or wait for a writer) whose size fits in memory; no more than that
/// size is read.
fn read_file(path: &Path) -> Result<Vec<u8>, CheckpointError> {
    use std::io::Read;
    // Judged before opening: opening a named pipe waits for a writer.
    let metadata = std::fs::metadata(path).map_err(CheckpointError::io(path))?;
    if !metadata.is_file() {
        let (kind, what) = if metadata.is_dir() {
            (std::io::ErrorKind::IsADirectory, "is a directory")
        } else {
            (std::io::ErrorKind::InvalidInput, "is not a regular file")
        };
        return Err(CheckpointError::Io {
            path: path.to_path_buf(),
            source: std::io::Error::new(kind, what),
        });
    }
    let file = std::fs::File::open(path).map_err(CheckpointError::io(path))?;
    let size = file.metadata().map_err(CheckpointError::io(path))?.len();
    crate::limits::check_memory(format!("reading {}", path.display()), Some(size)).map_err(
        |source| CheckpointError::TooLarge {
            path: path.to_path_buf(),
            source,
        },
    )?;
    let mut bytes = Vec::with_capacity(size as usize);
    file.take(size)
        .read_to_end(&mut bytes)
        .map_err(CheckpointError::io(path))?;
    Ok(bytes)
}
