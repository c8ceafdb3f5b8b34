//! Saving and loading trained weights as NumPy `.npz`, in PyTorch's `nn.Sequential`
//! `state_dict` layout, with the architecture in a JSON sidecar.
//!
//! Keys are `"{position}.weight"` `(out, in)` and `"{position}.bias"` `(out)`, where the
//! position counts every layer, activations included (`0.weight`, `0.bias`, `2.weight`,
//! ... for linear, activation, linear), so
//! `torch.nn.Sequential(...).load_state_dict({k: torch.from_numpy(v) for k, v in np.load(f).items()})`
//! loads the file as it is. The sidecar `m.json` beside `m.npz` lists the layers. Every
//! file is written atomically ([`crate::atomic_file`]).

mod architecture;
mod npz;

use std::path::{Path, PathBuf};

use thiserror::Error;

pub use architecture::{Architecture, LayerSpec, LayerSpecError};
pub use npz::{load, load_weights_into, save, sidecar_path};

use crate::network::ModelError;

/// Why a checkpoint could not be written or read.
#[derive(Debug, Error)]
pub enum CheckpointError {
    /// The file could not be created, written, renamed or opened.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The operating system's reason.
        source: std::io::Error,
    },
    /// The `.npz` archive is malformed.
    #[error("{path}: not a readable .npz file: {source}")]
    ReadNpz {
        /// The file.
        path: PathBuf,
        /// What the reader said.
        source: ndarray_npy::ReadNpzError,
    },
    /// An array of another element type or dimension than a float matrix or vector.
    #[error(
        "{path}: '{key}' is not a float32 or float64 array of {dimensions} dimensions: {source}"
    )]
    ArrayType {
        /// The file.
        path: PathBuf,
        /// The key.
        key: String,
        /// Dimensions expected.
        dimensions: usize,
        /// What the reader said.
        source: ndarray_npy::ReadNpzError,
    },
    /// The architecture sidecar is missing.
    #[error("{path}: cannot read the architecture file (it is written beside the .npz by --save): {source}")]
    SidecarIo {
        /// The sidecar.
        path: PathBuf,
        /// The operating system's reason.
        source: std::io::Error,
    },
    /// The architecture sidecar is malformed.
    #[error("{path}: bad architecture file: {source}")]
    Sidecar {
        /// The sidecar.
        path: PathBuf,
        /// What the JSON reader said.
        source: serde_json::Error,
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
    /// The sidecar describes layers that do not make a network.
    #[error("{path}: {source}")]
    Model {
        /// The sidecar.
        path: PathBuf,
        /// Why the layers do not chain.
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
