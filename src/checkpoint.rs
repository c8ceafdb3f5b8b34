//! Saving and loading trained weights as NumPy `.npz`, in PyTorch's `nn.Sequential`
//! `state_dict` layout, with the architecture in a JSON sidecar.
//!
//! Keys are `"{position}.weight"` `(out, in)` and `"{position}.bias"` `(out)`, where the
//! position counts every layer, activations included (`0.weight`, `0.bias`, `2.weight`,
//! ... for linear, activation, linear), so
//! `torch.nn.Sequential(...).load_state_dict({k: torch.from_numpy(v) for k, v in np.load(f).items()})`
//! loads the file as it is. The sidecar `m.json` beside `m.npz` lists the layers.

use std::fs::File;
use std::io::{BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};

use ndarray::{Array1, Array2, Dimension};
use ndarray_npy::{NpzReader, NpzWriter, ReadableElement};
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::layers::{ActivationKind, Layer, Linear};
use crate::network::{ModelError, MultiLayerPerceptron};
use crate::Float;

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
    #[error("{path}: not a readable .npz file: {detail}")]
    Npz {
        /// The file.
        path: PathBuf,
        /// What the reader said.
        detail: String,
    },
    /// The architecture sidecar is missing or malformed.
    #[error("{path}: bad architecture file: {detail}")]
    Sidecar {
        /// The sidecar.
        path: PathBuf,
        /// What is wrong.
        detail: String,
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

/// One layer as the sidecar records it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum LayerSpec {
    /// A linear layer `(in -> out)`.
    Linear {
        /// Input width.
        in_features: usize,
        /// Output width.
        out_features: usize,
    },
    /// A sigmoid activation.
    Sigmoid,
    /// A ReLU activation.
    Relu,
    /// A tanh activation.
    Tanh,
}

/// The sidecar's contents: what `nabla eval` and `nabla predict` need besides the weights.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Architecture {
    /// Always `"nabla-mlp"`.
    pub format: String,
    /// The float type the weights were saved in (`"f32"` or `"f64"`).
    pub dtype: String,
    /// The layers in order; their positions are the `.npz` key prefixes.
    pub layers: Vec<LayerSpec>,
}

impl Architecture {
    /// The architecture of `model`.
    pub fn of<F: Float>(model: &MultiLayerPerceptron<F>) -> Self {
        let layers = model
            .layers()
            .iter()
            .map(|layer| match layer {
                Layer::Linear(linear) => LayerSpec::Linear {
                    in_features: linear.in_features(),
                    out_features: linear.out_features(),
                },
                Layer::Sigmoid(_) => LayerSpec::Sigmoid,
                Layer::Relu(_) => LayerSpec::Relu,
                Layer::Tanh(_) => LayerSpec::Tanh,
            })
            .collect();
        Self {
            format: "nabla-mlp".into(),
            dtype: F::NAME.into(),
            layers,
        }
    }

    /// A zero-weight network of this architecture (weights are loaded next).
    fn build<F: Float>(&self) -> Result<MultiLayerPerceptron<F>, ModelError> {
        let layers = self
            .layers
            .iter()
            .map(|spec| match *spec {
                LayerSpec::Linear {
                    in_features,
                    out_features,
                } => Layer::Linear(Linear::from_params(
                    Array2::zeros((out_features, in_features)),
                    Array1::zeros(out_features),
                )),
                LayerSpec::Sigmoid => ActivationKind::Sigmoid.layer(),
                LayerSpec::Relu => ActivationKind::Relu.layer(),
                LayerSpec::Tanh => ActivationKind::Tanh.layer(),
            })
            .collect();
        MultiLayerPerceptron::new(layers)
    }
}

/// The sidecar path of a checkpoint: `m.npz` -> `m.json`.
pub fn sidecar_path(path: &Path) -> PathBuf {
    path.with_extension("json")
}

/// Writes `model`'s weights to `path` (`.npz`) and its architecture to the sidecar, each
/// through a temporary file renamed into place, so a reader never sees half a file.
pub fn save<F: Float>(model: &MultiLayerPerceptron<F>, path: &Path) -> Result<(), CheckpointError> {
    let sidecar = sidecar_path(path);
    let json =
        serde_json::to_string_pretty(&Architecture::of(model)).expect("plain data serialises");
    write_atomically(&sidecar, |file| {
        file.write_all(json.as_bytes()).map_err(|e| e.to_string())
    })?;
    write_atomically(path, |file| {
        let mut npz = NpzWriter::new(file);
        for (position, layer) in model.layers().iter().enumerate() {
            if let Layer::Linear(linear) = layer {
                npz.add_array(format!("{position}.weight"), &linear.weights)
                    .and_then(|()| npz.add_array(format!("{position}.bias"), &linear.bias))
                    .map_err(|e| e.to_string())?;
            }
        }
        npz.finish().map(drop).map_err(|e| e.to_string())
    })
}

fn write_atomically(
    path: &Path,
    write: impl FnOnce(&mut BufWriter<File>) -> Result<(), String>,
) -> Result<(), CheckpointError> {
    let io_error = |source| CheckpointError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut temporary_name = path.as_os_str().to_owned();
    temporary_name.push(".tmp");
    let temporary = PathBuf::from(temporary_name);
    let mut file = BufWriter::new(File::create(&temporary).map_err(io_error)?);
    let written = write(&mut file).and_then(|()| file.flush().map_err(|e| e.to_string()));
    if let Err(detail) = written {
        let _ = std::fs::remove_file(&temporary);
        return Err(io_error(std::io::Error::other(detail)));
    }
    drop(file);
    std::fs::rename(&temporary, path).map_err(io_error)
}

/// Loads a network saved by [`save`]: the architecture from the sidecar, the weights
/// (stored as f32 or f64) from the `.npz`, converted to `F`.
pub fn load<F: Float>(path: &Path) -> Result<MultiLayerPerceptron<F>, CheckpointError> {
    let sidecar = sidecar_path(path);
    let text = std::fs::read_to_string(&sidecar).map_err(|source| CheckpointError::Sidecar {
        path: sidecar.clone(),
        detail: format!("{source} (it is written beside the .npz by --save)"),
    })?;
    let architecture: Architecture =
        serde_json::from_str(&text).map_err(|error| CheckpointError::Sidecar {
            path: sidecar.clone(),
            detail: error.to_string(),
        })?;
    let mut model = architecture
        .build()
        .map_err(|source| CheckpointError::Model {
            path: sidecar.clone(),
            source,
        })?;
    load_weights_into(&mut model, path)?;
    Ok(model)
}

/// Replaces the weights of every linear layer of `model` with the arrays of the same
/// positions in `path` (written by [`save`] or by PyTorch in the same layout), checking
/// every shape.
pub fn load_weights_into<F: Float>(
    model: &mut MultiLayerPerceptron<F>,
    path: &Path,
) -> Result<(), CheckpointError> {
    let file = File::open(path).map_err(|source| CheckpointError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let npz_error = |error: ndarray_npy::ReadNpzError| CheckpointError::Npz {
        path: path.to_path_buf(),
        detail: error.to_string(),
    };
    let mut npz = NpzReader::new(BufReader::new(file)).map_err(npz_error)?;
    let names: Vec<String> = npz
        .names()
        .map_err(npz_error)?
        .into_iter()
        .map(|name| name.trim_end_matches(".npy").to_string())
        .collect();
    for (position, layer) in model.layers_mut().iter_mut().enumerate() {
        let Layer::Linear(linear) = layer else {
            continue;
        };
        let weight_key = format!("{position}.weight");
        let bias_key = format!("{position}.bias");
        let weights: Array2<F> = read_array(&mut npz, path, &names, &weight_key)?;
        let bias: Array1<F> = read_array(&mut npz, path, &names, &bias_key)?;
        check_shape(path, &weight_key, linear.weights.shape(), weights.shape())?;
        check_shape(path, &bias_key, linear.bias.shape(), bias.shape())?;
        linear.weights.assign(&weights);
        linear.bias.assign(&bias);
    }
    Ok(())
}

fn check_shape(
    path: &Path,
    key: &str,
    expected: &[usize],
    found: &[usize],
) -> Result<(), CheckpointError> {
    if expected == found {
        return Ok(());
    }
    Err(CheckpointError::Shape {
        path: path.to_path_buf(),
        key: key.to_string(),
        expected: expected.to_vec(),
        found: found.to_vec(),
    })
}

/// Reads `key` as `F`, accepting arrays stored as f32 or f64.
fn read_array<F: Float, D: Dimension>(
    npz: &mut NpzReader<BufReader<File>>,
    path: &Path,
    names: &[String],
    key: &str,
) -> Result<ndarray::Array<F, D>, CheckpointError> {
    if !names.iter().any(|name| name == key) {
        return Err(CheckpointError::MissingKey {
            path: path.to_path_buf(),
            key: key.to_string(),
            available: names.join(", "),
        });
    }
    if let Ok(array) = npz.by_name::<ndarray::OwnedRepr<F>, D>(key) {
        return Ok(array);
    }
    read_converted::<f32, F, D>(npz, key)
        .or_else(|_| read_converted::<f64, F, D>(npz, key))
        .map_err(|error| CheckpointError::Npz {
            path: path.to_path_buf(),
            detail: format!(
                "'{key}': {error} (expected a float32 or float64 array of {} dimensions)",
                D::NDIM.unwrap_or(0)
            ),
        })
}

fn read_converted<S: ReadableElement + Copy + Into<f64>, F: Float, D: Dimension>(
    npz: &mut NpzReader<BufReader<File>>,
    key: &str,
) -> Result<ndarray::Array<F, D>, ndarray_npy::ReadNpzError> {
    let array = npz.by_name::<ndarray::OwnedRepr<S>, D>(key)?;
    Ok(array.mapv(|value| F::from_f64(value.into())))
}
