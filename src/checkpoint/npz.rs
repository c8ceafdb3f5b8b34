//! The `.npz` model file and its JSON architecture sidecar.

use std::fs::File;
use std::io::{BufReader, Write};
use std::path::{Path, PathBuf};

use ndarray::{Array1, Array2, Dimension};
use ndarray_npy::{NpzReader, NpzWriter, ReadableElement};

use super::{Architecture, CheckpointError};
use crate::atomic_file::write_atomically;
use crate::float::Float;
use crate::layers::Layer;
use crate::network::MultiLayerPerceptron;

/// The sidecar path of a checkpoint: `m.npz` -> `m.json`.
pub fn sidecar_path(path: &Path) -> PathBuf {
    path.with_extension("json")
}

/// Writes `model`'s weights to `path` (`.npz`) and its architecture to the sidecar, each
/// atomically.
pub fn save<F: Float>(model: &MultiLayerPerceptron<F>, path: &Path) -> Result<(), CheckpointError> {
    let sidecar = sidecar_path(path);
    let json =
        serde_json::to_string_pretty(&Architecture::of(model)).expect("plain data serialises");
    write_atomically(&sidecar, |file| file.write_all(json.as_bytes()))
        .map_err(CheckpointError::io(&sidecar))?;
    write_atomically(path, |file| {
        let mut npz = NpzWriter::new(file);
        for (position, layer) in model.layers().iter().enumerate() {
            if let Layer::Linear(linear) = layer {
                npz.add_array(format!("{position}.weight"), &linear.weights())
                    .and_then(|()| npz.add_array(format!("{position}.bias"), &linear.bias()))
                    .map_err(std::io::Error::other)?;
            }
        }
        npz.finish().map(drop).map_err(std::io::Error::other)
    })
    .map_err(CheckpointError::io(path))
}

/// Loads a network saved by [`save`]: the architecture from the sidecar, the weights
/// (stored as f32 or f64) from the `.npz`, converted to `F`.
pub fn load<F: Float>(path: &Path) -> Result<MultiLayerPerceptron<F>, CheckpointError> {
    let sidecar = sidecar_path(path);
    let text = std::fs::read_to_string(&sidecar).map_err(|source| CheckpointError::SidecarIo {
        path: sidecar.clone(),
        source,
    })?;
    let architecture: Architecture =
        serde_json::from_str(&text).map_err(|source| CheckpointError::Sidecar {
            path: sidecar.clone(),
            source,
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
    let file = File::open(path).map_err(CheckpointError::io(path))?;
    let npz_error = |source| CheckpointError::ReadNpz {
        path: path.to_path_buf(),
        source,
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
        check_shape(path, &weight_key, linear.weights().shape(), weights.shape())?;
        check_shape(path, &bias_key, linear.bias().shape(), bias.shape())?;
        linear.weights_mut().assign(&weights);
        linear.bias_mut().assign(&bias);
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
        .map_err(|source| CheckpointError::ArrayType {
            path: path.to_path_buf(),
            key: key.to_string(),
            dimensions: D::NDIM.unwrap_or(0),
            source,
        })
}

fn read_converted<S: ReadableElement + Copy + Into<f64>, F: Float, D: Dimension>(
    npz: &mut NpzReader<BufReader<File>>,
    key: &str,
) -> Result<ndarray::Array<F, D>, ndarray_npy::ReadNpzError> {
    let array = npz.by_name::<ndarray::OwnedRepr<S>, D>(key)?;
    Ok(array.mapv(|value| F::from_f64(value.into())))
}
