//! `train_network`: the assignment's batch gradient descent with per-epoch evaluation.
//!
//! Batches of `batch_size` rows are taken in data-set order (the last, smaller batch
//! too); each gives one update with the batch-mean gradient. After every epoch the model
//! as it stands is evaluated on the whole training and test sets. Shuffling, momentum
//! and weight decay are extensions, all off by default.

use std::time::Instant;

use ndarray::{s, Array1, ArrayView1};
use rand::seq::SliceRandom;
use thiserror::Error;

use crate::data::{Dataset, Features, Rows};
use crate::init;
use crate::module::Module;
use crate::network::{argmax, MultiLayerPerceptron};
use crate::optim::GradientDescent;
use crate::{Float, SoftmaxCrossEntropy};

/// Rows per forward pass when evaluating: large enough for efficient GEMMs, small
/// enough that the activations stay a few megabytes.
pub const EVAL_CHUNK_ROWS: usize = 1000;

/// Hyperparameters of a training run, checked by [`TrainConfig::validate`].
#[derive(Clone, Debug, PartialEq)]
pub struct TrainConfig {
    /// Passes over the training set (at least 1).
    pub num_epoch: usize,
    /// Step size, positive and finite.
    pub learning_rate: f64,
    /// Rows per update (at least 1).
    pub batch_size: usize,
    /// Seed of the shuffling stream (used only with `shuffle`).
    pub seed: u64,
    /// Visit the training rows in a new seeded random order each epoch.
    pub shuffle: bool,
    /// Heavy-ball momentum in `[0, 1)`; 0 is plain gradient descent.
    pub momentum: f64,
    /// L2 weight decay `lambda >= 0` (weights only).
    pub weight_decay: f64,
}

impl TrainConfig {
    /// The assignment's settings: in-order batches, no momentum, no weight decay.
    pub fn new(num_epoch: usize, learning_rate: f64, batch_size: usize, seed: u64) -> Self {
        Self {
            num_epoch,
            learning_rate,
            batch_size,
            seed,
            shuffle: false,
            momentum: 0.0,
            weight_decay: 0.0,
        }
    }

    /// Refuses values that cannot train: the first bad one is named with its value.
    pub fn validate(&self) -> Result<(), TrainError> {
        let invalid = |name: &'static str, value: String, expected: &'static str| {
            Err(TrainError::InvalidSetting {
                name,
                value,
                expected,
            })
        };
        if self.num_epoch == 0 {
            return invalid("num_epoch", "0".into(), "at least 1");
        }
        if !(self.learning_rate.is_finite() && self.learning_rate > 0.0) {
            return invalid(
                "learning_rate",
                self.learning_rate.to_string(),
                "a finite number > 0",
            );
        }
        if self.batch_size == 0 {
            return invalid("batch_size", "0".into(), "at least 1");
        }
        if !(self.momentum.is_finite() && (0.0..1.0).contains(&self.momentum)) {
            return invalid("momentum", self.momentum.to_string(), "a number in [0, 1)");
        }
        if !(self.weight_decay.is_finite() && self.weight_decay >= 0.0) {
            return invalid(
                "weight_decay",
                self.weight_decay.to_string(),
                "a finite number >= 0",
            );
        }
        Ok(())
    }
}

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
}

/// The result of a run: per-epoch statistics and the final predictions.
#[derive(Clone, Debug, PartialEq)]
pub struct History {
    /// One entry per epoch, in order.
    pub epochs: Vec<EpochStats>,
    /// Predicted class per training row, after the last epoch.
    pub train_predictions: Array1<usize>,
    /// Predicted class per test row, after the last epoch.
    pub test_predictions: Array1<usize>,
}

/// Why training stopped or could not start.
#[derive(Debug, Error)]
pub enum TrainError {
    /// A hyperparameter out of range.
    #[error("invalid {name} {value}: expected {expected}")]
    InvalidSetting {
        /// The setting's name.
        name: &'static str,
        /// The value given.
        value: String,
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
    /// No training rows.
    #[error("the training set is empty")]
    EmptyTrainingSet,
    /// The loss became NaN or infinite; the epochs before it are kept.
    #[error("training diverged in epoch {epoch}, batch {batch}: the loss is {loss} (try a smaller learning rate)")]
    Diverged {
        /// 1-based epoch.
        epoch: usize,
        /// 1-based batch within the epoch.
        batch: usize,
        /// The non-finite loss.
        loss: f64,
        /// The statistics of the epochs completed before it.
        completed: Vec<EpochStats>,
    },
}

/// Receives progress from [`train_with`]; the library itself prints nothing.
pub trait Observer {
    /// An epoch with `batches` batches begins.
    fn epoch_started(&mut self, epoch: usize, batches: usize) {
        let _ = (epoch, batches);
    }

    /// Batch `batch` (1-based) of `epoch` finished with mean loss `loss`.
    fn batch_finished(&mut self, epoch: usize, batch: usize, loss: f64) {
        let _ = (epoch, batch, loss);
    }

    /// An epoch finished and was evaluated.
    fn epoch_finished(&mut self, stats: &EpochStats) {
        let _ = stats;
    }
}

/// An observer that ignores everything.
impl Observer for () {}

/// The assignment's `train_network`: `num_epoch` epochs of in-order batch gradient descent.
pub fn train_network<F: Float>(
    model: &mut MultiLayerPerceptron<F>,
    dataset: &Dataset<F>,
    num_epoch: usize,
    learning_rate: f64,
    batch_size: usize,
    seed: u64,
) -> Result<History, TrainError> {
    let config = TrainConfig::new(num_epoch, learning_rate, batch_size, seed);
    train_with(model, dataset, &config, &mut ())
}

/// Trains `model` on `dataset` as `config` says, reporting to `observer`.
///
/// The loop runs on a thread of rayon's pool (the caller waits), so that when a GEMM is
/// split across the cores one part runs on the training thread itself. The first layer's
/// input gradient is switched off while training (see
/// [`MultiLayerPerceptron::set_input_gradient`]) and restored afterwards.
pub fn train_with<F: Float, O: Observer + Send + ?Sized>(
    model: &mut MultiLayerPerceptron<F>,
    dataset: &Dataset<F>,
    config: &TrainConfig,
    observer: &mut O,
) -> Result<History, TrainError> {
    rayon::scope(|_| {
        let input_gradient = model.input_gradient();
        model.set_input_gradient(false);
        let result = train_on_this_thread(model, dataset, config, observer);
        model.set_input_gradient(input_gradient);
        result
    })
}

fn train_on_this_thread<F: Float, O: Observer + ?Sized>(
    model: &mut MultiLayerPerceptron<F>,
    dataset: &Dataset<F>,
    config: &TrainConfig,
    observer: &mut O,
) -> Result<History, TrainError> {
    config.validate()?;
    check_fit(model, dataset)?;
    let rows = dataset.train_y.len();
    if rows == 0 {
        return Err(TrainError::EmptyTrainingSet);
    }
    let mut optimizer = GradientDescent::new(F::from_f64(config.learning_rate))
        .with_momentum(F::from_f64(config.momentum))
        .with_weight_decay(F::from_f64(config.weight_decay));
    // Without momentum the update needs no state: it is fused into the weight-gradient GEMM.
    let fused_step = config.momentum == 0.0;
    let (learning_rate, weight_decay) = (
        F::from_f64(config.learning_rate),
        F::from_f64(config.weight_decay),
    );
    if learning_rate == F::zero() {
        return Err(TrainError::InvalidSetting {
            name: "learning_rate",
            value: config.learning_rate.to_string(),
            expected: "a number that does not round to 0 in the model's float type",
        });
    }
    let mut loss = SoftmaxCrossEntropy::new();
    let mut batch = BatchSource::new(rows, config);
    let batches = rows.div_ceil(config.batch_size);
    let mut completed = Vec::with_capacity(config.num_epoch);
    let (mut train_evaluator, mut test_evaluator) = (Evaluator::new(), Evaluator::new());

    for epoch in 1..=config.num_epoch {
        observer.epoch_started(epoch, batches);
        batch.start_epoch();
        let started = Instant::now();
        for index in 0..batches {
            let start = index * config.batch_size;
            let end = (start + config.batch_size).min(rows);
            let (rows, labels) = batch.select(dataset, start..end);
            let logits = model.forward_with(rows.len(), |input| {
                dataset.train_x.copy_rows_into(&rows, input)
            });
            let value = loss.forward(logits, labels).to_f64();
            if !value.is_finite() {
                return Err(TrainError::Diverged {
                    epoch,
                    batch: index + 1,
                    loss: value,
                    completed,
                });
            }
            if fused_step {
                model.backward_and_step(loss.backward(), learning_rate, weight_decay);
            } else {
                model.backward(loss.backward());
                optimizer.step(model);
            }
            observer.batch_finished(epoch, index + 1, value);
        }
        let train_seconds = started.elapsed().as_secs_f64();
        let started = Instant::now();
        let train = train_evaluator.evaluate(model, &dataset.train_x, dataset.train_y.view());
        let test = test_evaluator.evaluate(model, &dataset.test_x, dataset.test_y.view());
        let stats = EpochStats {
            epoch,
            train,
            test,
            train_seconds,
            eval_seconds: started.elapsed().as_secs_f64(),
        };
        if let Some(loss) = [train.loss, test.loss]
            .into_iter()
            .find(|loss| !loss.is_finite())
        {
            return Err(TrainError::Diverged {
                epoch,
                batch: batches,
                loss,
                completed,
            });
        }
        observer.epoch_finished(&stats);
        completed.push(stats);
    }
    Ok(History {
        epochs: completed,
        train_predictions: train_evaluator.predictions,
        test_predictions: test_evaluator.predictions,
    })
}

/// Checks that `model` maps the data set's features to its classes.
pub fn check_fit<F: Float>(
    model: &MultiLayerPerceptron<F>,
    dataset: &Dataset<F>,
) -> Result<(), TrainError> {
    if model.in_features() != dataset.num_features() || model.out_features() != dataset.classes {
        return Err(TrainError::ModelDataMismatch {
            model_inputs: model.in_features(),
            model_outputs: model.out_features(),
            features: dataset.num_features(),
            classes: dataset.classes,
        });
    }
    Ok(())
}

/// Mean cross-entropy, accuracy and the predicted classes of `model` on `x: (rows, in)`
/// with `labels: (rows)`, computed in chunks of [`EVAL_CHUNK_ROWS`] rows.
pub fn evaluate<F: Float>(
    model: &mut MultiLayerPerceptron<F>,
    x: &Features<F>,
    labels: ArrayView1<'_, usize>,
) -> (Evaluation, Array1<usize>) {
    let mut evaluator = Evaluator::new();
    let evaluation = evaluator.evaluate(model, x, labels);
    (evaluation, evaluator.predictions)
}

/// Evaluation with buffers kept between calls: after the first call on a data set,
/// evaluating it again allocates nothing.
#[derive(Debug, Default)]
pub struct Evaluator<F> {
    loss: SoftmaxCrossEntropy<F>,
    predictions: Array1<usize>,
}

impl<F: Float> Evaluator<F> {
    /// An evaluator with empty buffers.
    pub fn new() -> Self {
        Self {
            loss: SoftmaxCrossEntropy::new(),
            predictions: Array1::zeros(0),
        }
    }

    /// Loss and accuracy of `model` on `x: (rows, in)`, `labels: (rows)`; the predicted
    /// classes are kept (see [`Evaluator::predictions`]).
    pub fn evaluate(
        &mut self,
        model: &mut MultiLayerPerceptron<F>,
        x: &Features<F>,
        labels: ArrayView1<'_, usize>,
    ) -> Evaluation {
        let rows = x.nrows();
        if self.predictions.len() != rows {
            self.predictions = Array1::zeros(rows);
        }
        let mut total_loss = 0.0;
        let mut correct = 0usize;
        for start in (0..rows).step_by(EVAL_CHUNK_ROWS) {
            let end = (start + EVAL_CHUNK_ROWS).min(rows);
            let chunk_labels = labels.slice(s![start..end]);
            let rows = Rows::Range(start..end);
            let logits = model.forward_with(rows.len(), |input| x.copy_rows_into(&rows, input));
            let chunk_predictions = self.predictions.slice_mut(s![start..end]);
            for (row, (prediction, &label)) in logits
                .rows()
                .into_iter()
                .zip(chunk_predictions.into_iter().zip(chunk_labels))
            {
                *prediction = argmax(row.iter().copied());
                correct += usize::from(*prediction == label);
            }
            total_loss += self.loss.forward(logits, chunk_labels).to_f64() * (end - start) as f64;
        }
        let count = rows.max(1) as f64;
        Evaluation {
            loss: total_loss / count,
            accuracy: correct as f64 / count,
        }
    }

    /// The predicted class of each row of the last evaluation.
    pub fn predictions(&self) -> ArrayView1<'_, usize> {
        self.predictions.view()
    }
}

/// Chooses the rows of each training batch: slices of the data in order, or a seeded
/// permutation's slices when shuffling. Buffers are reused across batches.
struct BatchSource {
    order: Option<(Vec<usize>, init::InitRng)>,
    labels: Vec<usize>,
}

impl BatchSource {
    fn new(rows: usize, config: &TrainConfig) -> Self {
        let order = config
            .shuffle
            .then(|| ((0..rows).collect(), init::rng(config.seed)));
        Self {
            order,
            labels: Vec::with_capacity(config.batch_size),
        }
    }

    fn start_epoch(&mut self) {
        if let Some((order, rng)) = &mut self.order {
            order.shuffle(rng);
        }
    }

    /// The rows and labels `(len)` of batch positions `range`.
    fn select<'a, F: Float>(
        &'a mut self,
        dataset: &'a Dataset<F>,
        range: std::ops::Range<usize>,
    ) -> (Rows<'a>, ArrayView1<'a, usize>) {
        match &self.order {
            None => (Rows::Range(range.clone()), dataset.train_y.slice(s![range])),
            Some((order, _)) => {
                let indices = &order[range];
                self.labels.clear();
                self.labels
                    .extend(indices.iter().map(|&i| dataset.train_y[i]));
                (Rows::Indices(indices), ArrayView1::from(&self.labels[..]))
            }
        }
    }
}
