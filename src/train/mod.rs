//! `train_network`: the assignment's batch gradient descent with per-epoch evaluation.
//!
//! Batches of `batch_size` rows are taken in data-set order (the last, smaller batch
//! too); each gives one update with the batch-mean gradient. After every epoch the model
//! as it stands is evaluated on the whole training and test sets. Shuffling, momentum
//! and weight decay are extensions, all off by default. The loop prints nothing: it
//! reports to an [`Observer`].
//!
//! One concept per file: `config` (hyperparameters), `history` (results and errors),
//! `observer`, `evaluate`, `batches`; the loop itself is here.

mod batches;
mod config;
mod evaluate;
mod history;
mod observer;

use std::time::Instant;

pub use config::{Setting, TrainConfig};
pub use evaluate::{evaluate, predict, Evaluator, EVAL_CHUNK_ROWS};
pub use history::{EpochStats, Evaluation, History, Stop, TrainError};
pub use observer::Observer;

use crate::data::Dataset;
use crate::float::Float;
use crate::loss::SoftmaxCrossEntropy;
use crate::module::Module;
use crate::network::MultiLayerPerceptron;
use crate::optim::Sgd;
use batches::BatchSource;

/// The assignment's `train_network`: `epochs` epochs of in-order batch gradient descent.
pub fn train_network<F: Float>(
    model: &mut MultiLayerPerceptron<F>,
    dataset: &Dataset<F>,
    epochs: usize,
    lr: f64,
    batch_size: usize,
    seed: u64,
) -> Result<History, TrainError> {
    let config = TrainConfig::new(epochs, lr, batch_size, seed);
    train_with(model, dataset, &config, &mut ())
}

/// Trains `model` on `dataset` as `config` says, reporting to `observer`.
///
/// The loop runs on a thread of rayon's pool (the caller waits), so that when a GEMM is
/// split across the cores one part runs on the training thread itself. The first layer's
/// input gradient is switched off while training (see
/// [`MultiLayerPerceptron::set_compute_grad_input`]) and restored afterwards.
pub fn train_with<F: Float, O: Observer + Send + ?Sized>(
    model: &mut MultiLayerPerceptron<F>,
    dataset: &Dataset<F>,
    config: &TrainConfig,
    observer: &mut O,
) -> Result<History, TrainError> {
    rayon::scope(|_| {
        let grad_input = model.computes_grad_input();
        model.set_compute_grad_input(false);
        let result = train_on_this_thread(model, dataset, config, observer);
        model.set_compute_grad_input(grad_input);
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
    check_training_memory(model, dataset, config)?;
    let lr = F::from_f64(config.lr);
    if lr == F::zero() {
        return Err(TrainError::InvalidSetting {
            setting: Setting::Lr,
            value: config.lr,
            expected: "a number that does not round to 0 in the model's float type",
        });
    }
    let mut optimizer = Sgd::new(lr)
        .with_momentum(F::from_f64(config.momentum))
        .with_nesterov(config.nesterov)
        .with_weight_decay(F::from_f64(config.weight_decay));
    // An update without state is fused into the weight-gradient GEMM.
    let fused_update = optimizer.plain_update();
    let mut loss = SoftmaxCrossEntropy::new();
    let mut batch = BatchSource::new(rows, config.batch_size, config.shuffle, config.seed);
    let batches = rows.div_ceil(config.batch_size);
    let mut completed = Vec::with_capacity(config.epochs);
    let (mut train_evaluator, mut test_evaluator) = (Evaluator::new(), Evaluator::new());

    let mut stop = Stop::Completed;
    for epoch in 1..=config.epochs {
        observer.epoch_started(epoch, batches);
        batch.start_epoch();
        let started = Instant::now();
        let mut trained = 0;
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
                });
            }
            match fused_update {
                Some(update) => model.backward_and_step(loss.backward(), update),
                None => {
                    model.backward(loss.backward());
                    optimizer.step(model);
                }
            }
            observer.batch_finished(epoch, index + 1, value);
            trained = index + 1;
            if trained < batches && observer.should_stop() {
                stop = Stop::Interrupted {
                    epoch,
                    batch: trained,
                };
                break;
            }
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
            batches: trained,
            partial: trained < batches,
        };
        if let Some(loss) = [train.loss, test.loss]
            .into_iter()
            .find(|loss| !loss.is_finite())
        {
            return Err(TrainError::Diverged {
                epoch,
                batch: batches,
                loss,
            });
        }
        observer.epoch_finished(&stats);
        completed.push(stats);
        if stop != Stop::Completed {
            break;
        }
        if epoch < config.epochs && observer.should_stop() {
            stop = Stop::Interrupted {
                epoch: epoch + 1,
                batch: 0,
            };
            break;
        }
    }
    Ok(History {
        epochs: completed,
        stop,
        train_predictions: train_evaluator.into_predictions(),
        test_predictions: test_evaluator.into_predictions(),
    })
}

/// Checks, before any buffer grows, that the layers' buffers for the largest batch or
/// evaluation chunk, and the optimizer's state, fit in memory.
fn check_training_memory<F: Float>(
    model: &MultiLayerPerceptron<F>,
    dataset: &Dataset<F>,
    config: &TrainConfig,
) -> Result<(), TrainError> {
    let train_rows = dataset.train_y.len();
    let eval_rows = train_rows.max(dataset.test_y.len()).min(EVAL_CHUNK_ROWS);
    let rows = config.batch_size.min(train_rows).max(eval_rows);
    let state = if config.momentum > 0.0 {
        model.parameter_count()
    } else {
        0
    };
    let state_bytes = (state as u64).checked_mul(std::mem::size_of::<F>() as u64);
    let needed = crate::limits::sum([model.buffer_bytes(rows), state_bytes]);
    crate::limits::check_memory(format!("training buffers for {rows}-row batches"), needed)?;
    Ok(())
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
