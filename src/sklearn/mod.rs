//! scikit-learn's `MLPClassifier` and `MLPRegressor` training algorithm (their stochastic
//! solvers, and what their `'lbfgs'` solver evaluates: [`SklearnMlp::loss_and_gradient`]),
//! on nabla's layers and GEMMs: the engine behind the Python package's
//! `nabla.MLPClassifier` and `nabla.MLPRegressor`, which only validate and convert
//! around it (and run SciPy's L-BFGS-B on the engine's evaluations).
//!
//! What it reproduces, from scikit-learn's `_multilayer_perceptron.py` and
//! `_stochastic_optimizers.py`: the loss (mean cross-entropy plus `alpha / (2 batch) *
//! sum W^2`, biases excluded), the gradients `(dW + alpha W) / batch` and `db / batch`,
//! the SGD (momentum, Nesterov; `constant`, `invscaling`, `adaptive` rates) and Adam
//! updates ([`solver`]), the epoch loop with in-order or shuffled batches, `loss_curve_`,
//! `t_`, and the `tol` / `n_iter_no_change` rule on the training loss or on the
//! validation score (early stopping, which keeps the best weights). Initial weights,
//! the validation split and the shuffling order come from the caller (the Python layer
//! draws them from scikit-learn's `random_state`, so that they are scikit-learn's own).
//!
//! Shapes: `x: (rows, features)`, `targets: (rows, outputs)` (a classifier's
//! label-indicator matrix, a regressor's values), coefficients `(in, out)` per layer as scikit-learn stores them (nabla's
//! linear layers keep `(out, in)`; the conversion is a transpose at the boundary).

mod inputs;
mod lbfgs;
mod output;
mod predict;
mod solver;
mod sparse_step;

use std::ops::Range;
use std::str::FromStr;

use ndarray::{s, Array1, Array2, ArrayView1, ArrayView2, ArrayViewMut2};
use thiserror::Error;

use crate::buffer::Buffer;
use crate::float::Float;
use crate::layers::{ActivationKind, Layer, Linear};
use crate::limits::{check_memory, product, sum, TooLarge};
use crate::module::Module;
use crate::names::UnknownName;
use crate::network::{ModelError, MultiLayerPerceptron, SlicedStep};
use crate::optim::PlainUpdate;
use crate::threads::{self, BlasLease, GemmThreading, SerialKernels};
use sparse_step::SparseFirstLayer;

pub use inputs::{CsrView, Inputs};
pub use lbfgs::{pack, CHUNK_ROWS};
pub use output::Output;
pub use predict::{predict_proba, LayerView};
pub use solver::Solver;

/// `'sgd'` or `'adam'`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SolverKind {
    /// Stochastic gradient descent.
    Sgd,
    /// Adam.
    Adam,
}

impl SolverKind {
    /// Every solver nabla runs.
    pub const ALL: [SolverKind; 2] = [SolverKind::Sgd, SolverKind::Adam];

    /// scikit-learn's name (`solver`).
    pub fn name(self) -> &'static str {
        match self {
            SolverKind::Sgd => "sgd",
            SolverKind::Adam => "adam",
        }
    }
}

impl FromStr for SolverKind {
    type Err = UnknownName;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        UnknownName::find("stochastic solver", name, Self::ALL, Self::name)
    }
}

/// SGD's learning-rate schedule (`learning_rate`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LearningRate {
    /// `learning_rate_init` throughout.
    Constant,
    /// `learning_rate_init / (t + 1)^power_t` after each epoch, `t` the samples seen.
    InvScaling,
    /// Divided by 5 whenever `n_iter_no_change` epochs bring no progress.
    Adaptive,
}

impl LearningRate {
    /// Every schedule.
    pub const ALL: [LearningRate; 3] = [
        LearningRate::Constant,
        LearningRate::InvScaling,
        LearningRate::Adaptive,
    ];

    /// scikit-learn's name (`learning_rate`).
    pub fn name(self) -> &'static str {
        match self {
            LearningRate::Constant => "constant",
            LearningRate::InvScaling => "invscaling",
            LearningRate::Adaptive => "adaptive",
        }
    }
}

impl FromStr for LearningRate {
    type Err = UnknownName;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        UnknownName::find("learning_rate", name, Self::ALL, Self::name)
    }
}

/// The hyperparameters of one `fit` or `partial_fit` call, with scikit-learn's names
/// and meanings. The caller validates them (scikit-learn's parameter constraints).
#[derive(Clone, Debug, PartialEq)]
pub struct Settings {
    /// `solver`.
    pub solver: SolverKind,
    /// L2 strength `alpha`.
    pub alpha: f64,
    /// Rows per batch, already resolved (`'auto'` is `min(200, rows)`); clipped to the rows.
    pub batch_size: usize,
    /// SGD's schedule.
    pub learning_rate: LearningRate,
    /// `learning_rate_init`.
    pub learning_rate_init: f64,
    /// `power_t`.
    pub power_t: f64,
    /// `max_iter`: epochs at most.
    pub max_iter: usize,
    /// Whether to ask the caller for a new sample order before each epoch.
    pub shuffle: bool,
    /// `tol`.
    pub tol: f64,
    /// `momentum`.
    pub momentum: f64,
    /// `nesterovs_momentum`.
    pub nesterovs_momentum: bool,
    /// Adam's `beta_1`.
    pub beta_1: f64,
    /// Adam's `beta_2`.
    pub beta_2: f64,
    /// Adam's `epsilon`.
    pub epsilon: f64,
    /// `n_iter_no_change`.
    pub n_iter_no_change: usize,
}

/// The fitted counters and curves, named after scikit-learn's attributes.
#[derive(Clone, Debug, PartialEq)]
pub struct Progress {
    /// `n_iter_`: epochs of the last call.
    pub n_iter: usize,
    /// `t_`: samples seen in all.
    pub t: u64,
    /// `loss_`: the last epoch's mean loss.
    pub loss: Option<f64>,
    /// `loss_curve_`.
    pub loss_curve: Vec<f64>,
    /// `best_loss_` (`None` with early stopping, as scikit-learn).
    pub best_loss: Option<f64>,
    /// `validation_scores_` (`None` without early stopping).
    pub validation_scores: Option<Vec<f64>>,
    /// `best_validation_score_` (`None` without early stopping).
    pub best_validation_score: Option<f64>,
    /// `_no_improvement_count`.
    pub no_improvement_count: usize,
}

impl Progress {
    /// The state before the first epoch (`_initialize`), with or without early stopping.
    pub fn new(early_stopping: bool) -> Self {
        Self {
            n_iter: 0,
            t: 0,
            loss: None,
            loss_curve: Vec::new(),
            best_loss: (!early_stopping).then_some(f64::INFINITY),
            validation_scores: early_stopping.then(Vec::new),
            best_validation_score: early_stopping.then_some(f64::NEG_INFINITY),
            no_improvement_count: 0,
        }
    }
}

/// What the epoch loop asks of its caller: the sample order of the next epoch (with
/// `shuffle`) and what to do with each epoch's messages (scikit-learn's `verbose`
/// lines). Both are called between epochs only.
pub trait FitHooks {
    /// Replaces `order` (the last epoch's order, `0..rows` at first) with the next one.
    fn shuffle(&mut self, order: &mut [usize]);
    /// A line scikit-learn prints in verbose mode. Returns `false` to stop training
    /// (an interrupt).
    fn message(&mut self, line: &str) -> bool;
}

/// How a `fit` call ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FitEnd {
    /// `max_iter` epochs without meeting the stopping rule (scikit-learn warns).
    MaxIterReached,
    /// The `tol` / `n_iter_no_change` rule stopped it.
    Converged,
    /// One epoch of `partial_fit`.
    Incremental,
    /// The hooks asked to stop.
    Interrupted,
}

/// Rows to train on or to score: `x: (rows, features)` (dense or sparse), `targets:
/// (rows, outputs)` and optional per-row `weights: (rows)` (scikit-learn's
/// `sample_weight`).
#[derive(Clone, Copy, Debug)]
pub struct Samples<'a, F> {
    /// The inputs.
    pub x: Inputs<'a, F>,
    /// The targets.
    pub targets: ArrayView2<'a, F>,
    /// The rows' weights (`None`: all 1).
    pub weights: Option<ArrayView1<'a, F>>,
}

impl<'a, F> Samples<'a, F> {
    /// Unweighted rows.
    pub fn new(x: impl Into<Inputs<'a, F>>, targets: ArrayView2<'a, F>) -> Self {
        Self {
            x: x.into(),
            targets,
            weights: None,
        }
    }
}

/// Why a call failed.
#[derive(Debug, Error)]
pub enum SklearnError {
    /// Coefficient and intercept shapes that do not chain into a network.
    #[error(transparent)]
    Model(#[from] ModelError),
    /// A sparse matrix whose arrays do not make a CSR matrix.
    #[error("malformed sparse matrix: {0}")]
    Sparse(String),
    /// A layer's coefficients and intercepts disagree, or there are none.
    #[error("layer {layer}: coefs_ has shape {coefs:?} but intercepts_ has {intercepts} entries")]
    Shapes {
        /// The layer.
        layer: usize,
        /// `coefs_[layer].shape`.
        coefs: (usize, usize),
        /// `intercepts_[layer].len()`.
        intercepts: usize,
    },
    /// Data whose width or row count does not fit the model.
    #[error("{what} has shape {found:?}, expected {expected}")]
    DataShape {
        /// Which array.
        what: &'static str,
        /// Its shape.
        found: (usize, usize),
        /// What was expected, in words.
        expected: String,
    },
    /// A solver state whose buffers do not match the network's parameters.
    #[error("the solver state does not fit the network's {parameters} parameters")]
    SolverState {
        /// Parameters of the network.
        parameters: usize,
    },
    /// Rows whose weights sum to zero (a batch's, or all rows' for L-BFGS): the mean
    /// loss is undefined (NumPy's `average` raises, and so does scikit-learn).
    #[error("Weights sum to zero, can't be normalized")]
    ZeroWeights,
    /// scikit-learn's check after fitting.
    #[error("Solver produced non-finite parameter weights. The input data may contain large values and need to be preprocessed.")]
    NonFinite,
    /// The network, its buffers or the outputs would not fit in memory.
    #[error(transparent)]
    TooLarge(#[from] TooLarge),
}

impl SklearnError {
    /// The memory refusal behind this error, if it is one (Python raises `MemoryError`).
    pub fn too_large(&self) -> Option<&TooLarge> {
        match self {
            SklearnError::TooLarge(too_large)
            | SklearnError::Model(ModelError::TooLarge(too_large)) => Some(too_large),
            _ => None,
        }
    }
}

/// A network trained as scikit-learn's MLPs train it, with its solver state and progress
/// (what a fitted estimator holds).
#[derive(Clone, Debug)]
pub struct SklearnMlp<F: Float> {
    model: MultiLayerPerceptron<F>,
    activation: ActivationKind,
    output: Output,
    solver: Option<Solver<F>>,
    /// The fitted counters and curves.
    pub progress: Progress,
    /// `(coefs, intercepts)` of the best validation score (`_best_coefs`).
    best: Vec<(Array2<F>, Array1<F>)>,
    probabilities: Buffer<F>,
}

impl<F: Float> SklearnMlp<F> {
    /// A network with the given `(coefs (in, out), intercepts (out))` per layer, hidden
    /// `activation` and `output`, before its first epoch.
    pub fn new(
        parameters: &[(ArrayView2<'_, F>, ArrayView1<'_, F>)],
        activation: ActivationKind,
        output: Output,
        early_stopping: bool,
    ) -> Result<Self, SklearnError> {
        let model = network(parameters, activation)?;
        let mut mlp = Self {
            model,
            activation,
            output,
            solver: None,
            progress: Progress::new(early_stopping),
            best: Vec::new(),
            probabilities: Buffer::new(),
        };
        mlp.best = mlp.parameters();
        Ok(mlp)
    }

    /// Replaces the weights (scikit-learn continues from `coefs_` / `intercepts_` as
    /// they are, values a user assigned included); the shapes must stay.
    pub fn set_parameters(
        &mut self,
        parameters: &[(ArrayView2<'_, F>, ArrayView1<'_, F>)],
    ) -> Result<(), SklearnError> {
        let model = network(parameters, self.activation)?;
        let same = model.linear_layers().count() == self.model.linear_layers().count()
            && model
                .linear_layers()
                .zip(self.model.linear_layers())
                .all(|(a, b)| a.weights().dim() == b.weights().dim());
        if !same {
            return Err(SklearnError::DataShape {
                what: "coefs_",
                found: parameters.first().map_or((0, 0), |(w, _)| w.dim()),
                expected: "the shapes of the fitted layers".to_string(),
            });
        }
        for (target, source) in self.model.linear_layers_mut().zip(model.linear_layers()) {
            target.weights_mut().assign(&source.weights());
            target.bias_mut().assign(&source.bias());
        }
        Ok(())
    }

    /// `(coefs_ (in, out), intercepts_ (out))` per layer.
    pub fn parameters(&self) -> Vec<(Array2<F>, Array1<F>)> {
        self.model
            .linear_layers()
            .map(|linear| (linear.weights().t().to_owned(), linear.bias().to_owned()))
            .collect()
    }

    /// The output activation.
    pub fn output(&self) -> Output {
        self.output
    }

    /// The solver's state (`None` before the first epoch).
    pub fn solver(&self) -> Option<&Solver<F>> {
        self.solver.as_ref()
    }

    /// Restores a solver state (from a pickled estimator), checked against this
    /// network: one buffer per parameter, of the parameter's size.
    pub fn set_solver(&mut self, solver: Option<Solver<F>>) -> Result<(), SklearnError> {
        if let Some(solver) = &solver {
            let mut sizes = Vec::new();
            self.model
                .visit_parameters(&mut |parameter| sizes.push(parameter.value.len()));
            if !solver.fits(&sizes) {
                return Err(SklearnError::SolverState {
                    parameters: sizes.len(),
                });
            }
        }
        self.solver = solver;
        Ok(())
    }

    /// The best weights seen by early stopping, `(coefs, intercepts)` per layer.
    pub fn best_parameters(&self) -> &[(Array2<F>, Array1<F>)] {
        &self.best
    }

    /// Restores the best weights (from a pickled estimator).
    pub fn set_best_parameters(
        &mut self,
        best: Vec<(Array2<F>, Array1<F>)>,
    ) -> Result<(), SklearnError> {
        let fits = best.len() == self.model.linear_layers().count()
            && best
                .iter()
                .zip(self.model.linear_layers())
                .all(|((w, b), linear)| {
                    w.t().dim() == linear.weights().dim() && b.len() == linear.bias().len()
                });
        if !fits {
            return Err(SklearnError::DataShape {
                what: "the best weights",
                found: best.first().map_or((0, 0), |(w, _)| w.dim()),
                expected: "the shapes of the network's layers".to_string(),
            });
        }
        self.best = best;
        Ok(())
    }

    /// The outputs `(rows, outputs)` of `x: (rows, features)` (a classifier's
    /// probabilities, a regressor's predictions): [`predict::predict_proba`] on the
    /// network's weights.
    pub fn predict_proba<'x>(
        &self,
        x: impl Into<Inputs<'x, F>>,
    ) -> Result<Array2<F>, SklearnError> {
        let x = x.into();
        self.check_features("X", x.dim())?;
        let layers: Vec<LayerView<'_, F>> = self
            .model
            .linear_layers()
            .map(|linear| (linear.weights().reversed_axes(), linear.bias()))
            .collect();
        predict::predict_proba(&layers, self.activation, self.output, x)
    }

    /// scikit-learn's `score` on `samples` (see [`Output::score`]: accuracy, or R^2 for
    /// a regressor, weighted by the rows' weights). A regressor's score is NaN if a
    /// prediction is not finite; a classifier's counts the classes that NumPy picks from
    /// such outputs, as scikit-learn's does.
    pub fn score(&self, samples: Samples<'_, F>) -> Result<f64, SklearnError> {
        self.check_data(samples)?;
        let outputs = self.predict_proba(samples.x)?;
        let regression = matches!(self.output, Output::Identity | Output::Exp);
        if regression && outputs.iter().any(|p| !p.is_finite()) {
            return Ok(f64::NAN);
        }
        Ok(self
            .output
            .score(outputs.view(), samples.targets, samples.weights))
    }

    /// scikit-learn's `_fit_stochastic`: epochs over `train` until `max_iter`, the
    /// stopping rule, or one epoch when `incremental` (`partial_fit`). With `validation`
    /// (early stopping), the rule watches its score and the best weights are restored at
    /// the end. A new solver is made unless `incremental` finds one. With weights, each
    /// row's loss and gradient are weighted and a batch's sums are divided by its weight
    /// total instead of its row count, as scikit-learn's `sample_weight`.
    pub fn fit(
        &mut self,
        train: Samples<'_, F>,
        validation: Option<Samples<'_, F>>,
        settings: &Settings,
        incremental: bool,
        hooks: &mut (dyn FitHooks + Send),
    ) -> Result<FitEnd, SklearnError> {
        self.check_data(train)?;
        if let Some(validation) = validation {
            self.check_data(validation)?;
        }
        self.check_fit_memory(train, validation, settings)?;
        if !incremental || self.solver.is_none() {
            let mut sizes = Vec::new();
            self.model
                .visit_parameters(&mut |parameter| sizes.push(parameter.value.len()));
            self.solver = Some(Solver::new(settings, &sizes));
        }
        let budget = threads::budget();
        // On a worker of the pool, as the trainer runs: the kernels' joins stay cheap.
        let end = threads::on_pool(budget.threads, || {
            self.epochs(
                train,
                validation,
                settings,
                incremental,
                budget.threads,
                hooks,
            )
        })?;
        if validation.is_some() {
            let best = std::mem::take(&mut self.best);
            for (linear, (coefs, intercepts)) in self.model.linear_layers_mut().zip(&best) {
                linear.weights_mut().assign(&coefs.t());
                linear.bias_mut().assign(intercepts);
            }
            self.best = best;
        }
        let finite = self.model.linear_layers().all(|linear| {
            linear
                .weights()
                .iter()
                .chain(linear.bias())
                .all(|v| v.is_finite())
        });
        if !finite {
            return Err(SklearnError::NonFinite);
        }
        Ok(end)
    }

    /// The epoch loop of [`SklearnMlp::fit`].
    #[allow(clippy::too_many_arguments)]
    fn epochs(
        &mut self,
        train: Samples<'_, F>,
        validation: Option<Samples<'_, F>>,
        settings: &Settings,
        incremental: bool,
        cores: usize,
        hooks: &mut (dyn FitHooks + Send),
    ) -> Result<FitEnd, SklearnError> {
        let rows = train.x.nrows();
        let batch_size = settings.batch_size.clamp(1, rows.max(1));
        let mut order: Vec<usize> = (0..rows).collect();
        let sparse = matches!(train.x, Inputs::Sparse(_));
        let mut step = TrainingStep::new(&mut self.model, cores, sparse);
        self.progress.n_iter = 0;
        let mut end = FitEnd::MaxIterReached;
        for _ in 0..settings.max_iter {
            if settings.shuffle {
                hooks.shuffle(&mut order);
            }
            let mut accumulated = 0.0;
            let mut start = 0;
            while start < rows {
                let batch = start..(start + batch_size).min(rows);
                let selection = if settings.shuffle {
                    Selection::Indices(&order[batch.clone()])
                } else {
                    Selection::Range(batch.clone())
                };
                // Cannot fail: `fit` made the solver.
                let solver = self.solver.as_mut().expect("fit makes the solver first");
                let loss = step.run(
                    &mut self.model,
                    self.output,
                    solver,
                    &mut self.probabilities,
                    train,
                    selection,
                    settings.alpha,
                )?;
                accumulated += loss * batch.len() as f64;
                start = batch.end;
            }
            self.progress.n_iter += 1;
            let loss = accumulated / rows.max(1) as f64;
            self.progress.loss = Some(loss);
            self.progress.t += rows as u64;
            self.progress.loss_curve.push(loss);
            let mut keep_going = hooks.message(&format!(
                "Iteration {}, loss = {:.8}",
                self.progress.n_iter, loss
            ));
            keep_going &= self.update_no_improvement_count(validation, settings.tol, hooks);
            let solver = self.solver.as_mut().expect("fit makes the solver first");
            solver.epoch_ended(self.progress.t);
            if self.progress.no_improvement_count > settings.n_iter_no_change {
                let what = if validation.is_some() {
                    "Validation score"
                } else {
                    "Training loss"
                };
                let (stop, tail) = solver.no_progress();
                let message = format!(
                    "{what} did not improve more than tol={:.6} for {} consecutive epochs.{tail}",
                    settings.tol, settings.n_iter_no_change
                );
                keep_going &= hooks.message(&message);
                if stop {
                    end = FitEnd::Converged;
                    break;
                }
                self.progress.no_improvement_count = 0;
            }
            if incremental {
                end = FitEnd::Incremental;
                break;
            }
            if !keep_going {
                end = FitEnd::Interrupted;
                break;
            }
        }
        Ok(end)
    }

    /// scikit-learn's `_update_no_improvement_count`: on the validation score (and
    /// then keeping the best weights) or on the training loss.
    fn update_no_improvement_count(
        &mut self,
        validation: Option<Samples<'_, F>>,
        tol: f64,
        hooks: &mut (dyn FitHooks + Send),
    ) -> bool {
        let progress = &mut self.progress;
        let Some(validation) = validation else {
            let last = progress.loss_curve[progress.loss_curve.len() - 1];
            let best = progress.best_loss.unwrap_or(f64::INFINITY);
            if last > best - tol {
                progress.no_improvement_count += 1;
            } else {
                progress.no_improvement_count = 0;
            }
            if last < best {
                progress.best_loss = Some(last);
            }
            return true;
        };
        // Shapes were checked by `fit`.
        let score = self.score(validation).unwrap_or(f64::NAN);
        let progress = &mut self.progress;
        progress
            .validation_scores
            .get_or_insert_with(Vec::new)
            .push(score);
        let keep_going = hooks.message(&format!("Validation score: {score:.6}"));
        let best = progress.best_validation_score.unwrap_or(f64::NEG_INFINITY);
        if score < best + tol {
            progress.no_improvement_count += 1;
        } else {
            progress.no_improvement_count = 0;
        }
        if score > best {
            progress.best_validation_score = Some(score);
            self.best = self.parameters();
        }
        keep_going
    }

    /// Checks, before anything grows, that a fit's buffers fit in memory: the layers'
    /// and the per-core step's batch buffers, the batch's outputs and targets, the
    /// solver's state, the best weights and the validation outputs.
    fn check_fit_memory(
        &self,
        train: Samples<'_, F>,
        validation: Option<Samples<'_, F>>,
        settings: &Settings,
    ) -> Result<(), SklearnError> {
        let float = std::mem::size_of::<F>();
        let batch = settings.batch_size.clamp(1, train.x.nrows().max(1));
        let outputs = self.model.out_features();
        let parameters = self.model.parameter_count();
        let solver_copies = match settings.solver {
            SolverKind::Sgd if settings.momentum == 0.0 => 0,
            SolverKind::Sgd => 1,
            SolverKind::Adam => 2,
        };
        let best_copies = 2 * usize::from(validation.is_some());
        let widest = self
            .model
            .linear_layers()
            .map(Linear::out_features)
            .max()
            .unwrap_or(0);
        let validation_rows = validation.map_or(0, |v| v.x.nrows());
        let needed = sum([
            self.model
                .buffer_bytes(batch)
                .and_then(|b| b.checked_mul(2)),
            product(&[batch, outputs, 2, float]),
            product(&[parameters, solver_copies + best_copies, float]),
            product(&[validation_rows, outputs, float]),
            product(&[
                threads::available_cores(),
                2,
                crate::train::EVAL_CHUNK_ROWS.min(validation_rows.max(1)),
                widest,
                float,
            ]),
        ]);
        // Sparse rows never fill the first layer's input buffers (of either step).
        let unused = match train.x {
            Inputs::Sparse(_) => product(&[batch, self.model.in_features(), 4, float]),
            Inputs::Dense(_) => Some(0),
        };
        let needed = needed.map(|needed| needed.saturating_sub(unused.unwrap_or(0)));
        check_memory(
            format!("training buffers for {batch}-row batches and the solver's state"),
            needed,
        )?;
        Ok(())
    }

    fn check_features(&self, what: &'static str, dim: (usize, usize)) -> Result<(), SklearnError> {
        if dim.1 != self.model.in_features() {
            return Err(SklearnError::DataShape {
                what,
                found: dim,
                expected: format!("{} features", self.model.in_features()),
            });
        }
        Ok(())
    }

    fn check_data(&self, samples: Samples<'_, F>) -> Result<(), SklearnError> {
        self.check_features("X", samples.x.dim())?;
        let rows = samples.x.nrows();
        if samples.targets.dim() != (rows, self.model.out_features()) {
            return Err(SklearnError::DataShape {
                what: "the targets",
                found: samples.targets.dim(),
                expected: format!("({rows}, {})", self.model.out_features()),
            });
        }
        if let Some(weights) = samples.weights {
            if weights.len() != rows {
                return Err(SklearnError::DataShape {
                    what: "sample_weight",
                    found: (weights.len(), 1),
                    expected: format!("{rows} entries"),
                });
            }
        }
        Ok(())
    }
}

/// The network for `(coefs (in, out), intercepts)` per layer: linear layers with
/// `activation` between them.
fn network<F: Float>(
    parameters: &[(ArrayView2<'_, F>, ArrayView1<'_, F>)],
    activation: ActivationKind,
) -> Result<MultiLayerPerceptron<F>, SklearnError> {
    predict::check_layers(parameters)?;
    let mut sizes = vec![parameters[0].0.nrows()];
    sizes.extend(parameters.iter().map(|(coefs, _)| coefs.ncols()));
    // Widths, BLAS's limit and the memory of the weights and their gradients.
    crate::network::check_sizes::<F>(&sizes)?;
    let mut layers = Vec::new();
    for (index, (coefs, intercepts)) in parameters.iter().enumerate() {
        if index > 0 {
            layers.push(Layer::activation(activation));
        }
        layers.push(Layer::Linear(Linear::from_params(
            coefs.t().to_owned(),
            intercepts.to_owned(),
        )));
    }
    let mut model = MultiLayerPerceptron::new(layers)?;
    model.set_compute_grad_input(false);
    Ok(model)
}

/// Which rows of the data a batch takes.
#[derive(Clone, Debug)]
enum Selection<'a> {
    Range(Range<usize>),
    Indices(&'a [usize]),
}

impl Selection<'_> {
    fn len(&self) -> usize {
        match self {
            Selection::Range(range) => range.len(),
            Selection::Indices(indices) => indices.len(),
        }
    }

    /// Copies rows `part` of the batch from `source` into `target: (part.len(), cols)`
    /// (sparse rows densified).
    fn copy<'a, F: Float>(
        &self,
        source: impl Into<Inputs<'a, F>>,
        part: Range<usize>,
        mut target: ArrayViewMut2<'_, F>,
    ) {
        let source = source.into();
        match self {
            Selection::Range(range) => {
                let rows = range.start + part.start..range.start + part.end;
                source.copy_rows(rows, target);
            }
            Selection::Indices(indices) => {
                for (row, &index) in target.rows_mut().into_iter().zip(&indices[part]) {
                    source.copy_row(index, row);
                }
            }
        }
    }
}

/// One batch's forward pass, loss and update, on the per-core step when the update is
/// plain gradient descent and the machine has the cores for it.
struct TrainingStep<F> {
    sliced: Option<SlicedStep<F>>,
    /// The first layer's products with sparse rows (for sparse data).
    sparse: Option<SparseFirstLayer<F>>,
    /// OpenBLAS held at the thread count the step needs while the fit runs.
    _blas: BlasLease,
    /// The targets of a shuffled batch, gathered.
    target_rows: Buffer<F>,
    /// The batch's weights, gathered.
    weight_rows: Vec<F>,
}

impl<F: Float> TrainingStep<F> {
    /// The step for `model` on `cores` cores, on sparse rows when `sparse` (then the
    /// first layer's products are the sparse ones and the per-core step is not used).
    fn new(model: &mut MultiLayerPerceptron<F>, cores: usize, sparse: bool) -> Self {
        let threading = threads::auto_threading(
            threads::gemm_threading(),
            SlicedStep::applies(model, cores) && !sparse,
            cores,
        );
        let sliced = match threading {
            GemmThreading::Sliced => SlicedStep::new(model, cores),
            _ => None,
        };
        Self {
            _blas: BlasLease::new(threading.blas_threads(cores)),
            sliced,
            sparse: sparse.then(SparseFirstLayer::new),
            target_rows: Buffer::new(),
            weight_rows: Vec::new(),
        }
    }

    /// Trains on the selected rows; returns the batch's loss (before the update), L2
    /// term included.
    #[allow(clippy::too_many_arguments)]
    fn run(
        &mut self,
        model: &mut MultiLayerPerceptron<F>,
        output: Output,
        solver: &mut Solver<F>,
        probabilities: &mut Buffer<F>,
        data: Samples<'_, F>,
        selection: Selection<'_>,
        alpha: f64,
    ) -> Result<f64, SklearnError> {
        // The crew holds the cores: kernels on this thread run serially.
        let _serial = self.sliced.is_some().then(SerialKernels::new);
        let batch = selection.len();
        let weights = data.weights.map(|all| {
            self.weight_rows.clear();
            match &selection {
                Selection::Range(range) => self.weight_rows.extend(all.slice(s![range.clone()])),
                Selection::Indices(indices) => {
                    self.weight_rows.extend(indices.iter().map(|&i| all[i]))
                }
            }
            ArrayView1::from(&self.weight_rows[..])
        });
        // The divisor of the batch's sums: its rows, or its weight total.
        let divisor = match weights {
            Some(weights) => weights.sum().to_f64(),
            None => batch as f64,
        };
        if divisor == 0.0 {
            return Err(SklearnError::ZeroWeights);
        }
        let plain = solver.plain(alpha, divisor);
        let x = data.x;
        let logits = match (x, self.sparse.as_mut(), self.sliced.as_mut()) {
            (Inputs::Sparse(x), Some(sparse), _) => match &selection {
                Selection::Range(range) => sparse.forward(model, x, range.clone()),
                Selection::Indices(indices) => sparse.forward(model, x, indices.iter().copied()),
            },
            (_, _, Some(step)) => {
                step.forward_with(model, batch, |part, input| selection.copy(x, part, input))
            }
            _ => model.forward_with(batch, |input| selection.copy(x, 0..batch, input)),
        };
        let mut delta = probabilities.resize(batch, logits.ncols());
        delta.assign(&logits);
        output.apply(delta.view_mut());
        let batch_targets = match &selection {
            Selection::Range(range) => data.targets.slice(s![range.clone(), ..]),
            Selection::Indices(_) => {
                let rows = self.target_rows.resize(batch, data.targets.ncols());
                selection.copy(data.targets, 0..batch, rows);
                self.target_rows.view()
            }
        };
        let mut loss = output.loss(delta.view(), batch_targets, weights);
        if alpha != 0.0 {
            loss += 0.5 * alpha * model.l2_penalty().to_f64() / divisor;
        }
        delta -= &batch_targets;
        if let Some(weights) = weights {
            for (mut row, &weight) in delta.rows_mut().into_iter().zip(weights) {
                row *= weight;
            }
        }
        if let (Inputs::Sparse(x), Some(sparse)) = (x, self.sparse.as_mut()) {
            sparse.backward(model, x, delta.view());
            solver.step(model, alpha, divisor);
            return Ok(loss);
        }
        let update = plain.map(|(lr, decay)| PlainUpdate::new(F::from_f64(lr), F::from_f64(decay)));
        match (update, self.sliced.as_mut()) {
            (update, Some(step)) => {
                step.backward(model, delta.view(), update);
                if update.is_none() {
                    solver.step(model, alpha, divisor);
                }
            }
            (Some(update), None) => model.backward_and_step(delta.view(), update),
            (None, None) => {
                model.backward(delta.view());
                solver.step(model, alpha, divisor);
            }
        }
        Ok(loss)
    }
}
