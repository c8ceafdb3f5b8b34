//! `nabla._core`: one Python class, [`Core`], over the library's
//! [`nabla::sklearn::SklearnMlp`] in f32 or f64 (the dtype of the coefficients it is
//! made with), and [`predict_proba`], which predicts from a fitted estimator's
//! `coefs_` and `intercepts_` in place. Every numeric step runs here with the GIL
//! released; the Python layer (`nabla/_sklearn.py`) only validates and converts.
//!
//! Threads: a `Core` may be shared by any number of Python threads (its state is behind
//! a mutex, always taken with the GIL released, so that a fit calling back into Python
//! never waits on a thread that waits for the GIL); predictions never touch a `Core`.

mod signals;

use ndarray::{Array1, Array2, ArrayView1, ArrayView2};
use numpy::{
    Element, IntoPyArray, PyArray1, PyArrayDescrMethods, PyReadonlyArray1, PyReadonlyArray2,
    PyUntypedArray, PyUntypedArrayMethods,
};
use pyo3::exceptions::{PyKeyboardInterrupt, PyMemoryError, PyValueError, PyZeroDivisionError};
use std::os::raw::c_int;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};

use nabla::names::UnknownName;
use nabla::sklearn::{
    CsrView, FitEnd, FitHooks, Inputs, LayerView, LearningRate, Output, Progress, Samples,
    Settings, SklearnError, SklearnMlp, Solver, SolverKind,
};
use nabla::threads;
use nabla::{ActivationKind, Float};

/// The network in one of the two float types.
#[derive(Clone)]
enum Engine {
    F32(SklearnMlp<f32>),
    F64(SklearnMlp<f64>),
}

/// Runs `$body` with `$mlp` bound to the engine's network, whatever its float type
/// (`$F` names the type).
macro_rules! with_engine {
    ($engine:expr, $mlp:ident, $F:ident => $body:expr) => {
        match $engine {
            Engine::F32($mlp) => {
                #[allow(dead_code)]
                type $F = f32;
                $body
            }
            Engine::F64($mlp) => {
                #[allow(dead_code)]
                type $F = f64;
                $body
            }
        }
    };
}

/// A library error as Python's: `MemoryError` for what would not fit in memory (with the
/// bytes needed), `ZeroDivisionError` for weights that sum to zero (NumPy's, which
/// scikit-learn raises), `ValueError` otherwise.
fn value_error(error: SklearnError) -> PyErr {
    if matches!(error, SklearnError::ZeroWeights) {
        return PyZeroDivisionError::new_err(error.to_string());
    }
    match error.too_large() {
        Some(too_large) => PyMemoryError::new_err(too_large.to_string()),
        None => PyValueError::new_err(error.to_string()),
    }
}

fn name_error(error: UnknownName) -> PyErr {
    PyValueError::new_err(error.to_string())
}

/// The engine of `nabla.MLPClassifier` and `nabla.MLPRegressor`: a network, its solver
/// state and its progress, shared safely between threads (see the module docs).
#[pyclass(module = "nabla._core", frozen)]
struct Core {
    engine: Mutex<Engine>,
}

impl Core {
    /// The engine, locked; waits (with the GIL released) while another thread fits.
    fn lock<'a>(&'a self, py: Python<'_>) -> MutexGuard<'a, Engine> {
        loop {
            match self.engine.try_lock() {
                Ok(engine) => return engine,
                Err(std::sync::TryLockError::Poisoned(poisoned)) => return poisoned.into_inner(),
                Err(std::sync::TryLockError::WouldBlock) => {
                    // Wait for the holder without the GIL, then try again.
                    py.detach(|| {
                        drop(self.engine.lock().unwrap_or_else(PoisonError::into_inner));
                    });
                }
            }
        }
    }
}

/// Arrays of one float type from Python lists of coefficient and intercept arrays.
fn parameter_arrays<'py, F: Float + Element>(
    coefs: &Bound<'py, PyList>,
    intercepts: &Bound<'py, PyList>,
) -> PyResult<Vec<(Array2<F>, Array1<F>)>> {
    if coefs.len() != intercepts.len() || coefs.is_empty() {
        return Err(PyValueError::new_err(format!(
            "coefs_ has {} layers and intercepts_ {}: they must match, and be at least one",
            coefs.len(),
            intercepts.len()
        )));
    }
    coefs
        .iter()
        .zip(intercepts.iter())
        .map(|(w, b)| {
            let w: PyReadonlyArray2<'py, F> = w.extract()?;
            let b: PyReadonlyArray1<'py, F> = b.extract()?;
            Ok((w.as_array().to_owned(), b.as_array().to_owned()))
        })
        .collect()
}

fn views<F>(parameters: &[(Array2<F>, Array1<F>)]) -> Vec<(ArrayView2<'_, F>, ArrayView1<'_, F>)> {
    parameters
        .iter()
        .map(|(w, b)| (w.view(), b.view()))
        .collect()
}

fn activation_of(name: &str) -> PyResult<ActivationKind> {
    Ok(match name {
        "logistic" => ActivationKind::Sigmoid,
        "relu" => ActivationKind::Relu,
        "tanh" => ActivationKind::Tanh,
        "identity" => ActivationKind::Identity,
        other => {
            return Err(PyValueError::new_err(format!(
                "unknown activation {other:?}"
            )))
        }
    })
}

fn output_of(name: &str) -> PyResult<Output> {
    match name {
        "softmax" => Ok(Output::Softmax),
        "logistic" => Ok(Output::Logistic),
        "identity" => Ok(Output::Identity),
        "exp" => Ok(Output::Exp),
        other => Err(PyValueError::new_err(format!(
            "unknown output activation {other:?}"
        ))),
    }
}

/// Whether `array` (or a CSR tuple's `data`, its first item) holds float32.
fn is_float32(array: &Bound<'_, PyAny>) -> PyResult<bool> {
    let first;
    let array = if array.is_instance_of::<pyo3::types::PyTuple>() {
        first = array.get_item(0)?;
        &first
    } else {
        array
    };
    let array = array.cast::<PyUntypedArray>()?;
    Ok(array.dtype().is_equiv_to(&numpy::dtype::<f32>(array.py())))
}

/// `Settings` from the estimator's parameters (a dict with scikit-learn's names; the
/// batch size resolved).
fn settings_of(settings: &Bound<'_, PyDict>) -> PyResult<Settings> {
    fn get<'py, T: FromPyObjectOwned<'py>>(
        settings: &Bound<'py, PyDict>,
        key: &str,
    ) -> PyResult<T> {
        settings
            .get_item(key)?
            .ok_or_else(|| PyValueError::new_err(format!("setting {key} missing")))?
            .extract()
            .map_err(Into::into)
    }
    let solver = get::<String>(settings, "solver")?
        .parse::<SolverKind>()
        .map_err(name_error)?;
    let learning_rate = get::<String>(settings, "learning_rate")?
        .parse::<LearningRate>()
        .map_err(name_error)?;
    Ok(Settings {
        solver,
        alpha: get(settings, "alpha")?,
        batch_size: get(settings, "batch_size")?,
        learning_rate,
        learning_rate_init: get(settings, "learning_rate_init")?,
        power_t: get(settings, "power_t")?,
        max_iter: get(settings, "max_iter")?,
        shuffle: get(settings, "shuffle")?,
        tol: get(settings, "tol")?,
        momentum: get(settings, "momentum")?,
        nesterovs_momentum: get(settings, "nesterovs_momentum")?,
        beta_1: get(settings, "beta_1")?,
        beta_2: get(settings, "beta_2")?,
        epsilon: get(settings, "epsilon")?,
        n_iter_no_change: get(settings, "n_iter_no_change")?,
    })
}

/// Borrowed input rows: a NumPy array, or a CSR matrix as the Python layer passes it,
/// `(data, indices, indptr, rows, cols)` (indices and indptr as int64).
enum InputArrays<'py, F: Element> {
    Dense(PyReadonlyArray2<'py, F>),
    Sparse {
        data: PyReadonlyArray1<'py, F>,
        indices: PyReadonlyArray1<'py, i64>,
        indptr: PyReadonlyArray1<'py, i64>,
        shape: (usize, usize),
    },
}

impl<'py, F: Float + Element> InputArrays<'py, F> {
    fn extract(x: &Bound<'py, PyAny>) -> PyResult<Self> {
        if x.is_instance_of::<pyo3::types::PyTuple>() {
            let (data, indices, indptr, rows, cols) = x.extract()?;
            return Ok(Self::Sparse {
                data,
                indices,
                indptr,
                shape: (rows, cols),
            });
        }
        Ok(Self::Dense(x.extract()?))
    }

    /// The rows as the engine takes them (a CSR matrix's structure checked).
    fn inputs(&self) -> PyResult<Inputs<'_, F>> {
        Ok(match self {
            Self::Dense(x) => Inputs::Dense(x.as_array()),
            Self::Sparse {
                data,
                indices,
                indptr,
                shape,
            } => Inputs::Sparse(
                CsrView::new(
                    *shape,
                    indptr.as_slice()?,
                    indices.as_slice()?,
                    data.as_slice()?,
                )
                .map_err(value_error)?,
            ),
        })
    }
}

/// Borrowed NumPy arrays of one fit's rows: inputs, targets, optional weights.
struct Arrays<'py, F: Element> {
    x: InputArrays<'py, F>,
    y: PyReadonlyArray2<'py, F>,
    weights: Option<PyReadonlyArray1<'py, F>>,
}

impl<'py, F: Float + Element> Arrays<'py, F> {
    fn extract(
        x: &Bound<'py, PyAny>,
        y: &Bound<'py, PyAny>,
        weights: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Self> {
        Ok(Self {
            x: InputArrays::extract(x)?,
            y: y.extract()?,
            weights: weights.map(|w| w.extract()).transpose()?,
        })
    }

    fn samples(&self) -> PyResult<Samples<'_, F>> {
        Ok(Samples {
            x: self.x.inputs()?,
            targets: self.y.as_array(),
            weights: self.weights.as_ref().map(|w| w.as_array()),
        })
    }
}

/// The hooks of a fit: Python's shuffle and print, called between epochs with the GIL
/// taken back; a Ctrl-C (`interrupted`) stops the loop there.
struct PythonHooks {
    shuffle: Option<Py<PyAny>>,
    verbose: Option<Py<PyAny>>,
    error: Option<PyErr>,
    interrupted: Arc<AtomicBool>,
}

impl FitHooks for PythonHooks {
    fn shuffle(&mut self, order: &mut [usize]) {
        let Some(shuffle) = &self.shuffle else { return };
        Python::attach(|py| {
            // As NumPy arrays both ways (a list of every index would cost more than the
            // shuffle itself, with the GIL held).
            let indices: Vec<i64> = order.iter().map(|&i| i as i64).collect();
            let result = shuffle
                .call1(py, (indices.into_pyarray(py),))
                .and_then(|next| {
                    Ok(next
                        .extract::<PyReadonlyArray1<'_, i64>>(py)?
                        .as_array()
                        .to_vec())
                });
            match result {
                Ok(next)
                    if next.len() == order.len()
                        && next
                            .iter()
                            .all(|&i| usize::try_from(i).is_ok_and(|i| i < order.len())) =>
                {
                    for (slot, &index) in order.iter_mut().zip(&next) {
                        *slot = index as usize;
                    }
                }
                Ok(_) => {
                    self.error.get_or_insert_with(|| {
                        PyValueError::new_err("shuffle returned a wrong order")
                    });
                }
                Err(error) => {
                    self.error.get_or_insert(error);
                }
            }
        });
    }

    fn message(&mut self, line: &str) -> bool {
        if let Some(verbose) = &self.verbose {
            if let Err(error) = Python::attach(|py| verbose.call1(py, (line,)).map(drop)) {
                self.error.get_or_insert(error);
            }
        }
        self.error.is_none() && !self.interrupted.load(Ordering::Relaxed)
    }
}

/// The progress by scikit-learn's attribute names; `loss_curve_` from entry
/// `curve_from` on (the caller holds the earlier ones).
fn progress_dict<'py>(
    py: Python<'py>,
    progress: &Progress,
    curve_from: usize,
) -> PyResult<Bound<'py, PyDict>> {
    let dict = PyDict::new(py);
    dict.set_item("n_iter_", progress.n_iter)?;
    dict.set_item("t_", progress.t)?;
    dict.set_item("loss_", progress.loss)?;
    let curve = progress.loss_curve.get(curve_from..).unwrap_or(&[]);
    dict.set_item("loss_curve_", curve)?;
    dict.set_item("best_loss_", progress.best_loss)?;
    dict.set_item("validation_scores_", progress.validation_scores.clone())?;
    dict.set_item("best_validation_score_", progress.best_validation_score)?;
    dict.set_item("_no_improvement_count", progress.no_improvement_count)?;
    Ok(dict)
}

fn progress_of(dict: &Bound<'_, PyDict>) -> PyResult<Progress> {
    fn get<'py, T: FromPyObjectOwned<'py>>(dict: &Bound<'py, PyDict>, key: &str) -> PyResult<T> {
        dict.get_item(key)?
            .ok_or_else(|| PyValueError::new_err(format!("state entry {key} missing")))?
            .extract()
            .map_err(Into::into)
    }
    Ok(Progress {
        n_iter: get(dict, "n_iter_")?,
        t: get(dict, "t_")?,
        loss: get(dict, "loss_")?,
        loss_curve: get(dict, "loss_curve_")?,
        best_loss: get(dict, "best_loss_")?,
        validation_scores: get(dict, "validation_scores_")?,
        best_validation_score: get(dict, "best_validation_score_")?,
        no_improvement_count: get(dict, "_no_improvement_count")?,
    })
}

fn arrays_out<'py, F: Float + Element>(
    py: Python<'py>,
    parameters: &[(Array2<F>, Array1<F>)],
) -> (Vec<Bound<'py, PyAny>>, Vec<Bound<'py, PyAny>>) {
    parameters
        .iter()
        .map(|(w, b)| {
            (
                w.clone().into_pyarray(py).into_any(),
                b.clone().into_pyarray(py).into_any(),
            )
        })
        .unzip()
}

fn buffers_out<'py, F: Float + Element>(
    py: Python<'py>,
    buffers: &[Vec<F>],
) -> Vec<Bound<'py, PyArray1<F>>> {
    buffers.iter().map(|b| b.clone().into_pyarray(py)).collect()
}

fn buffers_in<F: Float + Element>(list: &Bound<'_, PyAny>) -> PyResult<Vec<Vec<F>>> {
    list.try_iter()?
        .map(|item| {
            let array: PyReadonlyArray1<'_, F> = item?.extract()?;
            Ok(array.as_array().to_vec())
        })
        .collect()
}

/// The solver's state as a dict of plain values and arrays (for pickling).
fn solver_dict<'py, F: Float + Element>(
    py: Python<'py>,
    solver: &Solver<F>,
) -> PyResult<Bound<'py, PyDict>> {
    let dict = PyDict::new(py);
    match solver {
        Solver::Sgd {
            learning_rate,
            momentum,
            nesterov,
            schedule,
            learning_rate_init,
            power_t,
            velocities,
        } => {
            dict.set_item("kind", solver.kind().name())?;
            dict.set_item("learning_rate", learning_rate)?;
            dict.set_item("momentum", momentum)?;
            dict.set_item("nesterov", nesterov)?;
            dict.set_item("schedule", schedule.name())?;
            dict.set_item("learning_rate_init", learning_rate_init)?;
            dict.set_item("power_t", power_t)?;
            dict.set_item("velocities", buffers_out(py, velocities))?;
        }
        Solver::Adam {
            learning_rate_init,
            learning_rate,
            beta_1,
            beta_2,
            epsilon,
            t,
            ms,
            vs,
        } => {
            dict.set_item("kind", solver.kind().name())?;
            dict.set_item("learning_rate_init", learning_rate_init)?;
            dict.set_item("learning_rate", learning_rate)?;
            dict.set_item("beta_1", beta_1)?;
            dict.set_item("beta_2", beta_2)?;
            dict.set_item("epsilon", epsilon)?;
            dict.set_item("t", t)?;
            dict.set_item("ms", buffers_out(py, ms))?;
            dict.set_item("vs", buffers_out(py, vs))?;
        }
    }
    Ok(dict)
}

fn solver_of<F: Float + Element>(dict: &Bound<'_, PyDict>) -> PyResult<Solver<F>> {
    let item = |key: &str| -> PyResult<Bound<'_, PyAny>> {
        dict.get_item(key)?
            .ok_or_else(|| PyValueError::new_err(format!("solver state entry {key} missing")))
    };
    let kind: SolverKind = item("kind")?
        .extract::<String>()?
        .parse()
        .map_err(name_error)?;
    Ok(match kind {
        SolverKind::Sgd => {
            let schedule: LearningRate = item("schedule")?
                .extract::<String>()?
                .parse()
                .map_err(name_error)?;
            Solver::Sgd {
                learning_rate: item("learning_rate")?.extract()?,
                momentum: item("momentum")?.extract()?,
                nesterov: item("nesterov")?.extract()?,
                schedule,
                learning_rate_init: item("learning_rate_init")?.extract()?,
                power_t: item("power_t")?.extract()?,
                velocities: buffers_in(&item("velocities")?)?,
            }
        }
        SolverKind::Adam => Solver::Adam {
            learning_rate_init: item("learning_rate_init")?.extract()?,
            learning_rate: item("learning_rate")?.extract()?,
            beta_1: item("beta_1")?.extract()?,
            beta_2: item("beta_2")?.extract()?,
            epsilon: item("epsilon")?.extract()?,
            t: item("t")?.extract()?,
            ms: buffers_in(&item("ms")?)?,
            vs: buffers_in(&item("vs")?)?,
        },
    })
}

fn engine_new<F: Float + Element>(
    coefs: &Bound<'_, PyList>,
    intercepts: &Bound<'_, PyList>,
    activation: ActivationKind,
    output: Output,
    early_stopping: bool,
) -> PyResult<SklearnMlp<F>> {
    let parameters = parameter_arrays::<F>(coefs, intercepts)?;
    SklearnMlp::new(&views(&parameters), activation, output, early_stopping).map_err(value_error)
}

#[pymethods]
impl Core {
    /// A network with the given `coefs` (in, out) and `intercepts` per layer (their
    /// dtype, float32 or float64, is the network's), hidden `activation` and `output`
    /// (`'softmax'`, `'logistic'` or `'identity'`).
    #[new]
    fn new(
        coefs: &Bound<'_, PyList>,
        intercepts: &Bound<'_, PyList>,
        activation: &str,
        output: &str,
        early_stopping: bool,
    ) -> PyResult<Self> {
        let (activation, output) = (activation_of(activation)?, output_of(output)?);
        let first = coefs.get_item(0)?;
        let engine = if is_float32(&first)? {
            Engine::F32(engine_new(
                coefs,
                intercepts,
                activation,
                output,
                early_stopping,
            )?)
        } else {
            Engine::F64(engine_new(
                coefs,
                intercepts,
                activation,
                output,
                early_stopping,
            )?)
        };
        Ok(Self {
            engine: Mutex::new(engine),
        })
    }

    /// `'float32'` or `'float64'`.
    #[getter]
    fn dtype(&self, py: Python<'_>) -> &'static str {
        match *self.lock(py) {
            Engine::F32(_) => "float32",
            Engine::F64(_) => "float64",
        }
    }

    /// `(coefs_, intercepts_)`: lists of arrays, `(in, out)` and `(out,)` per layer.
    fn parameters<'py>(&self, py: Python<'py>) -> (Vec<Bound<'py, PyAny>>, Vec<Bound<'py, PyAny>>) {
        with_engine!(&*self.lock(py), mlp, F => arrays_out::<F>(py, &mlp.parameters()))
    }

    /// Replaces the weights with `coefs` / `intercepts` (same shapes; converted to the
    /// network's dtype by the caller).
    fn set_parameters(
        &self,
        py: Python<'_>,
        coefs: &Bound<'_, PyList>,
        intercepts: &Bound<'_, PyList>,
    ) -> PyResult<()> {
        with_engine!(&mut *self.lock(py), mlp, F => {
            let parameters = parameter_arrays::<F>(coefs, intercepts)?;
            mlp.set_parameters(&views(&parameters)).map_err(value_error)
        })
    }

    /// The fitted counters and curves, by scikit-learn's attribute names, with
    /// `loss_curve_` from entry `curve_from` on (a caller that holds the first entries
    /// asks for the new ones only: repeated `partial_fit` calls stay linear).
    #[pyo3(signature = (curve_from=0))]
    fn progress<'py>(&self, py: Python<'py>, curve_from: usize) -> PyResult<Bound<'py, PyDict>> {
        with_engine!(&*self.lock(py), mlp, F => progress_dict(py, &mlp.progress, curve_from))
    }

    /// `_fit_stochastic` on `x` (rows, features), the targets `y` (rows, outputs: a
    /// classifier's indicator matrix) and `sample_weight` (rows, or None), all of the
    /// network's dtype; `x_val`/`y_val`/`sample_weight_val` for early stopping;
    /// `settings` by scikit-learn's names; `shuffle(order) -> order` draws each epoch's
    /// order, `verbose(line)` prints. With `watch_signals` (a fit on Python's main
    /// thread), Python's signal handlers run during the fit (see [`signals`]): one that
    /// raises ends the fit at the end of the epoch. Returns how it ended: `'max_iter'`,
    /// `'converged'`, `'incremental'` or `'interrupted'` (a `KeyboardInterrupt`, which
    /// scikit-learn catches); raises what a hook or another handler raised,
    /// `MemoryError` when the fit's buffers would not fit in memory.
    #[pyo3(signature = (x, y, sample_weight, x_val, y_val, sample_weight_val, settings, incremental, shuffle=None, verbose=None, watch_signals=false))]
    #[allow(clippy::too_many_arguments)]
    fn fit(
        &self,
        py: Python<'_>,
        x: &Bound<'_, PyAny>,
        y: &Bound<'_, PyAny>,
        sample_weight: Option<&Bound<'_, PyAny>>,
        x_val: Option<&Bound<'_, PyAny>>,
        y_val: Option<&Bound<'_, PyAny>>,
        sample_weight_val: Option<&Bound<'_, PyAny>>,
        settings: &Bound<'_, PyDict>,
        incremental: bool,
        shuffle: Option<Py<PyAny>>,
        verbose: Option<Py<PyAny>>,
        watch_signals: bool,
    ) -> PyResult<&'static str> {
        let settings = settings_of(settings)?;
        let interrupted = Arc::new(AtomicBool::new(false));
        let mut hooks = PythonHooks {
            shuffle,
            verbose,
            error: None,
            interrupted: Arc::clone(&interrupted),
        };
        let mut engine = self.lock(py);
        let end = with_engine!(&mut *engine, mlp, F => {
            let train = Arrays::<F>::extract(x, y, sample_weight)?;
            let validation = match (x_val, y_val) {
                (Some(x_val), Some(y_val)) => Some(Arrays::<F>::extract(x_val, y_val, sample_weight_val)?),
                _ => None,
            };
            let (train, validation) = (train.samples()?, validation.as_ref().map(Arrays::samples).transpose()?);
            signals::run_watching(py, watch_signals, &interrupted, || {
                mlp.fit(train, validation, &settings, incremental, &mut hooks)
            })
        });
        drop(engine);
        let (end, raised) = end;
        // A signal that arrived since the last poll has its handler run now. A
        // KeyboardInterrupt is taken here, as scikit-learn catches it, and the fit ends
        // with what it has.
        let pending = if watch_signals && raised.is_none() {
            py.check_signals()
        } else {
            Ok(())
        };
        if let Some(error) = hooks.error.or(raised).or(pending.err()) {
            if error.is_instance_of::<PyKeyboardInterrupt>(py) {
                return Ok("interrupted");
            }
            return Err(error);
        }
        Ok(match end.map_err(value_error)? {
            FitEnd::MaxIterReached => "max_iter",
            FitEnd::Converged => "converged",
            FitEnd::Incremental => "incremental",
            FitEnd::Interrupted => "interrupted",
        })
    }

    /// Replaces the counters and curves (scikit-learn continues from its attributes as
    /// they are, values a user assigned included): a dict as [`Core::progress`] gives.
    fn set_progress(&self, py: Python<'_>, progress: &Bound<'_, PyDict>) -> PyResult<()> {
        let progress = progress_of(progress)?;
        with_engine!(&mut *self.lock(py), mlp, F => mlp.progress = progress);
        Ok(())
    }

    /// `(coefs, intercepts)` of the best validation score so far (scikit-learn's
    /// `_best_coefs`, `_best_intercepts`).
    fn best_parameters<'py>(
        &self,
        py: Python<'py>,
    ) -> (Vec<Bound<'py, PyAny>>, Vec<Bound<'py, PyAny>>) {
        with_engine!(&*self.lock(py), mlp, F => arrays_out::<F>(py, mlp.best_parameters()))
    }

    /// The solver's state as a dict (`kind`, its rates and counters, its buffers in the
    /// network's parameter order: each layer's weights `(out, in)` flat, then its
    /// bias), or None before the first epoch.
    fn solver_state<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyDict>>> {
        with_engine!(&*self.lock(py), mlp, F => mlp.solver().map(|solver| solver_dict::<F>(py, solver)).transpose())
    }

    /// scikit-learn's `_loss_grad_lbfgs`: sets the weights to `packed` (scikit-learn's
    /// `_pack` order: every layer's coefs `(in, out)` row by row, then every intercept)
    /// and returns `(loss, gradient)` of all rows of `x` (rows, features), `y` (rows,
    /// outputs) and `sample_weight` (rows, or None), of the network's dtype, with L2
    /// strength `alpha`; the gradient in the same packed order, float64.
    fn loss_and_gradient<'py>(
        &self,
        py: Python<'py>,
        packed: PyReadonlyArray1<'py, f64>,
        x: &Bound<'py, PyAny>,
        y: &Bound<'py, PyAny>,
        sample_weight: Option<&Bound<'py, PyAny>>,
        alpha: f64,
    ) -> PyResult<(f64, Bound<'py, PyArray1<f64>>)> {
        let packed = packed.as_slice()?;
        let mut engine = self.lock(py);
        let mut gradient = vec![0.0; packed.len()];
        let loss = with_engine!(&mut *engine, mlp, F => {
            let data = Arrays::<F>::extract(x, y, sample_weight)?;
            let samples = data.samples()?;
            py.detach(|| mlp.loss_and_gradient(packed, samples, alpha, &mut gradient))
        })
        .map_err(value_error)?;
        Ok((loss, gradient.into_pyarray(py)))
    }

    /// Sets the weights from scikit-learn's packed vector (`_unpack`).
    fn unpack(&self, py: Python<'_>, packed: PyReadonlyArray1<'_, f64>) -> PyResult<()> {
        let packed = packed.as_slice()?;
        with_engine!(&mut *self.lock(py), mlp, F => mlp.unpack(packed)).map_err(value_error)
    }

    /// Everything the network holds, as plain values and arrays (for pickling).
    fn export<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let dict = PyDict::new(py);
        with_engine!(&*self.lock(py), mlp, F => {
            let (coefs, intercepts) = arrays_out::<F>(py, &mlp.parameters());
            let (best_coefs, best_intercepts) = arrays_out::<F>(py, mlp.best_parameters());
            dict.set_item("coefs", coefs)?;
            dict.set_item("intercepts", intercepts)?;
            dict.set_item("best_coefs", best_coefs)?;
            dict.set_item("best_intercepts", best_intercepts)?;
            dict.set_item("output", mlp.output().name())?;
            dict.set_item("progress", progress_dict(py, &mlp.progress, 0)?)?;
            match mlp.solver() {
                Some(solver) => dict.set_item("solver", solver_dict(py, solver)?)?,
                None => dict.set_item("solver", py.None())?,
            }
        });
        Ok(dict)
    }

    /// A network from [`Core::export`]'s dict and the hidden `activation`.
    #[staticmethod]
    fn restore(state: &Bound<'_, PyDict>, activation: &str) -> PyResult<Self> {
        let item = |key: &str| -> PyResult<Bound<'_, PyAny>> {
            state
                .get_item(key)?
                .ok_or_else(|| PyValueError::new_err(format!("state entry {key} missing")))
        };
        let coefs = item("coefs")?;
        let coefs = coefs.cast::<PyList>()?;
        let intercepts = item("intercepts")?;
        let intercepts = intercepts.cast::<PyList>()?;
        let activation = activation_of(activation)?;
        let output = output_of(&item("output")?.extract::<String>()?)?;
        let core = Self::new(coefs, intercepts, "relu", output.name(), false)?;
        let progress = progress_of(item("progress")?.cast::<PyDict>()?)?;
        let solver = item("solver")?;
        let best_coefs = item("best_coefs")?;
        let best_intercepts = item("best_intercepts")?;
        with_engine!(&mut *core.lock(state.py()), mlp, F => {
            let mut fresh = engine_new::<F>(coefs, intercepts, activation, output, false)?;
            fresh.progress = progress;
            fresh.set_best_parameters(parameter_arrays::<F>(best_coefs.cast::<PyList>()?, best_intercepts.cast::<PyList>()?)?)
                .map_err(value_error)?;
            if !solver.is_none() {
                fresh
                    .set_solver(Some(solver_of::<F>(solver.cast::<PyDict>()?)?))
                    .map_err(value_error)?;
            }
            *mlp = fresh;
        });
        Ok(core)
    }
}

/// The outputs `(rows, outputs)` of `x` (rows, features) through the layers `coefs`
/// (in, out) and `intercepts`, read in place (`x` and the layers of one dtype, float32
/// or float64), with the hidden `activation` and the `output` activation: a
/// classifier's probabilities, a regressor's predictions. `MemoryError` if the outputs
/// would not fit in memory.
#[pyfunction]
fn predict_proba<'py>(
    py: Python<'py>,
    coefs: &Bound<'py, PyList>,
    intercepts: &Bound<'py, PyList>,
    activation: &str,
    output: &str,
    x: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyAny>> {
    let (activation, output) = (activation_of(activation)?, output_of(output)?);
    if is_float32(x)? {
        predict_in::<f32>(py, coefs, intercepts, activation, output, x)
    } else {
        predict_in::<f64>(py, coefs, intercepts, activation, output, x)
    }
}

fn predict_in<'py, F: Float + Element>(
    py: Python<'py>,
    coefs: &Bound<'py, PyList>,
    intercepts: &Bound<'py, PyList>,
    activation: ActivationKind,
    output: Output,
    x: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyAny>> {
    if coefs.len() != intercepts.len() {
        return Err(PyValueError::new_err(format!(
            "coefs_ has {} layers and intercepts_ {}: they must match",
            coefs.len(),
            intercepts.len()
        )));
    }
    // Read-only borrows of the arrays as they are: no copy.
    let borrowed: Vec<(PyReadonlyArray2<'py, F>, PyReadonlyArray1<'py, F>)> = coefs
        .iter()
        .zip(intercepts.iter())
        .map(|(w, b)| Ok((w.extract()?, b.extract()?)))
        .collect::<PyResult<_>>()?;
    let x = InputArrays::<F>::extract(x)?;
    let layers: Vec<LayerView<'_, F>> = borrowed
        .iter()
        .map(|(w, b)| (w.as_array(), b.as_array()))
        .collect();
    let x = x.inputs()?;
    let outputs = if x.nrows() <= 16 {
        // A few rows take microseconds: releasing the GIL would cost more.
        nabla::sklearn::predict_proba(&layers, activation, output, x)
    } else {
        py.detach(|| nabla::sklearn::predict_proba(&layers, activation, output, x))
    }
    .map_err(value_error)?;
    Ok(outputs.into_pyarray(py).into_any())
}

/// Checks, before a network of widths `layer_units` (`[in, hidden..., out]`) is drawn,
/// that its weights and gradients fit in memory (float32 or float64): `MemoryError`
/// with the bytes it would need, `ValueError` for widths BLAS cannot take.
#[pyfunction]
fn check_network_memory(layer_units: Vec<usize>, float32: bool) -> PyResult<()> {
    let checked = if float32 {
        nabla::network::check_sizes::<f32>(&layer_units)
    } else {
        nabla::network::check_sizes::<f64>(&layer_units)
    };
    checked.map_err(|error| match error {
        nabla::network::ModelError::TooLarge(too_large) => {
            PyMemoryError::new_err(too_large.to_string())
        }
        other => PyValueError::new_err(other.to_string()),
    })
}

/// `(threads, why)`: the threads a fit started now would use, and what decided their
/// number (cores, CPU affinity, cgroup quota, a thread variable, threadpoolctl's limit
/// on OpenBLAS or on nabla).
#[pyfunction]
fn thread_budget() -> (usize, String) {
    let budget = threads::budget();
    (budget.threads, budget.source.to_string())
}

/// threadpoolctl's view of nabla (`nabla._threadpool.NablaController` calls these by
/// name): the threads a fit would use now.
///
/// threadpoolctl reads every library's count before a block sets any, nabla's (found
/// first: its module loads before the OpenBLAS it links) before OpenBLAS's. A run live
/// now means the OpenBLAS count about to be read is the run's own, which the block will
/// put back at its end: noted here, at the read, rather than when the block sets
/// nabla's limit (a run ending between the two, under load, left that count behind as a
/// limit on later fits).
#[no_mangle]
pub extern "C" fn nabla_get_num_threads() -> c_int {
    threads::outside_limit_began();
    c_int::try_from(threads::budget().threads).unwrap_or(c_int::MAX)
}

/// threadpoolctl's limit on nabla's threads; a limit at or above the CPUs this process
/// may use removes nabla's own limit (threadpoolctl restores the count it read).
#[no_mangle]
pub extern "C" fn nabla_set_num_threads(threads: c_int) {
    let threads = usize::try_from(threads).unwrap_or(0);
    let limit = (threads >= 1 && threads < threads::available_cores()).then_some(threads);
    threads::set_limit(limit);
    if limit.is_some() {
        // A threadpool_limits block begins: it reads OpenBLAS's count now.
        threads::outside_limit_began();
    } else {
        // It ends: what it puts back of a run's own count is not a limit.
        threads::after_outside_limit();
    }
}

#[pymodule]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Core>()?;
    m.add_function(wrap_pyfunction!(predict_proba, m)?)?;
    m.add_function(wrap_pyfunction!(thread_budget, m)?)?;
    m.add_function(wrap_pyfunction!(check_network_memory, m)?)?;
    Ok(())
}
