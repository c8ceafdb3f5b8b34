//! The `.safetensors` model file: one file, the weights as `F32`/`F64` tensors named as
//! PyTorch's `state_dict` names them, the architecture in `__metadata__` (`format`,
//! `dtype`, and `layers` as JSON).

use std::borrow::Cow;
use std::collections::HashMap;
use std::path::Path;

use ::safetensors::tensor::{Metadata, TensorInfo, View};
use ::safetensors::{Dtype, SafeTensors};

use super::architecture::ArchitectureProblem;
use super::{fill_model, read_file, Architecture, ArraySource, CheckpointError};
use crate::atomic_file::write_bytes_atomically;
use crate::float::Float;
use crate::layers::Layer;
use crate::network::MultiLayerPerceptron;

/// One tensor to write: little-endian bytes.
struct TensorBytes {
    dtype: Dtype,
    shape: Vec<usize>,
    bytes: Vec<u8>,
}

impl View for &TensorBytes {
    fn dtype(&self) -> Dtype {
        self.dtype
    }

    fn shape(&self) -> &[usize] {
        &self.shape
    }

    fn data(&self) -> Cow<'_, [u8]> {
        Cow::Borrowed(&self.bytes)
    }

    fn data_len(&self) -> usize {
        self.bytes.len()
    }
}

/// The element type nabla writes for `F`.
fn dtype_of<F: Float>() -> Dtype {
    if std::mem::size_of::<F>() == 4 {
        Dtype::F32
    } else {
        Dtype::F64
    }
}

/// Little-endian bytes of `values` in `F`'s width.
fn to_bytes<F: Float>(values: impl Iterator<Item = F>) -> Vec<u8> {
    let mut bytes = Vec::new();
    for value in values {
        if std::mem::size_of::<F>() == 4 {
            bytes.extend_from_slice(&(value.to_f64() as f32).to_le_bytes());
        } else {
            bytes.extend_from_slice(&value.to_f64().to_le_bytes());
        }
    }
    bytes
}

/// Writes `model` and its architecture to `path` as one `.safetensors` file, atomically.
pub(super) fn save<F: Float>(
    model: &MultiLayerPerceptron<F>,
    path: &Path,
) -> Result<(), CheckpointError> {
    let mut tensors = Vec::new();
    for (position, layer) in model.layers().iter().enumerate() {
        if let Layer::Linear(linear) = layer {
            let weights = TensorBytes {
                dtype: dtype_of::<F>(),
                shape: linear.weights().shape().to_vec(),
                bytes: to_bytes(linear.weights().iter().copied()),
            };
            let bias = TensorBytes {
                dtype: dtype_of::<F>(),
                shape: vec![linear.bias().len()],
                bytes: to_bytes(linear.bias().iter().copied()),
            };
            tensors.push((format!("{position}.weight"), weights));
            tensors.push((format!("{position}.bias"), bias));
        }
    }
    let architecture = Architecture::of(model);
    let metadata = HashMap::from([
        ("format".to_string(), architecture.format.clone()),
        ("dtype".to_string(), architecture.dtype.clone()),
        (
            "layers".to_string(),
            // Cannot fail: plain strings and integers.
            serde_json::to_string(&architecture.layers).expect("layer lists serialise"),
        ),
    ]);
    let bytes = ::safetensors::serialize(
        tensors.iter().map(|(name, tensor)| (name, tensor)),
        Some(metadata),
    )
    .map_err(|source| CheckpointError::Safetensors {
        path: path.to_path_buf(),
        source,
    })?;
    write_bytes_atomically(path, &bytes).map_err(CheckpointError::io(path))
}

/// A parsed `.safetensors` file.
struct SafetensorsFile<'a> {
    path: &'a Path,
    bytes: Vec<u8>,
    metadata: Metadata,
    header_len: usize,
}

impl<'a> SafetensorsFile<'a> {
    fn open(path: &'a Path) -> Result<Self, CheckpointError> {
        let bytes = read_file(path)?;
        // Checks the header length, the JSON, every offset and every shape against the
        // data (with checked arithmetic), and that the data ends where the file does.
        let (header_len, metadata) =
            SafeTensors::read_metadata(&bytes).map_err(|source| CheckpointError::Safetensors {
                path: path.to_path_buf(),
                source,
            })?;
        Ok(Self {
            path,
            bytes,
            metadata,
            header_len,
        })
    }

    fn info(&self, key: &str) -> Option<&TensorInfo> {
        self.metadata.info(key)
    }

    fn architecture(&self) -> Result<Architecture, CheckpointError> {
        let problem = |problem| CheckpointError::Architecture {
            path: self.path.to_path_buf(),
            problem,
        };
        let map = self.metadata.metadata().clone().unwrap_or_default();
        let field = |name: &'static str| {
            map.get(name)
                .cloned()
                .ok_or(ArchitectureProblem::MissingMetadata(name))
        };
        let format = field("format").map_err(problem)?;
        let dtype = field("dtype").map_err(problem)?;
        let layers = field("layers").map_err(problem)?;
        let layers = serde_json::from_str(&layers)
            .map_err(|error| problem(ArchitectureProblem::Json(error)))?;
        let architecture = Architecture {
            format,
            dtype,
            layers,
        };
        architecture.check().map_err(problem)?;
        Ok(architecture)
    }
}

impl ArraySource for SafetensorsFile<'_> {
    fn names(&self) -> Vec<String> {
        self.metadata.offset_keys()
    }

    fn shape(&mut self, key: &str) -> Result<Option<Vec<usize>>, CheckpointError> {
        Ok(self.info(key).map(|info| info.shape.clone()))
    }

    fn read_into<F: Float>(&mut self, key: &str, target: &mut [F]) -> Result<(), CheckpointError> {
        let Some(info) = self.info(key) else {
            return Ok(());
        };
        // The offsets were validated against the file by read_metadata.
        let start = 8 + self.header_len;
        let data = &self.bytes[start + info.data_offsets.0..start + info.data_offsets.1];
        match info.dtype {
            Dtype::F32 => {
                for (slot, chunk) in target.iter_mut().zip(data.chunks_exact(4)) {
                    let value = f32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
                    *slot = F::from_f64(value.into());
                }
            }
            Dtype::F64 => {
                for (slot, chunk) in target.iter_mut().zip(data.chunks_exact(8)) {
                    let mut word = [0u8; 8];
                    word.copy_from_slice(chunk);
                    *slot = F::from_f64(f64::from_le_bytes(word));
                }
            }
            other => {
                return Err(CheckpointError::Dtype {
                    path: self.path.to_path_buf(),
                    key: key.to_string(),
                    dtype: format!("{other:?}"),
                })
            }
        }
        Ok(())
    }
}

/// Loads a model written by [`save`].
pub(super) fn load<F: Float>(path: &Path) -> Result<MultiLayerPerceptron<F>, CheckpointError> {
    let mut file = SafetensorsFile::open(path)?;
    let mut model = file
        .architecture()?
        .build()
        .map_err(|source| CheckpointError::Model {
            path: path.to_path_buf(),
            source,
        })?;
    fill_model(&mut model, &mut file, path)?;
    Ok(model)
}

/// Fills `model` from the tensors of a `.safetensors` file (architecture not needed).
pub(super) fn load_weights_into<F: Float>(
    model: &mut MultiLayerPerceptron<F>,
    path: &Path,
) -> Result<(), CheckpointError> {
    let mut file = SafetensorsFile::open(path)?;
    fill_model(model, &mut file, path)
}
