//! The resumable checkpoint: one `.safetensors` file that is a model file (the model's
//! tensors and metadata, so `eval`, `predict` and `--init-from` take it) plus everything
//! a [`Trainer`](crate::train::Trainer) needs to continue exactly:
//!
//! - tensors `optimizer.{buffer}.{parameter}` (`momentum`, `exp_avg`, `exp_avg_sq`),
//!   `best.{parameter}` (early stopping's best weights), `shuffle.order` (`U64`) and
//!   `training.history` (`U8`: the epochs' statistics as JSON, which a header could not
//!   hold for a run of many epochs);
//! - metadata `training` (JSON: epoch and batch, optimizer kind and step count, the
//!   schedule, early stopping's counters, the shuffling stream's position, each dropout
//!   layer's seed and stream position), `run` (JSON
//!   the caller stores to check a resume against, such as its settings) and `digest`
//!   (the SHA-256 of everything else).

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::safetensors::{
    digest_of, model_metadata, model_tensors, write, SafetensorsFile, TensorBytes,
};
use super::{fill_model, ArraySource, CheckpointError};
use crate::float::Float;
use crate::layers::{Dropout, Layer};
use crate::module::{Module, Parameter, ParameterKey};
use crate::network::MultiLayerPerceptron;
use crate::optim::schedule::Scheduler;
use crate::optim::{OptimizerKind, OptimizerState};
use crate::train::{EarlyStopping, EpochStats, ShuffleState, TrainingState};

/// The scalars of a [`TrainingState`], as the `training` metadata holds them.
#[derive(Serialize, Deserialize)]
struct TrainingScalars {
    epoch: usize,
    batch: usize,
    optimizer: OptimizerKind,
    steps: u64,
    scheduler: Scheduler,
    early_stopping: Option<EarlyStoppingScalars>,
    shuffle: Option<ShuffleStream>,
    /// Each dropout layer's stream, so that a resumed run draws the masks the run
    /// would have drawn.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    dropout: Vec<DropoutStream>,
    /// Empty when written: the history is the `training.history` tensor (JSON bytes),
    /// which, unlike the header, has no size limit (a run of many epochs).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    history: Vec<EpochStats>,
}

/// Early stopping's counters (its best weights are tensors).
#[derive(Serialize, Deserialize)]
struct EarlyStoppingScalars {
    patience: usize,
    min_delta: f64,
    /// `None` before the first epoch (the best loss is then infinite).
    best_loss: Option<f64>,
    best_epoch: usize,
    bad_epochs: usize,
}

/// The shuffling stream's position (its order is a tensor). The seed is hex, the word
/// position a decimal string (it can exceed what JSON numbers hold exactly).
#[derive(Serialize, Deserialize)]
struct ShuffleStream {
    seed: String,
    stream: u64,
    word_pos: String,
}

/// A dropout layer's stream: its position in the network, its seed and its word
/// position (decimal strings: they can exceed what JSON numbers hold exactly).
#[derive(Serialize, Deserialize)]
struct DropoutStream {
    layer: usize,
    seed: String,
    word_pos: String,
}

/// The streams of `model`'s dropout layers.
fn dropout_streams<F: Float>(model: &MultiLayerPerceptron<F>) -> Vec<DropoutStream> {
    model
        .layers()
        .iter()
        .enumerate()
        .filter_map(|(layer, kind)| match kind {
            Layer::Dropout(dropout) => Some(DropoutStream {
                layer,
                seed: dropout.seed().to_string(),
                word_pos: dropout.stream_position().to_string(),
            }),
            _ => None,
        })
        .collect()
}

/// Puts the recorded streams back into `model`'s dropout layers (one record per layer).
fn restore_dropout<F: Float>(
    model: &mut MultiLayerPerceptron<F>,
    streams: &[DropoutStream],
    path: &Path,
) -> Result<(), CheckpointError> {
    let dropouts = model
        .layers()
        .iter()
        .filter(|layer| matches!(layer, Layer::Dropout(_)))
        .count();
    if dropouts != streams.len() {
        return Err(bad_state(
            path,
            format!(
                "{} dropout streams for {dropouts} dropout layers",
                streams.len()
            ),
        ));
    }
    for stream in streams {
        let bad = || {
            bad_state(
                path,
                format!("a bad dropout stream for layer {}", stream.layer),
            )
        };
        let seed = stream.seed.parse().map_err(|_| bad())?;
        let position = stream.word_pos.parse().map_err(|_| bad())?;
        match model.layers_mut().get_mut(stream.layer) {
            Some(Layer::Dropout(dropout)) => {
                let mut restored = Dropout::new(dropout.p(), seed);
                restored.set_stream_position(position);
                *dropout = restored;
            }
            _ => return Err(bad()),
        }
    }
    Ok(())
}

/// The names of early stopping's kept running statistics: `best.{layer}.running_mean`
/// and `best.{layer}.running_var` for each batch normalisation layer.
fn statistics_names<F: Float>(model: &MultiLayerPerceptron<F>) -> Vec<String> {
    model
        .layers()
        .iter()
        .enumerate()
        .filter(|(_, layer)| matches!(layer, Layer::BatchNorm(_)))
        .flat_map(|(position, _)| {
            ["running_mean", "running_var"].map(|name| format!("best.{position}.{name}"))
        })
        .collect()
}

/// A problem with a checkpoint's training state.
fn bad_state(path: &Path, detail: impl std::fmt::Display) -> CheckpointError {
    CheckpointError::Training {
        path: path.to_path_buf(),
        detail: detail.to_string(),
    }
}

/// The model's parameter keys, in its parameter order.
fn parameter_keys<F: Float>(model: &mut MultiLayerPerceptron<F>) -> Vec<(ParameterKey, usize)> {
    let mut keys = Vec::new();
    model.visit_parameters(&mut |parameter: Parameter<'_, F>| {
        keys.push((parameter.key, parameter.value.len()))
    });
    keys
}

/// Writes a resumable checkpoint of `model` and `state` to `path`, atomically, with `run`
/// stored beside them.
pub fn save_training<F: Float>(
    path: &Path,
    model: &MultiLayerPerceptron<F>,
    state: &TrainingState<F>,
    run: &serde_json::Value,
) -> Result<(), CheckpointError> {
    let mut tensors = model_tensors(model);
    for ((name, key), values) in &state.optimizer.buffers {
        tensors.push((
            format!("optimizer.{name}.{key}"),
            TensorBytes::floats(vec![values.len()], values.iter().copied()),
        ));
    }
    let mut keys_model = model.clone();
    let keys = parameter_keys(&mut keys_model);
    if let Some(early_stopping) = &state.early_stopping {
        for ((key, _), values) in keys.iter().zip(&early_stopping.best_weights) {
            tensors.push((
                format!("best.{key}"),
                TensorBytes::floats(vec![values.len()], values.iter().copied()),
            ));
        }
        let names = statistics_names(model);
        for (name, values) in names.iter().zip(&early_stopping.best_statistics) {
            tensors.push((
                name.clone(),
                TensorBytes::floats(vec![values.len()], values.iter().copied()),
            ));
        }
    }
    if let Some(shuffle) = &state.shuffle {
        tensors.push((
            "shuffle.order".to_string(),
            TensorBytes::integers(&shuffle.order),
        ));
    }
    let scalars = TrainingScalars {
        epoch: state.epoch,
        batch: state.batch,
        optimizer: state.optimizer_kind,
        steps: state.optimizer.steps,
        scheduler: state.scheduler.clone(),
        early_stopping: state.early_stopping.as_ref().map(|e| EarlyStoppingScalars {
            patience: e.patience,
            min_delta: e.min_delta,
            best_loss: e.best_loss.is_finite().then_some(e.best_loss),
            best_epoch: e.best_epoch,
            bad_epochs: e.bad_epochs,
        }),
        shuffle: state.shuffle.as_ref().map(|s| ShuffleStream {
            seed: s.seed.iter().map(|b| format!("{b:02x}")).collect(),
            stream: s.stream,
            word_pos: s.word_pos.to_string(),
        }),
        dropout: dropout_streams(model),
        history: Vec::new(),
    };
    tensors.push((
        "training.history".to_string(),
        // Cannot fail: numbers (all finite) and strings.
        TensorBytes::raw(serde_json::to_vec(&state.history).expect("the history serialises")),
    ));
    let mut metadata = model_metadata(model);
    // Cannot fail: numbers (all finite: divergence ends a run before it is saved) and strings.
    metadata.insert(
        "training".into(),
        serde_json::to_string(&scalars).expect("the state serialises"),
    );
    metadata.insert("run".into(), run.to_string());
    let digest = digest_of(&tensors, &metadata);
    metadata.insert("digest".into(), digest);
    write(path, &tensors, metadata)
}

/// The `run` JSON stored in a checkpoint written by [`save_training`], read without the
/// tensors (to check a resume before loading the data).
pub fn training_run(path: &Path) -> Result<serde_json::Value, CheckpointError> {
    let file = open_verified(path)?;
    match file.metadata_entry("run") {
        Some(text) => serde_json::from_str(text).map_err(|error| bad_state(path, error)),
        None => Ok(serde_json::Value::Null),
    }
}

/// Reads a checkpoint written by [`save_training`]: the model, the training state, and
/// the `run` JSON. Every tensor is checked against the model before it is read.
pub fn load_training<F: Float>(
    path: &Path,
) -> Result<(MultiLayerPerceptron<F>, TrainingState<F>, serde_json::Value), CheckpointError> {
    let mut file = open_verified(path)?;
    let mut model = file
        .architecture()?
        .build()
        .map_err(|source| CheckpointError::Model {
            path: path.to_path_buf(),
            source,
        })?;
    fill_model(&mut model, &mut file, path)?;
    let text = file.metadata_entry("training").ok_or_else(|| {
        bad_state(
            path,
            "no training state (a model file, not a resumable checkpoint)",
        )
    })?;
    let mut scalars: TrainingScalars =
        serde_json::from_str(text).map_err(|error| bad_state(path, error))?;
    if let Some(bytes) = file.raw("training.history") {
        scalars.history = serde_json::from_slice(bytes).map_err(|error| bad_state(path, error))?;
    }
    check_counters(&scalars).map_err(|detail| bad_state(path, detail))?;
    restore_dropout(&mut model, &scalars.dropout, path)?;
    let run = match file.metadata_entry("run") {
        Some(text) => serde_json::from_str(text).map_err(|error| bad_state(path, error))?,
        None => serde_json::Value::Null,
    };
    let keys = parameter_keys(&mut model);
    let sizes: BTreeMap<ParameterKey, usize> = keys.iter().copied().collect();
    let mut buffers = BTreeMap::new();
    for name in file.names_with_prefix("optimizer.") {
        let rest = &name["optimizer.".len()..];
        let (buffer, key_text) = rest
            .split_once('.')
            .ok_or_else(|| bad_state(path, format!("tensor '{name}' names no parameter")))?;
        let key = keys
            .iter()
            .map(|(key, _)| *key)
            .find(|key| key.to_string() == key_text)
            .ok_or_else(|| {
                bad_state(
                    path,
                    format!("tensor '{name}' names no parameter of the model"),
                )
            })?;
        buffers.insert(
            (buffer.to_string(), key),
            read_vector(&mut file, path, &name, sizes[&key])?,
        );
    }
    let early_stopping = match scalars.early_stopping {
        Some(e) => {
            let mut best_weights = Vec::new();
            for (key, size) in &keys {
                let name = format!("best.{key}");
                if file.shape(&name)?.is_some() {
                    best_weights.push(read_vector(&mut file, path, &name, *size)?);
                }
            }
            if !best_weights.is_empty() && best_weights.len() != keys.len() {
                return Err(bad_state(
                    path,
                    "early stopping's best weights are incomplete",
                ));
            }
            let mut early_stopping = EarlyStopping::new(e.patience, e.min_delta);
            early_stopping.best_loss = e.best_loss.unwrap_or(f64::INFINITY);
            early_stopping.best_epoch = e.best_epoch;
            early_stopping.bad_epochs = e.bad_epochs;
            early_stopping.best_weights = best_weights;
            for (name, values) in statistics_names(&model)
                .iter()
                .zip(model.running_statistics())
            {
                if file.shape(name)?.is_some() {
                    let values = read_vector(&mut file, path, name, values.len())?;
                    early_stopping.best_statistics.push(values);
                }
            }
            Some(early_stopping)
        }
        None => None,
    };
    let shuffle = match scalars.shuffle {
        Some(stream) => {
            let order = file
                .integers("shuffle.order")
                .ok_or_else(|| bad_state(path, "no U64 tensor 'shuffle.order'"))?;
            let order = order
                .into_iter()
                .map(usize::try_from)
                .collect::<Result<Vec<_>, _>>()
                .map_err(|_| bad_state(path, "a row index beyond this machine's addresses"))?;
            Some(ShuffleState {
                order,
                seed: parse_seed(&stream.seed)
                    .ok_or_else(|| bad_state(path, "a shuffle seed that is not 64 hex digits"))?,
                stream: stream.stream,
                word_pos: stream
                    .word_pos
                    .parse()
                    .map_err(|_| bad_state(path, "a shuffle position that is not a number"))?,
            })
        }
        None => None,
    };
    let state = TrainingState {
        epoch: scalars.epoch,
        batch: scalars.batch,
        optimizer_kind: scalars.optimizer,
        optimizer: OptimizerState {
            steps: scalars.steps,
            buffers,
        },
        scheduler: scalars.scheduler,
        early_stopping,
        shuffle,
        history: scalars.history,
    };
    Ok((model, state, run))
}

/// Checks that the counters agree with each other: one history entry per finished epoch,
/// numbered 1, 2, ..., none partial, and early stopping's best epoch among them.
fn check_counters(scalars: &TrainingScalars) -> Result<(), String> {
    if scalars.history.len() != scalars.epoch {
        return Err(format!(
            "it records {} finished epochs but the history of {}",
            scalars.epoch,
            scalars.history.len()
        ));
    }
    for (index, stats) in scalars.history.iter().enumerate() {
        if stats.epoch != index + 1 || stats.partial {
            return Err(format!(
                "history entry {} is epoch {}{}, expected whole epoch {}",
                index + 1,
                stats.epoch,
                if stats.partial { " (partial)" } else { "" },
                index + 1
            ));
        }
    }
    if let Some(early_stopping) = &scalars.early_stopping {
        if early_stopping.best_epoch > scalars.epoch {
            return Err(format!(
                "early stopping's best epoch {} is after the last finished epoch {}",
                early_stopping.best_epoch, scalars.epoch
            ));
        }
    }
    Ok(())
}

/// Opens a checkpoint and checks that it is one (it has a training state) and that its
/// contents are those nabla wrote (its digest matches).
fn open_verified(path: &Path) -> Result<SafetensorsFile<'_>, CheckpointError> {
    let file = SafetensorsFile::open(path)?;
    if file.metadata_entry("training").is_none() {
        return Err(bad_state(
            path,
            "no training state (a model file, not a resumable checkpoint)",
        ));
    }
    match file.metadata_entry("digest") {
        Some(recorded) if *recorded == file.digest() => Ok(file),
        Some(_) => Err(bad_state(
            path,
            "its contents do not match the digest nabla recorded when writing it: it was edited or damaged since; resume from another checkpoint or start the run again",
        )),
        None => Err(bad_state(
            path,
            "no digest of its contents (written by an older nabla, or edited): it cannot be checked; start the run again",
        )),
    }
}

/// A 1-D float tensor of `size` values, checked for its shape and for finite values.
fn read_vector<F: Float>(
    file: &mut SafetensorsFile<'_>,
    path: &Path,
    name: &str,
    size: usize,
) -> Result<Vec<F>, CheckpointError> {
    match file.shape(name)? {
        Some(shape) if shape == [size] => {}
        found => {
            return Err(CheckpointError::Shape {
                path: path.to_path_buf(),
                key: name.to_string(),
                expected: vec![size],
                found: found.unwrap_or_default(),
            })
        }
    }
    let mut values = vec![F::zero(); size];
    file.read_into(name, &mut values)?;
    if let Some(index) = values.iter().position(|v| !v.is_finite()) {
        return Err(CheckpointError::NonFinite {
            path: path.to_path_buf(),
            key: name.to_string(),
            position: vec![index],
            value: values[index].to_f64(),
        });
    }
    Ok(values)
}

fn parse_seed(hex: &str) -> Option<[u8; 32]> {
    if hex.len() != 64 || !hex.is_ascii() {
        return None;
    }
    let mut seed = [0u8; 32];
    for (index, byte) in seed.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&hex[2 * index..2 * index + 2], 16).ok()?;
    }
    Some(seed)
}
