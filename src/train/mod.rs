//! `train_network`: the assignment's batch gradient descent with per-epoch evaluation,
//! and [`Trainer`], the same loop with the workflow around it.
//!
//! Batches of `batch_size` rows are taken in data-set order (the last, smaller batch
//! too); each gives one update with the batch-mean gradient. After every epoch the model
//! as it stands is evaluated on the whole training and test sets (and the validation set,
//! when there is one). Shuffling, momentum, Adam/AdamW, learning-rate schedules and early
//! stopping are extensions, all off by default. The loop prints nothing: it reports to
//! an [`Observer`]. A [`Trainer`] can be stopped after any batch and its whole state
//! ([`TrainingState`]) saved and resumed exactly.
//!
//! One concept per file: `config` (hyperparameters), `history` (results and errors),
//! `observer`, `evaluate`, `batches`, `early_stopping`, `state`; the loop itself is here.

mod batches;
mod config;
mod early_stopping;
mod evaluate;
mod history;
mod metrics;
mod objective;
mod observer;
mod state;

use std::time::Instant;

pub use crate::crew::PaceReport;
pub use batches::ShuffleState;
pub use config::{Setting, TrainConfig};
pub use early_stopping::EarlyStopping;
pub use evaluate::{
    evaluate, evaluate_regression, outputs, predict, predict_proba, Evaluator, EVAL_CHUNK_ROWS,
};
pub use history::{EpochStats, Evaluation, History, RegressionMetrics, Stop, TrainError};
pub use metrics::{ClassMetrics, ClassificationReport};
pub use observer::Observer;
pub use state::{ResumeMismatch, TrainingState};

use crate::data::{Dataset, Features};
use crate::float::Float;
use crate::module::Module;
use crate::network::{MultiLayerPerceptron, SlicedStep};
use crate::optim::schedule::Scheduler;
use crate::optim::{Adam, Optimizer, OptimizerKind, Sgd};
use crate::threads::{self, BlasLease, GemmThreading, SerialKernels, ThreadBudget};
use batches::BatchSource;
use ndarray::Array1;
use objective::Objective;

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

/// Trains `model` on `dataset` as `config` says, reporting to `observer`: a
/// [`Trainer`] run to its end.
pub fn train_with<F: Float, O: Observer + Send + ?Sized>(
    model: &mut MultiLayerPerceptron<F>,
    dataset: &Dataset<F>,
    config: &TrainConfig,
    observer: &mut O,
) -> Result<History, TrainError> {
    let mut trainer = Trainer::new(model, dataset, config)?;
    // One pass onto the pool for the whole run (see `Trainer::run_epoch`).
    threads::on_pool(trainer.threads().threads, || -> Result<(), TrainError> {
        while trainer.run_epoch(observer)? {}
        Ok(())
    })?;
    Ok(trainer.finish())
}

/// A training run in progress: the model, the optimizer and its state, the schedule,
/// early stopping, the shuffling, and the epochs done.
///
/// The first layer's input gradient is switched off while the trainer lives (see
/// [`MultiLayerPerceptron::set_compute_grad_input`]) and restored by [`Trainer::finish`].
pub struct Trainer<'a, F: Float> {
    model: &'a mut MultiLayerPerceptron<F>,
    dataset: &'a Dataset<F>,
    config: TrainConfig,
    optimizer: Optimizer<F>,
    scheduler: Scheduler,
    early_stopping: Option<EarlyStopping<F>>,
    batches: BatchSource,
    loss: Objective<F>,
    train_evaluator: Evaluator<F>,
    test_evaluator: Evaluator<F>,
    val_evaluator: Evaluator<F>,
    /// Epochs finished.
    epoch: usize,
    /// Batches done in the next epoch (non-zero after a stop part-way through it).
    position: usize,
    history: Vec<EpochStats>,
    partial: Option<EpochStats>,
    stop: Option<Stop>,
    grad_input: bool,
    /// The threads of this run, and why.
    threads: ThreadBudget,
    /// How this run's GEMMs are parallelised (`auto` resolved).
    threading: GemmThreading,
    /// OpenBLAS held at the thread count `threading` needs while the run lives.
    _blas: BlasLease,
    /// The per-core step, when `threading` is `sliced`.
    sliced: Option<SlicedStep<F>>,
}

impl<'a, F: Float> Trainer<'a, F> {
    /// A run of `model` on `dataset` as `config` says, checked before anything else:
    /// settings, fit of model and data, memory.
    pub fn new(
        model: &'a mut MultiLayerPerceptron<F>,
        dataset: &'a Dataset<F>,
        config: &TrainConfig,
    ) -> Result<Self, TrainError> {
        config.validate()?;
        check_fit(model, dataset)?;
        let rows = dataset.train_y.len();
        if rows == 0 {
            return Err(TrainError::EmptyTrainingSet);
        }
        let smallest_batch = match rows % config.batch_size {
            0 => config.batch_size.min(rows),
            last => last,
        };
        if let Some(layer) = model.layers().iter().position(|layer| {
            matches!(layer, crate::layers::Layer::BatchNorm(norm) if norm.spatial() * smallest_batch == 1)
        }) {
            return Err(TrainError::BatchOfOne {
                layer,
                rows: smallest_batch,
            });
        }
        if F::from_f64(config.lr) == F::zero() {
            return Err(TrainError::InvalidSetting {
                setting: Setting::Lr,
                value: config.lr,
                expected: "a number that does not round to 0 in the model's float type",
            });
        }
        check_training_memory(model, dataset, config)?;
        let lr = F::from_f64(config.lr);
        let weight_decay = F::from_f64(config.weight_decay);
        let optimizer = match config.optimizer {
            OptimizerKind::Sgd => Optimizer::Sgd(
                Sgd::new(lr)
                    .with_momentum(F::from_f64(config.momentum))
                    .with_nesterov(config.nesterov)
                    .with_weight_decay(weight_decay),
            ),
            kind => {
                let adam = if kind == OptimizerKind::AdamW {
                    Adam::adamw(lr)
                } else {
                    Adam::new(lr)
                };
                Optimizer::Adam(
                    adam.with_betas(F::from_f64(config.beta1), F::from_f64(config.beta2))
                        .with_eps(F::from_f64(config.eps))
                        .with_weight_decay(weight_decay),
                )
            }
        };
        let budget = threads::budget();
        let cores = budget.threads;
        let threading = threads::auto_threading(
            threads::gemm_threading(),
            SlicedStep::applies(model, cores),
            cores,
        );
        let sliced = match threading {
            GemmThreading::Sliced => SlicedStep::new(model, cores),
            _ => None,
        };
        let blas = BlasLease::new(threading.blas_threads(cores));
        let grad_input = model.computes_grad_input();
        model.set_compute_grad_input(false);
        Ok(Self {
            model,
            dataset,
            scheduler: Scheduler::new(config.schedule.clone(), config.lr, config.epochs),
            early_stopping: config
                .patience
                .map(|patience| EarlyStopping::new(patience, config.min_delta)),
            batches: BatchSource::new(rows, config.batch_size, config.shuffle, config.seed),
            config: config.clone(),
            optimizer,
            loss: Objective::for_dataset(dataset),
            train_evaluator: Evaluator::new(),
            test_evaluator: Evaluator::new(),
            val_evaluator: Evaluator::new(),
            epoch: 0,
            position: 0,
            history: Vec::new(),
            partial: None,
            stop: None,
            grad_input,
            threads: budget,
            threading,
            _blas: blas,
            sliced,
        })
    }

    /// A run that continues from `state` (saved by [`Trainer::state`] from a run with
    /// the same model, data and settings; `config` may add epochs or change the early
    /// stopping's patience). The model must hold the saved weights already. A run that
    /// had ended (all its epochs done, or stopped early) is ended: [`Trainer::stop`] says
    /// why, and [`Trainer::run_epoch`] trains nothing.
    pub fn resume(
        model: &'a mut MultiLayerPerceptron<F>,
        dataset: &'a Dataset<F>,
        config: &TrainConfig,
        state: TrainingState<F>,
    ) -> Result<Self, TrainError> {
        let mut trainer = Self::new(model, dataset, config)?;
        state.apply(&mut trainer)?;
        // A run that had ended stays ended: it trains no further epoch (unless `config`
        // adds epochs, or patience for a run early stopping ended).
        let stopped_early = trainer
            .early_stopping
            .as_ref()
            .is_some_and(|e| e.bad_epochs >= e.patience && trainer.epoch > 0);
        if trainer.position == 0 && stopped_early {
            trainer.stop = Some(Stop::EarlyStopped {
                epoch: trainer.epoch,
            });
        } else if trainer.position == 0 && trainer.epoch >= config.epochs {
            trainer.stop = Some(Stop::Completed);
        }
        Ok(trainer)
    }

    /// Epochs finished so far.
    pub fn epochs_done(&self) -> usize {
        self.epoch
    }

    /// The learning rate for the coming epoch.
    pub fn lr(&self) -> f64 {
        self.scheduler.lr()
    }

    /// The model being trained.
    pub fn model(&self) -> &MultiLayerPerceptron<F> {
        self.model
    }

    /// How this run's GEMMs are parallelised: the thread setting's choice, with `auto`
    /// resolved for this network, batch size and optimizer (see
    /// [`threads::auto_threading`]).
    pub fn threading(&self) -> GemmThreading {
        self.threading
    }

    /// How the per-core step has paced its crew so far (`None` without a per-core step):
    /// batches spread over the cores or run alone while other work held them.
    pub fn pace(&self) -> Option<PaceReport> {
        self.sliced.as_ref().map(SlicedStep::pace_report)
    }

    /// The threads this run uses, and what decided their number (see
    /// [`threads::budget`]).
    pub fn threads(&self) -> &ThreadBudget {
        &self.threads
    }

    /// Why the run ended, once it has.
    pub fn stop(&self) -> Option<Stop> {
        self.stop
    }

    /// Trains one epoch (or the rest of an interrupted one), evaluates it and reports it;
    /// `Ok(false)` once the run has ended (all epochs done, early stopping, or the
    /// observer asked to stop).
    ///
    /// The epoch runs on a worker of nabla's pool of [`Trainer::threads`] threads
    /// (called from outside a pool, the caller waits; see [`threads::on_pool`]), so that
    /// when work is shared across the cores one part runs on the training thread itself.
    /// Each move onto the pool costs a slot in rayon's queue, which allocates now and
    /// then: a loop over epochs is better run inside one [`threads::on_pool`], as
    /// [`train_with`] does.
    pub fn run_epoch<O: Observer + Send + ?Sized>(
        &mut self,
        observer: &mut O,
    ) -> Result<bool, TrainError> {
        if self.stop.is_some() {
            return Ok(false);
        }
        threads::on_pool(self.threads.threads, || self.epoch_on_this_thread(observer))
    }

    fn epoch_on_this_thread<O: Observer + ?Sized>(
        &mut self,
        observer: &mut O,
    ) -> Result<bool, TrainError> {
        let epoch = self.epoch + 1;
        let rows = self.dataset.train_y.len();
        let batch_size = self.config.batch_size;
        let batches = rows.div_ceil(batch_size);
        let lr = self.scheduler.lr();
        self.optimizer.set_lr(F::from_f64(lr));
        // An update without state is fused into the weight-gradient GEMM.
        let fused = self.optimizer.plain_update();
        observer.epoch_started(epoch, batches);
        if self.position == 0 {
            self.batches.start_epoch();
        }
        let started = Instant::now();
        let dataset = self.dataset;
        // The crew holds the cores during the batches: kernels on this thread run serially.
        let serial = self.sliced.is_some().then(SerialKernels::new);
        for index in self.position..batches {
            let start = index * batch_size;
            let end = (start + batch_size).min(rows);
            let (rows, labels) = self.batches.select(dataset, start..end);
            let logits = match &mut self.sliced {
                Some(step) => step.forward_with(self.model, rows.len(), |part, input| {
                    dataset.train_x.copy_rows_into(&rows.part(part), input)
                }),
                None => self.model.forward_with(rows.len(), |input| {
                    dataset.train_x.copy_rows_into(&rows, input)
                }),
            };
            let value = self.loss.forward(logits, labels, &rows, dataset).to_f64();
            if !value.is_finite() {
                return Err(TrainError::Diverged {
                    epoch,
                    batch: index + 1,
                    loss: value,
                });
            }
            match (fused, &mut self.sliced) {
                (update, Some(step)) => {
                    step.backward(self.model, self.loss.backward(), update);
                    if update.is_none() {
                        let (optimizer, model) = (&mut self.optimizer, &mut *self.model);
                        step.sharing(|| optimizer.step(model));
                    }
                }
                (Some(update), None) => self.model.backward_and_step(self.loss.backward(), update),
                (None, None) => {
                    self.model.backward(self.loss.backward());
                    self.optimizer.step(self.model);
                }
            }
            observer.batch_finished(epoch, index + 1, value);
            self.position = index + 1;
            if self.position < batches && observer.should_stop() {
                let stats = self.evaluate(epoch, lr, started.elapsed().as_secs_f64(), batches)?;
                observer.epoch_finished(&stats);
                self.partial = Some(stats);
                self.stop = Some(Stop::Interrupted {
                    epoch,
                    batch: self.position,
                });
                return Ok(false);
            }
        }
        drop(serial);
        let mut stats = self.evaluate(epoch, lr, started.elapsed().as_secs_f64(), batches)?;
        self.epoch = epoch;
        self.position = 0;
        let monitored = stats.monitored_loss();
        self.scheduler.step(monitored);
        let stop_early = match &mut self.early_stopping {
            Some(early_stopping) => {
                let stop = early_stopping.observe(epoch, monitored, self.model);
                stats.epochs_without_improvement = Some(early_stopping.bad_epochs);
                stop
            }
            None => false,
        };
        observer.epoch_finished(&stats);
        self.history.push(stats);
        if stop_early {
            self.stop = Some(Stop::EarlyStopped { epoch });
            return Ok(false);
        }
        if epoch >= self.config.epochs {
            self.stop = Some(Stop::Completed);
            return Ok(false);
        }
        if observer.should_stop() {
            self.stop = Some(Stop::Interrupted {
                epoch: epoch + 1,
                batch: 0,
            });
            return Ok(false);
        }
        Ok(true)
    }

    /// Evaluates the model as it stands on every set, after `train_seconds` of training
    /// in epoch `epoch` at rate `lr`; a non-finite loss is divergence.
    fn evaluate(
        &mut self,
        epoch: usize,
        lr: f64,
        train_seconds: f64,
        batches: usize,
    ) -> Result<EpochStats, TrainError> {
        let started = Instant::now();
        let dataset = self.dataset;
        let (train, test, val) = match &dataset.values {
            Some(values) => {
                let evaluate = |x: &Features<F>, targets: &Array1<f64>| {
                    evaluate_regression(self.model, x, targets.view(), values.scale)
                };
                let val = dataset
                    .validation
                    .as_ref()
                    .zip(values.val.as_ref())
                    .map(|(validation, targets)| evaluate(&validation.x, targets));
                (
                    evaluate(&dataset.train_x, &values.train),
                    evaluate(&dataset.test_x, &values.test),
                    val,
                )
            }
            None => {
                let train = self.train_evaluator.evaluate(
                    self.model,
                    &dataset.train_x,
                    dataset.train_y.view(),
                );
                let test = self.test_evaluator.evaluate(
                    self.model,
                    &dataset.test_x,
                    dataset.test_y.view(),
                );
                let val = dataset.validation.as_ref().map(|validation| {
                    self.val_evaluator
                        .evaluate(self.model, &validation.x, validation.y.view())
                });
                (train, test, val)
            }
        };
        let losses = [train.loss, test.loss, val.map_or(0.0, |v| v.loss)];
        if let Some(loss) = losses.into_iter().find(|loss| !loss.is_finite()) {
            return Err(TrainError::Diverged {
                epoch,
                batch: self.position,
                loss,
            });
        }
        Ok(EpochStats {
            epoch,
            train,
            test,
            val,
            lr,
            train_seconds,
            eval_seconds: started.elapsed().as_secs_f64(),
            batches: self.position,
            partial: self.position < batches,
            epochs_without_improvement: None,
        })
    }

    /// Everything needed to continue this run exactly later (with the model's weights,
    /// which are saved beside it).
    pub fn state(&self) -> TrainingState<F> {
        TrainingState {
            epoch: self.epoch,
            batch: self.position,
            optimizer_kind: self.config.optimizer,
            optimizer: self.optimizer.state(),
            scheduler: self.scheduler.clone(),
            early_stopping: self.early_stopping.clone(),
            shuffle: self.batches.state(),
            history: self.history.clone(),
        }
    }

    /// Ends the run: puts the best epoch's weights back when early stopping asks for it,
    /// restores the input-gradient setting, and returns the history.
    pub fn finish(self) -> History {
        let restored_best = match (&self.early_stopping, self.config.restore_best) {
            (Some(early_stopping), true) => early_stopping.restore(self.model),
            _ => false,
        };
        self.model.set_compute_grad_input(self.grad_input);
        let best_epoch = self
            .history
            .iter()
            .min_by(|a, b| a.monitored_loss().total_cmp(&b.monitored_loss()))
            .map(|stats| stats.epoch);
        let mut epochs = self.history;
        epochs.extend(self.partial);
        History {
            epochs,
            stop: self.stop.unwrap_or(Stop::Interrupted {
                epoch: self.epoch + 1,
                batch: self.position,
            }),
            best_epoch,
            restored_best,
            train_predictions: self.train_evaluator.into_predictions(),
            test_predictions: self.test_evaluator.into_predictions(),
        }
    }
}

/// Checks, before any buffer grows, that the layers' buffers for the largest batch or
/// evaluation chunk, and the optimizer's state, fit in memory.
fn check_training_memory<F: Float>(
    model: &MultiLayerPerceptron<F>,
    dataset: &Dataset<F>,
    config: &TrainConfig,
) -> Result<(), TrainError> {
    let train_rows = dataset.train_y.len();
    let largest_set = dataset
        .validation
        .as_ref()
        .map_or(0, |validation| validation.y.len())
        .max(train_rows)
        .max(dataset.test_y.len());
    let rows = config
        .batch_size
        .min(train_rows)
        .max(largest_set.min(EVAL_CHUNK_ROWS));
    let copies = match config.optimizer {
        OptimizerKind::Sgd if config.momentum == 0.0 => 0,
        OptimizerKind::Sgd => 1,
        OptimizerKind::Adam | OptimizerKind::AdamW => 2,
    } + usize::from(config.patience.is_some());
    let state_bytes = (model.parameter_count() as u64)
        .checked_mul(copies as u64)
        .and_then(|count| count.checked_mul(std::mem::size_of::<F>() as u64));
    let needed = crate::limits::sum([model.buffer_bytes(rows), state_bytes]);
    crate::limits::check_memory(
        format!("training buffers for {rows}-row batches and the optimizer's state"),
        needed,
    )?;
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
