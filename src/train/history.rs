//! What a training run reports: per-epoch evaluations, the history, and why it failed.

use ndarray::Array1;
use thiserror::Error;

use super::config::Setting;
use crate::limits::TooLarge;

/// Loss and error on one data set after an epoch.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Evaluation {
    /// Mean softmax cross-entropy.
    pub loss: f64,
    /// Fraction of rows whose argmax is the label.
    pub accuracy: f64,
}

impl Evaluation {
    /// `1 - accuracy`, the assignment's error rate.
    pub fn error_rate(&self) -> f64 {
        1.0 - self.accuracy
    }
}

/// What one epoch did.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct EpochStats {
    /// 1-based epoch number.
    pub epoch: usize,
    /// The whole training set, after the epoch.
    pub train: Evaluation,
    /// The whole test set, after the epoch.
    pub test: Evaluation,
    /// Seconds spent on the updates (forward, backward, step).
    pub train_seconds: f64,
    /// Seconds spent evaluating both sets.
    pub eval_seconds: f64,
    /// Batches of this epoch that were trained (all of them unless `partial`).
    pub batches: usize,
    /// Whether training stopped part-way through this epoch.
    pub partial: bool,
}

/// Why a run ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stop {
    /// Every epoch ran.
    Completed,
    /// The observer asked to stop, after batch `batch` of epoch `epoch`.
    Interrupted {
        /// 1-based epoch.
        epoch: usize,
        /// Batches trained in that epoch.
        batch: usize,
    },
}

/// The result of a run: per-epoch statistics and the final predictions.
#[derive(Clone, Debug, PartialEq)]
pub struct History {
    /// One entry per epoch, in order (the last one partial if the run was interrupted).
    pub epochs: Vec<EpochStats>,
    /// Why the run ended.
    pub stop: Stop,
    /// Predicted class per training row, after the last epoch.
    pub train_predictions: Array1<usize>,
    /// Predicted class per test row, after the last epoch.
    pub test_predictions: Array1<usize>,
}

/// Why training stopped or could not start.
#[derive(Debug, Error)]
pub enum TrainError {
    /// A hyperparameter out of range.
    #[error("invalid {setting} {value}: expected {expected}")]
    InvalidSetting {
        /// Which setting.
        setting: Setting,
        /// The value given.
        value: f64,
        /// What is allowed.
        expected: &'static str,
    },
    /// The model does not fit the data.
    #[error("the model takes {model_inputs} inputs and gives {model_outputs} outputs, but the data set has {features} features and {classes} classes")]
    ModelDataMismatch {
        /// The model's input width.
        model_inputs: usize,
        /// The model's output width.
        model_outputs: usize,
        /// The data's feature count.
        features: usize,
        /// The data's class count.
        classes: usize,
    },
    /// The training buffers do not fit in memory.
    #[error(transparent)]
    TooLarge(#[from] TooLarge),
    /// No training rows.
    #[error("the training set is empty")]
    EmptyTrainingSet,
    /// The loss became NaN or infinite. The epochs completed before it were reported
    /// to the observer.
    #[error("training diverged in epoch {epoch}, batch {batch}: the loss is {loss} (try a smaller learning rate)")]
    Diverged {
        /// 1-based epoch.
        epoch: usize,
        /// 1-based batch within the epoch.
        batch: usize,
        /// The non-finite loss.
        loss: f64,
    },
}
