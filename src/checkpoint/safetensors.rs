//! The `.safetensors` model file: one file, the weights as `F32`/`F64` tensors named as
//! PyTorch's `state_dict` names them, the architecture in `__metadata__` (`format`,
//! `dtype`, and `layers` as JSON).

use std::borrow::Cow;
use std::collections::HashMap;
use std::path::Path;

use ::safetensors::tensor::{Metadata, TensorInfo, View};
use ::safetensors::{Dtype, SafeTensors};

use super::architecture::ArchitectureProblem;
use super::{fill_model, read_file, Architecture, ArraySource, CheckpointError, TrainedRecord};
use crate::atomic_file::write_bytes_atomically;
use crate::float::Float;
use crate::layers::StateValues;
use crate::network::MultiLayerPerceptron;

/// One tensor to write: little-endian bytes.
pub(super) struct TensorBytes {
    dtype: Dtype,
    shape: Vec<usize>,
    bytes: Vec<u8>,
}

impl TensorBytes {
    /// `values` in `F`'s width, with `shape`.
    pub(super) fn floats<F: Float>(shape: Vec<usize>, values: impl Iterator<Item = F>) -> Self {
        let mut bytes = Vec::new();
        let dtype = if std::mem::size_of::<F>() == 4 {
            for value in values {
                bytes.extend_from_slice(&(value.to_f64() as f32).to_le_bytes());
            }
            Dtype::F32
        } else {
            for value in values {
                bytes.extend_from_slice(&value.to_f64().to_le_bytes());
            }
            Dtype::F64
        };
        Self {
            dtype,
            shape,
            bytes,
        }
    }

    /// Raw bytes, as a 1-D `U8` tensor (a JSON document too large for the header).
    pub(super) fn raw(bytes: Vec<u8>) -> Self {
        Self {
            dtype: Dtype::U8,
            shape: vec![bytes.len()],
            bytes,
        }
    }

    /// A count as PyTorch keeps one (BatchNorm's `num_batches_tracked`): a signed 64-bit
    /// scalar, shape `[]`.
    pub(super) fn count(value: u64) -> Self {
        Self {
            dtype: Dtype::I64,
            shape: Vec::new(),
            bytes: (value as i64).to_le_bytes().to_vec(),
        }
    }

    /// `values` as unsigned 64-bit integers.
    pub(super) fn integers(values: &[usize]) -> Self {
        let bytes = values
            .iter()
            .flat_map(|&v| (v as u64).to_le_bytes())
            .collect();
        Self {
            dtype: Dtype::U64,
            shape: vec![values.len()],
            bytes,
        }
    }
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

/// The model's parameters, named as PyTorch's `state_dict` names them.
pub(super) fn model_tensors<F: Float>(
    model: &MultiLayerPerceptron<F>,
) -> Vec<(String, TensorBytes)> {
    let mut tensors = Vec::new();
    for (position, layer) in model.layers().iter().enumerate() {
        for (name, shape) in layer.state_entries() {
            let tensor = match layer.state_values(name) {
                Some(StateValues::Floats(values)) => TensorBytes::floats(shape, values.into_iter()),
                Some(StateValues::Count(count)) => TensorBytes::count(count),
                None => continue,
            };
            tensors.push((format!("{position}.{name}"), tensor));
        }
    }
    tensors
}

/// The metadata that describes the model: `format`, `dtype` and `layers`.
pub(super) fn model_metadata<F: Float>(model: &MultiLayerPerceptron<F>) -> HashMap<String, String> {
    let architecture = Architecture::of(model);
    let mut metadata = HashMap::from([
        ("format".to_string(), architecture.format.clone()),
        ("dtype".to_string(), architecture.dtype.clone()),
        (
            "layers".to_string(),
            // Cannot fail: plain strings and integers.
            serde_json::to_string(&architecture.layers).expect("layer lists serialise"),
        ),
    ]);
    if let (Some(spec), Some(input)) = (architecture.spec, architecture.input) {
        metadata.insert("spec".to_string(), spec);
        // Cannot fail: a list of integers.
        metadata.insert(
            "input".to_string(),
            serde_json::to_string(&input).expect("shapes serialise"),
        );
    }
    metadata
}

/// The SHA-256 (hex) of a file's tensors (name, element type, shape, bytes, in name
/// order) and its metadata entries other than `digest` (in key order): what a checkpoint
/// records about itself, independent of how the header is laid out.
pub(super) fn content_digest<'a>(
    tensors: impl IntoIterator<Item = (&'a str, Dtype, &'a [usize], &'a [u8])>,
    metadata: &HashMap<String, String>,
) -> String {
    use sha2::{Digest, Sha256};
    let mut tensors: Vec<_> = tensors.into_iter().collect();
    tensors.sort_by(|a, b| a.0.cmp(b.0));
    let mut hasher = Sha256::new();
    for (name, dtype, shape, bytes) in tensors {
        hasher.update(name.as_bytes());
        hasher.update([0]);
        hasher.update(format!("{dtype:?}").as_bytes());
        hasher.update([0]);
        hasher.update((shape.len() as u64).to_le_bytes());
        for &extent in shape {
            hasher.update((extent as u64).to_le_bytes());
        }
        hasher.update((bytes.len() as u64).to_le_bytes());
        hasher.update(bytes);
    }
    let mut entries: Vec<_> = metadata
        .iter()
        .filter(|(key, _)| *key != "digest")
        .collect();
    entries.sort();
    for (key, value) in entries {
        hasher.update((key.len() as u64).to_le_bytes());
        hasher.update(key.as_bytes());
        hasher.update((value.len() as u64).to_le_bytes());
        hasher.update(value.as_bytes());
    }
    hasher
        .finalize()
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

/// [`content_digest`] of tensors about to be written.
pub(super) fn digest_of(
    tensors: &[(String, TensorBytes)],
    metadata: &HashMap<String, String>,
) -> String {
    content_digest(
        tensors.iter().map(|(name, tensor)| {
            (
                name.as_str(),
                tensor.dtype,
                &tensor.shape[..],
                &tensor.bytes[..],
            )
        }),
        metadata,
    )
}

/// Writes `tensors` and `metadata` to `path` as one `.safetensors` file, atomically.
pub(super) fn write(
    path: &Path,
    tensors: &[(String, TensorBytes)],
    metadata: HashMap<String, String>,
) -> Result<(), CheckpointError> {
    let bytes = ::safetensors::serialize(
        tensors.iter().map(|(name, tensor)| (name, tensor)),
        Some(metadata),
    )
    .map_err(|source| CheckpointError::Safetensors {
        path: path.to_path_buf(),
        source,
    })?;
    write_bytes_atomically(path, &canonical(bytes)).map_err(CheckpointError::io(path))
}

/// The same file with its JSON header's keys sorted: the metadata is a hash map, whose
/// order changes from process to process, and the same model should be the same bytes.
fn canonical(bytes: Vec<u8>) -> Vec<u8> {
    let length = match bytes.get(..8).map(|b| b.try_into().map(u64::from_le_bytes)) {
        Some(Ok(length)) => length as usize,
        _ => return bytes,
    };
    let header = match bytes
        .get(8..8 + length)
        .map(serde_json::from_slice::<serde_json::Value>)
    {
        Some(Ok(header)) => header,
        _ => return bytes,
    };
    // serde_json's maps are ordered by key.
    let mut text = header.to_string().into_bytes();
    // Padded with spaces to keep the data 8-byte aligned, as safetensors does.
    while text.len() % 8 != 0 {
        text.push(b' ');
    }
    let mut canonical = (text.len() as u64).to_le_bytes().to_vec();
    canonical.extend_from_slice(&text);
    canonical.extend_from_slice(&bytes[8 + length..]);
    canonical
}

/// Writes `model` to `path`, with what `record` holds in the metadata (`seed`, and
/// `preprocessing` as JSON).
pub(super) fn save_with_record<F: Float>(
    model: &MultiLayerPerceptron<F>,
    path: &Path,
    record: &TrainedRecord,
) -> Result<(), CheckpointError> {
    let mut metadata = model_metadata(model);
    if let Some(seed) = record.seed {
        metadata.insert("seed".into(), seed.to_string());
    }
    if let Some(preprocessing) = &record.preprocessing {
        // Cannot fail: strings, finite numbers and lists.
        let json = serde_json::to_string(preprocessing).expect("preprocessing serialises");
        metadata.insert("preprocessing".into(), json);
    }
    write(path, &model_tensors(model), metadata)
}

/// The `seed` and `preprocessing` metadata entries of the file at `path`.
pub(super) fn recorded(path: &Path) -> Result<TrainedRecord, CheckpointError> {
    let file = SafetensorsFile::open(path)?;
    let preprocessing = match file.metadata_entry("preprocessing") {
        Some(json) => {
            Some(
                serde_json::from_str(json).map_err(|error| CheckpointError::Architecture {
                    path: path.to_path_buf(),
                    problem: ArchitectureProblem::Json(error),
                })?,
            )
        }
        None => None,
    };
    Ok(TrainedRecord {
        seed: file
            .metadata_entry("seed")
            .and_then(|seed| seed.parse().ok()),
        preprocessing,
    })
}

/// A parsed `.safetensors` file.
pub(super) struct SafetensorsFile<'a> {
    path: &'a Path,
    bytes: Vec<u8>,
    metadata: Metadata,
    header_len: usize,
}

impl<'a> SafetensorsFile<'a> {
    pub(super) fn open(path: &'a Path) -> Result<Self, CheckpointError> {
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

    /// A `__metadata__` entry.
    pub(super) fn metadata_entry(&self, name: &str) -> Option<&String> {
        self.metadata
            .metadata()
            .as_ref()
            .and_then(|map| map.get(name))
    }

    /// [`content_digest`] of this file as it was read.
    pub(super) fn digest(&self) -> String {
        let start = 8 + self.header_len;
        let names = self.metadata.offset_keys();
        let tensors = names.iter().filter_map(|name| {
            let info = self.info(name)?;
            let data = &self.bytes[start + info.data_offsets.0..start + info.data_offsets.1];
            Some((name.as_str(), info.dtype, &info.shape[..], data))
        });
        content_digest(
            tensors,
            &self.metadata.metadata().clone().unwrap_or_default(),
        )
    }

    /// The tensors whose names start with `prefix`.
    pub(super) fn names_with_prefix(&self, prefix: &str) -> Vec<String> {
        self.metadata
            .offset_keys()
            .into_iter()
            .filter(|name| name.starts_with(prefix))
            .collect()
    }

    /// The bytes of a 1-D `U8` tensor.
    pub(super) fn raw(&self, key: &str) -> Option<&[u8]> {
        let info = self.info(key)?;
        if info.dtype != Dtype::U8 || info.shape.len() != 1 {
            return None;
        }
        let start = 8 + self.header_len;
        Some(&self.bytes[start + info.data_offsets.0..start + info.data_offsets.1])
    }

    /// An unsigned 64-bit integer vector.
    pub(super) fn integers(&self, key: &str) -> Option<Vec<u64>> {
        let info = self.info(key)?;
        if info.dtype != Dtype::U64 || info.shape.len() != 1 {
            return None;
        }
        let start = 8 + self.header_len;
        let data = &self.bytes[start + info.data_offsets.0..start + info.data_offsets.1];
        Some(
            data.chunks_exact(8)
                .map(|chunk| {
                    let mut word = [0u8; 8];
                    word.copy_from_slice(chunk);
                    u64::from_le_bytes(word)
                })
                .collect(),
        )
    }

    pub(super) fn architecture(&self) -> Result<Architecture, CheckpointError> {
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
        let layers = serde_json::from_str(&field("layers").map_err(problem)?)
            .map_err(|error| problem(ArchitectureProblem::Json(error)))?;
        let input = map
            .get("input")
            .map(|text| serde_json::from_str::<Vec<usize>>(text))
            .transpose()
            .map_err(|error| problem(ArchitectureProblem::Json(error)))?;
        let architecture = Architecture {
            format,
            dtype,
            layers,
            spec: map.get("spec").cloned(),
            input,
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
            // BatchNorm's `num_batches_tracked`.
            Dtype::I64 => {
                for (slot, chunk) in target.iter_mut().zip(data.chunks_exact(8)) {
                    let mut word = [0u8; 8];
                    word.copy_from_slice(chunk);
                    *slot = F::from_f64(i64::from_le_bytes(word) as f64);
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

/// Loads a model written by [`save_with_record`].
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
