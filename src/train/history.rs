//! What a training run reports: per-epoch evaluations, the history, and why it failed.

use ndarray::Array1;
use serde::{Deserialize, Serialize};
use thiserror::Error;

use super::config::Setting;
use super::state::ResumeMismatch;
use crate::limits::TooLarge;

/// Loss and error on one data set after an epoch.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Evaluation {
    /// Mean softmax cross-entropy; for regression, the mean squared error of the
    /// standardised target (what training minimises).
    pub loss: f64,
    /// Fraction of rows whose argmax is the label (0 for regression).
    pub accuracy: f64,
    /// For regression: the errors in the target's own units.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub regression: Option<RegressionMetrics>,
}

/// A regression model's errors on one set, in the target's own units.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct RegressionMetrics {
    /// Root mean squared error.
    pub rmse: f64,
    /// Mean absolute error.
    pub mae: f64,
    /// The coefficient of determination, `1 - SSE / SST` around the set's own mean (as
    /// scikit-learn's `r2_score`: 1 is perfect, 0 the mean's score, below 0 worse).
    pub r2: f64,
}

impl Evaluation {
    /// `1 - accuracy`, the assignment's error rate.
    pub fn error_rate(&self) -> f64 {
        1.0 - self.accuracy
    }
}

/// What one epoch did.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct EpochStats {
    /// 1-based epoch number.
    pub epoch: usize,
    /// The whole training set, after the epoch.
    pub train: Evaluation,
    /// The whole test set, after the epoch.
    pub test: Evaluation,
    /// The validation set, after the epoch, when there is one.
    pub val: Option<Evaluation>,
    /// The learning rate in force during the epoch.
    pub lr: f64,
    /// Seconds spent on the updates (forward, backward, step).
    pub train_seconds: f64,
    /// Seconds spent evaluating both sets.
    pub eval_seconds: f64,
    /// Batches of this epoch that were trained (all of them unless `partial`).
    pub batches: usize,
    /// Whether training stopped part-way through this epoch.
    pub partial: bool,
    /// With early stopping: epochs since the monitored loss last improved, after this one
    /// (0: it improved in this epoch).
    #[serde(default)]
    pub epochs_without_improvement: Option<usize>,
}

impl EpochStats {
    /// The loss early stopping and the plateau schedule watch: the validation loss, or
    /// the training loss when there is no validation set.
    pub fn monitored_loss(&self) -> f64 {
        self.val.map_or(self.train.loss, |val| val.loss)
    }
}

/// Why a run ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stop {
    /// Every epoch ran.
    Completed,
    /// Early stopping ended the run after epoch `epoch`.
    EarlyStopped {
        /// The last epoch trained.
        epoch: usize,
    },
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
    /// The epoch with the lowest monitored loss (see [`EpochStats::monitored_loss`]).
    pub best_epoch: Option<usize>,
    /// Whether the model ends with the best epoch's weights (early stopping restored
    /// them) rather than the last epoch's.
    pub restored_best: bool,
    /// Predicted class per training row, after the last epoch evaluated.
    pub train_predictions: Array1<usize>,
    /// Predicted class per test row, after the last epoch evaluated.
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
    /// A batch that leaves a `BatchNorm1d` layer one value per feature.
    #[error("a batch of {rows} row{} gives the batch normalisation at layer {layer} one value per channel, which has no variance (as PyTorch refuses it): choose a --batch-size whose last batch has at least 2 rows", if *rows == 1 { "" } else { "s" })]
    BatchOfOne {
        /// The position of the normalisation layer.
        layer: usize,
        /// The rows of the offending batch.
        rows: usize,
    },
    /// No training rows.
    #[error("the training set is empty")]
    EmptyTrainingSet,
    /// A saved training state that does not fit this run (another architecture,
    /// optimizer, data set or batch size): resuming it would not be exact.
    #[error("cannot resume: {0}")]
    Resume(#[from] ResumeMismatch),
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
