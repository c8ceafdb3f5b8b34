"""``nabla.MLPClassifier`` and ``nabla.MLPRegressor``: scikit-learn's MLPs on nabla's
engine.

This layer validates and converts with scikit-learn's own utilities and holds no
training logic: the epochs, the loss, the gradients, the SGD and Adam updates, the
stopping rule and early stopping's best weights all run in Rust (``nabla._core.Core``,
over the library's ``nabla::sklearn``) with the GIL released. For ``solver='lbfgs'``
SciPy's L-BFGS-B runs here, as in scikit-learn, and each of its evaluations (the loss
and gradient of all rows) is one call into the engine.

Three things are drawn here from ``random_state``, with scikit-learn's own calls in
scikit-learn's order, so that a given ``random_state`` gives scikit-learn's numbers: the
initial weights (uniform in +-sqrt(6 / (fan_in + fan_out)), +-sqrt(2 / ...) for
``'logistic'``), the early-stopping split (``train_test_split``, stratified) and each
epoch's shuffled order (``sklearn.utils.shuffle``, which the engine asks for between
epochs).
"""

import threading
import warnings
import weakref
from itertools import pairwise
from typing import NamedTuple

import numpy as np
import scipy.optimize
import scipy.sparse
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin, _fit_context
from sklearn.exceptions import ConvergenceWarning, NotFittedError
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier as _ScikitLearnMLPClassifier
from sklearn.neural_network import MLPRegressor as _ScikitLearnMLPRegressor
from sklearn.preprocessing import LabelBinarizer
from sklearn.utils import check_random_state
from sklearn.utils import shuffle as _shuffle
from sklearn.utils.fixes import _get_additional_lbfgs_options_dict
from sklearn.utils.metaestimators import available_if
from sklearn.utils.multiclass import (
    _check_partial_fit_first_call,
    check_classification_targets,
    type_of_target,
    unique_labels,
)
from sklearn.utils.optimize import _check_optimize_result
from sklearn.utils.validation import (
    _check_sample_weight,
    column_or_1d,
    validate_data,
)

from ._core import Core
from ._core import check_network_memory as _check_network_memory
from ._core import predict_proba as _predict_proba

# A count of epochs no run reaches (the Rust side takes a 64-bit count).
_NEVER = 2**62

_STOCHASTIC_SOLVERS = ("sgd", "adam")


class _Fitted(NamedTuple):
    """What prediction reads, published in one step when a fit ends (or when
    ``coefs_``/``intercepts_`` are assigned): a thread predicting during a fit uses the
    model from before it or after it, never a mix."""

    coefs: list
    intercepts: list
    out_activation: object = None
    n_outputs: object = None
    binarizer: object = None


_FIT_LOCKS = weakref.WeakKeyDictionary()
_FIT_LOCKS_GUARD = threading.Lock()


def _fit_lock(estimator):
    """The estimator's own lock: fits of one estimator take turns, and pickling waits
    for a fit to end."""
    with _FIT_LOCKS_GUARD:
        lock = _FIT_LOCKS.get(estimator)
        if lock is None:
            lock = _FIT_LOCKS[estimator] = threading.RLock()
        return lock


def _store_parameters(estimator, arguments):
    """Keeps ``__init__``'s arguments as attributes, unchanged, as scikit-learn requires
    (each estimator's signature stays explicit: ``get_params`` reads it)."""
    for name, value in arguments.items():
        if name != "self":
            setattr(estimator, name, value)


class _MultilayerPerceptron(BaseEstimator):
    """What both estimators share: the fit around the engine, the weights and progress
    mirrored as scikit-learn's attributes, prediction, pickling. Subclasses say how
    targets are validated and encoded and which output activation they use."""

    # -- fitting --------------------------------------------------------------------

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y, sample_weight=None):
        """Fit the model to data matrix ``X`` (n_samples, n_features) and targets ``y``,
        rows weighted by ``sample_weight`` (n_samples,) when given."""
        return self._fit(X, y, sample_weight, incremental=False)

    def _check_solver(self):
        if self.solver not in _STOCHASTIC_SOLVERS:
            raise AttributeError(
                "partial_fit is only available for stochastic optimizers. "
                "%s is not stochastic." % self.solver
            )
        return True

    def _fit(self, X, y, sample_weight, incremental):
        with _fit_lock(self):
            return self._fit_now(X, y, sample_weight, incremental)

    def _fit_now(self, X, y, sample_weight, incremental):
        hidden_layer_sizes = self.hidden_layer_sizes
        if not hasattr(hidden_layer_sizes, "__iter__"):
            hidden_layer_sizes = [hidden_layer_sizes]
        hidden_layer_sizes = list(hidden_layer_sizes)
        if np.any(np.array(hidden_layer_sizes) <= 0):
            raise ValueError(
                "hidden_layer_sizes must be > 0, got %s." % hidden_layer_sizes
            )
        if self.early_stopping and incremental:
            raise ValueError("partial_fit does not support early_stopping=True")

        first_pass = not hasattr(self, "coefs_") or (
            not self.warm_start and not incremental
        )
        X, y = self._validate_input(X, y, incremental, reset=first_pass)
        if sample_weight is not None:
            sample_weight = _check_sample_weight(sample_weight, X)
        if y.ndim == 1:
            y = y.reshape((-1, 1))
        self.n_outputs_ = y.shape[1]
        layer_units = [X.shape[1]] + hidden_layer_sizes + [self.n_outputs_]
        random_state = check_random_state(self.random_state)
        if first_pass:
            self._initialize(y, layer_units, X.dtype, random_state)
        else:
            self._continue(layer_units, X.dtype)
        if self.solver == "lbfgs":
            self._fit_lbfgs(X, y, sample_weight)
        else:
            self._fit_stochastic(X, y, sample_weight, random_state, incremental)
        return self

    def _fit_lbfgs(self, X, y, sample_weight):
        """scikit-learn's ``_fit_lbfgs``: SciPy's L-BFGS-B on the packed parameters with
        scikit-learn's options, the loss and gradient of all rows from the engine (one
        call per evaluation, the GIL released).

        As in scikit-learn with SciPy's ``minimize``, each evaluation runs in the dtype
        of the initial packed vector (float32 for a first fit on float32 data: SciPy
        hands the function float32 points) and the result, SciPy's float64 point,
        becomes float64 ``coefs_``."""
        core = self._core
        dtype = np.dtype(core.dtype)
        X = _engine_input(X, dtype)
        y = np.asarray(y, dtype=dtype)
        if sample_weight is not None:
            sample_weight = np.asarray(sample_weight, dtype=dtype)
        alpha = float(self.alpha)

        def loss_and_gradient(packed):
            loss, gradient = core.loss_and_gradient(
                np.ascontiguousarray(packed, dtype=np.float64),
                X,
                y,
                sample_weight,
                alpha,
            )
            return np.float64(loss), gradient.astype(dtype, copy=False)

        iprint = 1 if self.verbose is True or self.verbose >= 1 else -1
        coefs, intercepts = core.parameters()
        shapes = [c.shape for c in coefs]
        published = False
        try:
            opt_res = scipy.optimize.minimize(
                loss_and_gradient,
                _pack(coefs, intercepts, dtype),
                method="L-BFGS-B",
                jac=True,
                options={
                    "maxfun": self.max_fun,
                    "maxiter": self.max_iter,
                    "gtol": self.tol,
                    **_get_additional_lbfgs_options_dict("iprint", iprint),
                },
            )
            self.n_iter_ = _check_optimize_result("lbfgs", opt_res, self.max_iter)
            self.loss_ = np.float64(opt_res.fun)
            core.unpack(np.ascontiguousarray(opt_res.x, dtype=np.float64))
            self._publish(*_unpack(opt_res.x, shapes))
            published = True
        finally:
            if not published:
                self._publish()
        _check_finite(self._fitted)

    def _fit_stochastic(self, X, y, sample_weight, random_state, incremental):
        """scikit-learn's ``_fit_stochastic``: the epochs run in the engine; the
        validation split and each epoch's order are drawn here."""
        # Stratified on the targets as they are (a classifier's are bool, as in
        # scikit-learn, whose split errors name the classes True and False).
        stratify = y if self._stratify and y.shape[1] == 1 else None
        X = _as_dtype(X, self._core.dtype)
        y = np.asarray(y, dtype=self._core.dtype)
        if sample_weight is not None:
            sample_weight = np.asarray(sample_weight, dtype=self._core.dtype)

        sample_weight_val = None
        if self.early_stopping:
            arrays = (X, y) if sample_weight is None else (X, y, sample_weight)
            split = train_test_split(
                *arrays,
                random_state=random_state,
                test_size=self.validation_fraction,
                stratify=stratify,
            )
            X, X_val, y, y_val = split[:4]
            if sample_weight is not None:
                sample_weight, sample_weight_val = split[4:]
                if not np.any(sample_weight_val):  # scikit-learn's score refuses them
                    raise ValueError(
                        "Sample weights must contain at least one non-zero number."
                    )
            if X_val.shape[0] < 2:
                raise ValueError(
                    "The validation set is too small. Increase 'validation_fraction' "
                    "or the size of your dataset."
                )
        else:
            X_val = y_val = None

        n_samples = X.shape[0]
        if self.batch_size == "auto":
            batch_size = min(200, n_samples)
        else:
            if self.batch_size > n_samples:
                warnings.warn(
                    "Got `batch_size` less than 1 or larger than "
                    "sample size. It is going to be clipped"
                )
            batch_size = int(np.clip(self.batch_size, 1, n_samples))

        shuffle = None
        if self.shuffle:

            def shuffle(order):
                return _shuffle(order, random_state=random_state)

        settings = dict(
            solver=self.solver,
            alpha=float(self.alpha),
            batch_size=batch_size,
            learning_rate=self.learning_rate,
            learning_rate_init=float(self.learning_rate_init),
            power_t=float(self.power_t),
            max_iter=int(self.max_iter),
            shuffle=bool(self.shuffle),
            tol=float(self.tol),
            momentum=float(self.momentum),
            nesterovs_momentum=bool(self.nesterovs_momentum),
            beta_1=float(self.beta_1),
            beta_2=float(self.beta_2),
            epsilon=float(self.epsilon),
            # np.inf (scikit-learn's documented "never stop") and counts past 2**62
            # mean the same: a count no run reaches.
            n_iter_no_change=int(min(self.n_iter_no_change, _NEVER)),
        )
        try:
            end = self._core.fit(
                _engine_input(X, self._core.dtype),
                y,
                sample_weight,
                None if X_val is None else _engine_input(X_val, self._core.dtype),
                y_val,
                sample_weight_val,
                settings,
                incremental,
                shuffle,
                print if self.verbose else None,
                _on_main_thread(),
            )
        finally:
            self._pull_state()
        if end == "max_iter":
            warnings.warn(
                "Stochastic Optimizer: Maximum iterations (%d) "
                "reached and the optimization hasn't converged yet." % self.max_iter,
                ConvergenceWarning,
            )
        elif end == "interrupted":
            warnings.warn("Training interrupted by user.")

    def _initialize(self, y, layer_units, dtype, random_state):
        """scikit-learn's ``_initialize``: the output activation and the initial weights,
        drawn from ``random_state`` as scikit-learn draws them, and (for the stochastic
        solvers) the curves and counters."""
        self.n_iter_ = 0
        self.t_ = 0
        self.n_layers_ = len(layer_units)
        self.out_activation_ = self._output_activation()
        # Before anything is drawn: MemoryError if the network cannot fit in memory.
        _check_network_memory(list(layer_units), dtype == np.float32)
        factor = 2.0 if self.activation == "logistic" else 6.0
        coefs, intercepts = [], []
        for fan_in, fan_out in pairwise(layer_units):
            bound = np.sqrt(factor / (fan_in + fan_out))
            coef = random_state.uniform(-bound, bound, (fan_in, fan_out))
            intercept = random_state.uniform(-bound, bound, fan_out)
            coefs.append(coef.astype(dtype, copy=False))
            intercepts.append(intercept.astype(dtype, copy=False))
        self._core = Core(
            coefs, intercepts, self.activation, self.out_activation_, self.early_stopping
        )
        self._core_activation = self.activation
        if self.solver != "lbfgs":
            for name, value in self._core.progress().items():
                setattr(self, name, value)
        # coefs_ and intercepts_ change when the fit ends (_publish): a thread
        # predicting meanwhile keeps the previous weights.

    def _continue(self, layer_units, data_dtype):
        """Before a warm start or ``partial_fit``: the engine takes ``coefs_``,
        ``intercepts_`` and the progress attributes as they are now (a user may have
        assigned any of them, even all of them on an estimator never fitted, as in
        scikit-learn's worked example of one SGD step), with the hidden activation set
        now. The network's widths must be those ``layer_units`` asks for."""
        coefs, intercepts = list(self.coefs_), list(self.intercepts_)
        fitted_units = [np.shape(coefs[0])[0]] + [np.shape(c)[1] for c in coefs]
        if fitted_units != list(layer_units):
            raise ValueError(
                f"The fitted network has layer widths {fitted_units}, but "
                f"hidden_layer_sizes={self.hidden_layer_sizes!r} with this data asks for "
                f"{list(layer_units)}: a warm start or partial_fit continues the fitted "
                "network. Set warm_start=False (or fit a new estimator) to change it."
            )
        core = self.__dict__.get("_core")
        float32 = all(np.asarray(c).dtype == np.float32 for c in coefs + intercepts)
        if self.solver == "lbfgs":
            # scikit-learn's evaluations run in the dtype of the packed coefficients
            # (NumPy upcasts float32 data with float64 ones).
            dtype = np.float32 if float32 and data_dtype == np.float32 else np.float64
        elif core is not None:
            dtype = np.dtype(core.dtype)
        else:
            dtype = np.float32 if float32 else np.float64
        coefs = [np.ascontiguousarray(c, dtype=dtype) for c in coefs]
        intercepts = [np.ascontiguousarray(b, dtype=dtype) for b in intercepts]
        if core is None or np.dtype(core.dtype) != dtype:
            self._core = Core(
                coefs,
                intercepts,
                self.activation,
                self.out_activation_,
                self.early_stopping,
            )
        else:
            if self._core_activation != self.activation:
                self._core = Core.restore(self._core.export(), self.activation)
            self._core.set_parameters(coefs, intercepts)
        self._core_activation = self.activation
        if self.solver != "lbfgs" and not self._progress_as_published():
            self._core.set_progress(self._progress_attributes())

    def _progress_as_published(self):
        """Whether the progress attributes are still what the last fit published
        (nothing assigned since, ``loss_curve_`` not changed in length): then the
        engine holds them already and nothing is copied (``partial_fit`` in a loop
        stays linear in the calls)."""
        published = self.__dict__.get("_published")
        if published is None:
            return False
        for name, value in published.items():
            current = self.__dict__.get(name, _MISSING)
            if isinstance(value, list):
                if current is not value or len(current) != self._published_lengths[name]:
                    return False
            elif current is not value and not (current == value):
                return False
        return True

    def _progress_attributes(self):
        """The counters and curves as the attributes say (what a fit continues from)."""
        return {
            "n_iter_": int(getattr(self, "n_iter_", 0)),
            "t_": int(getattr(self, "t_", 0)),
            "loss_": getattr(self, "loss_", None),
            "loss_curve_": [float(v) for v in getattr(self, "loss_curve_", [])],
            "best_loss_": getattr(self, "best_loss_", None),
            "validation_scores_": getattr(self, "validation_scores_", None),
            "best_validation_score_": getattr(self, "best_validation_score_", None),
            "_no_improvement_count": int(getattr(self, "_no_improvement_count", 0)),
        }

    def _pull_state(self):
        """Mirrors the engine's weights and progress as scikit-learn's attributes, with
        scikit-learn's types (losses are ``np.float64``, scores ``float``). The curve
        published last is extended in place with the new epochs' losses, as
        scikit-learn appends to its ``loss_curve_``."""
        curve = self.__dict__.get("loss_curve_")
        extend = self._progress_as_published() and isinstance(curve, list)
        progress = self._core.progress(len(curve) if extend else 0)
        new_losses = [np.float64(v) for v in progress["loss_curve_"]]
        if extend:
            curve.extend(new_losses)
            progress["loss_curve_"] = curve
        else:
            progress["loss_curve_"] = new_losses
        progress["loss_"] = _float64(progress["loss_"])
        best_loss = progress["best_loss_"]
        if best_loss is not None and not np.isinf(best_loss):
            progress["best_loss_"] = np.float64(best_loss)
        for name, value in progress.items():
            setattr(self, name, value)
        self._published = progress
        self._published_lengths = {
            name: len(value) for name, value in progress.items() if isinstance(value, list)
        }
        self._publish()

    def _publish(self, coefs=None, intercepts=None):
        """Publishes ``coefs`` and ``intercepts`` (by default the engine's weights) as
        ``coefs_`` and ``intercepts_``."""
        if coefs is None:
            coefs, intercepts = self._core.parameters()
        self._fitted = _Fitted(
            coefs,
            intercepts,
            self.out_activation_,
            self.n_outputs_,
            getattr(self, "_label_binarizer", None),
        )

    # -- what scikit-learn's users read of its private state ----------------------

    @property
    def _optimizer(self):
        """The stochastic solver's state, read-only, with the names and shapes of
        scikit-learn's ``SGDOptimizer`` / ``AdamOptimizer`` (``learning_rate`` is the
        rate in force: ``adaptive`` and ``invscaling`` change it, Adam's folds in its
        bias corrections). Absent before a stochastic fit, as in scikit-learn."""
        core = self.__dict__.get("_core")
        state = core.solver_state() if core is not None else None
        if state is None:
            raise AttributeError(
                f"'{type(self).__name__}' object has no attribute '_optimizer'"
            )
        shapes = [np.shape(c) for c in self.coefs_]

        def as_parameters(buffers):
            coefs = [
                np.asarray(buffers[2 * i]).reshape(fan_out, fan_in).T.copy()
                for i, (fan_in, fan_out) in enumerate(shapes)
            ]
            intercepts = [np.asarray(buffers[2 * i + 1]) for i in range(len(shapes))]
            return coefs + intercepts

        if state["kind"] == "sgd":
            scalars, buffers = ("momentum", "nesterov", "power_t"), ("velocities",)
        else:
            scalars, buffers = ("beta_1", "beta_2", "epsilon", "t"), ("ms", "vs")
        values = {name: state[name] for name in ("learning_rate_init", "learning_rate", *scalars)}
        values.update({name: as_parameters(state[name]) for name in buffers})
        if state["kind"] == "sgd":
            values["lr_schedule"] = state["schedule"]
        return _SolverState(**values)

    @property
    def _best_coefs(self):
        """The coefficients of the best validation score (the initial ones until
        early stopping finds one), as scikit-learn's ``_best_coefs``."""
        return self._best_parameters()[0]

    @property
    def _best_intercepts(self):
        """The intercepts that go with ``_best_coefs``."""
        return self._best_parameters()[1]

    def _best_parameters(self):
        core = self.__dict__.get("_core")
        if core is None:
            raise AttributeError(
                f"'{type(self).__name__}' object has no attribute '_best_coefs'"
            )
        return core.best_parameters()

    # ``coefs_`` and ``intercepts_`` live in ``_fitted`` (see ``_Fitted``). Assigning
    # either works as in scikit-learn.

    @property
    def coefs_(self):
        """The weight matrices, ``(n_in, n_out)`` per layer."""
        return self._fitted.coefs

    @coefs_.setter
    def coefs_(self, value):
        fitted = getattr(self, "_fitted", None) or _Fitted(None, None)
        self._fitted = fitted._replace(coefs=value)

    @property
    def intercepts_(self):
        """The bias vectors, ``(n_out,)`` per layer."""
        return self._fitted.intercepts

    @intercepts_.setter
    def intercepts_(self, value):
        fitted = getattr(self, "_fitted", None) or _Fitted(None, None)
        self._fitted = fitted._replace(intercepts=value)

    # -- prediction -----------------------------------------------------------------

    def _forward(self, X):
        """The outputs for ``X`` and the model that made them (``_Fitted``), from
        ``coefs_`` and ``intercepts_`` as they are now, read in place by the engine
        (any number of threads may predict at once)."""
        # One read of one attribute (scikit-learn's check_is_fitted walks vars(self),
        # which a fit in another thread may be growing).
        fitted = self.__dict__.get("_fitted")
        if fitted is None or fitted.coefs is None or fitted.intercepts is None:
            raise NotFittedError(
                f"This {type(self).__name__} instance is not fitted yet. Call 'fit' "
                "with appropriate arguments before using this estimator."
            )
        X = validate_data(
            self, X, accept_sparse=["csr", "csc"], dtype=(np.float64, np.float32), reset=False
        )
        coefs, intercepts = fitted.coefs, fitted.intercepts
        dtype = coefs[0].dtype if coefs[0].dtype == np.float32 else np.float64
        y_pred = _predict_proba(
            [np.asarray(c, dtype=dtype) for c in coefs],
            [np.asarray(b, dtype=dtype) for b in intercepts],
            self.activation,
            fitted.out_activation or self.out_activation_,
            _engine_input(X, dtype),
        )
        n_outputs = fitted.n_outputs if fitted.n_outputs is not None else self.n_outputs_
        if n_outputs == 1:
            y_pred = y_pred.ravel()
        return y_pred, fitted

    # -- scikit-learn plumbing ------------------------------------------------------

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        return tags

    def __getstate__(self):
        with _fit_lock(self):  # a fit ends first: its attributes and engine agree
            state = dict(super().__getstate__())
            core = state.pop("_core", None)
            if core is not None:
                state["_core_state"] = core.export()
        fitted = state.pop("_fitted", None)
        if fitted is not None:
            state["_fitted"] = tuple(fitted)
        return state

    def __setstate__(self, state):
        core_state = state.pop("_core_state", None)
        if "coefs_" in state:  # pickled before coefs_ became a property
            state["_fitted"] = (state.pop("coefs_"), state.pop("intercepts_", None))
        if state.get("_fitted") is not None:
            state["_fitted"] = _Fitted(*state["_fitted"])
        super().__setstate__(state)
        if core_state is not None:
            self._core = Core.restore(core_state, self._core_activation)


class _SolverState:
    """A read-only view of a stochastic solver's state (``_optimizer``)."""

    def __init__(self, **values):
        self.__dict__.update(values)

    def __repr__(self):
        names = ", ".join(
            f"{k}={v!r}" for k, v in self.__dict__.items() if not isinstance(v, list)
        )
        return f"_SolverState({names})"


def _pack(coefs, intercepts, dtype):
    """scikit-learn's ``_pack``: every coefficient matrix row by row, then every
    intercept, as one vector of ``dtype``."""
    return np.hstack([np.ravel(p) for p in list(coefs) + list(intercepts)]).astype(
        dtype, copy=False
    )


def _unpack(packed, shapes):
    """scikit-learn's ``_unpack``: ``(coefs, intercepts)`` of the given coefficient
    shapes from a packed vector (copies, of its dtype)."""
    coefs, intercepts, start = [], [], 0
    for fan_in, fan_out in shapes:
        coefs.append(np.array(packed[start : start + fan_in * fan_out]).reshape(fan_in, fan_out))
        start += fan_in * fan_out
    for _, fan_out in shapes:
        intercepts.append(np.array(packed[start : start + fan_out]))
        start += fan_out
    return coefs, intercepts


def _as_dtype(X, dtype):
    """``X`` (dense or sparse) with values of ``dtype``."""
    if scipy.sparse.issparse(X):
        return X.astype(dtype, copy=False)
    return np.asarray(X, dtype=dtype)


def _engine_input(X, dtype):
    """``X`` as the engine takes it: an array of ``dtype``, or for a sparse matrix its
    CSR arrays ``(data, indices, indptr, rows, cols)`` (the engine computes the first
    layer's products from the stored values only, never a dense copy)."""
    if scipy.sparse.issparse(X):
        X = X.tocsr()
        return (
            np.ascontiguousarray(X.data, dtype=dtype),
            np.ascontiguousarray(X.indices, dtype=np.int64),
            np.ascontiguousarray(X.indptr, dtype=np.int64),
            X.shape[0],
            X.shape[1],
        )
    return np.asarray(X, dtype=dtype)


_MISSING = object()


def _float64(value):
    return None if value is None else np.float64(value)


def _check_finite(fitted):
    """scikit-learn's check after a fit."""
    if not all(np.isfinite(p).all() for p in list(fitted.coefs) + list(fitted.intercepts)):
        raise ValueError(
            "Solver produced non-finite parameter weights. The input data may"
            " contain large values and need to be preprocessed."
        )


def _on_main_thread():
    """Whether a fit called now runs Python's signal handlers while it trains: on
    Python's main thread, the only one where Python runs them (a Ctrl-C, a timeout's
    alarm), as in scikit-learn."""
    return threading.current_thread() is threading.main_thread()


class MLPClassifier(ClassifierMixin, _MultilayerPerceptron):
    """Multi-layer perceptron classifier: scikit-learn's ``MLPClassifier``, trained by nabla.

    The parameters, their defaults and meanings, the fitted attributes and the methods
    are scikit-learn's (see ``sklearn.neural_network.MLPClassifier``); so are the
    mathematics (loss with ``alpha / (2 * batch_rows) * sum of squared weights``, the
    SGD and Adam updates, the ``tol`` / ``n_iter_no_change`` rule) and, for a given
    ``random_state``, the initial weights, the validation split and the shuffling.

    Differences from scikit-learn:

    - float32 data trains in float32 and float64 in float64, as in scikit-learn; data of
      the other dtype given to a fitted model (``predict``, ``partial_fit``, a warm start)
      is converted to the model's dtype, where scikit-learn would let NumPy upcast.
    - The epoch's loss is summed in float64 (scikit-learn sums a float32 model's in
      float32); per-element results agree to rounding, not bit for bit (BLAS sums in
      another order and the logistic function is nabla's, within 2 ulp).
    - A signal handler's exception (a KeyboardInterrupt included) stops training at the
      end of the running epoch (scikit-learn stops within it); both warn "Training
      interrupted by user." for a KeyboardInterrupt.
    - Fitted attributes are published when a fit or ``partial_fit`` call ends
      (``coefs_`` as new arrays), so that a thread predicting meanwhile never sees a mix.
    - A warm start or ``partial_fit`` with ``hidden_layer_sizes`` changed since the fit
      raises ``ValueError``; scikit-learn raises too for a changed number of layers
      (an ``AttributeError``) and with ``'lbfgs'``, but with ``'sgd'`` and ``'adam'``
      silently keeps the fitted widths.
    - ``_optimizer`` (scikit-learn's solver object) is a read-only view of the
      solver's state, with its attribute names and shapes.
    """

    _parameter_constraints = dict(_ScikitLearnMLPClassifier._parameter_constraints)

    def __init__(
        self,
        hidden_layer_sizes=(100,),
        activation="relu",
        *,
        solver="adam",
        alpha=0.0001,
        batch_size="auto",
        learning_rate="constant",
        learning_rate_init=0.001,
        power_t=0.5,
        max_iter=200,
        shuffle=True,
        random_state=None,
        tol=1e-4,
        verbose=False,
        warm_start=False,
        momentum=0.9,
        nesterovs_momentum=True,
        early_stopping=False,
        validation_fraction=0.1,
        beta_1=0.9,
        beta_2=0.999,
        epsilon=1e-8,
        n_iter_no_change=10,
        max_fun=15000,
    ):
        _store_parameters(self, locals())

    _stratify = True

    @available_if(lambda estimator: estimator._check_solver())
    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X, y, sample_weight=None, classes=None):
        """One epoch over ``X``, ``y`` (rows weighted by ``sample_weight``, if given);
        ``classes`` (every label) is needed at the first call."""
        if _check_partial_fit_first_call(self, classes):
            self._label_binarizer = LabelBinarizer()
            if type_of_target(y).startswith("multilabel"):
                self._label_binarizer.fit(y)
            else:
                self._label_binarizer.fit(classes)
        return self._fit(X, y, sample_weight, incremental=True)

    def _output_activation(self):
        return "softmax" if self._label_binarizer.y_type_ == "multiclass" else "logistic"

    def _validate_input(self, X, y, incremental, reset):
        X, y = validate_data(
            self,
            X,
            y,
            accept_sparse=["csr", "csc"],
            multi_output=True,
            dtype=(np.float64, np.float32),
            reset=reset,
        )
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        check_classification_targets(y)
        if (not hasattr(self, "classes_")) or (not self.warm_start and not incremental):
            self._label_binarizer = LabelBinarizer()
            self._label_binarizer.fit(y)
            self.classes_ = self._label_binarizer.classes_
        else:
            classes = unique_labels(y)
            if self.warm_start:
                if set(classes) != set(self.classes_):
                    raise ValueError(
                        "warm_start can only be used where `y` has the same "
                        "classes as in the previous call to fit. Previously "
                        f"got {self.classes_}, `y` has {classes}"
                    )
            elif len(np.setdiff1d(classes, self.classes_, assume_unique=True)):
                raise ValueError(
                    "`y` has classes not in `self.classes_`. "
                    f"`self.classes_` has {self.classes_}. 'y' has {classes}."
                )
        # bool, as scikit-learn's (which keeps float32 data in float32).
        return X, self._label_binarizer.transform(y).astype(bool)

    def predict(self, X):
        """The predicted classes of ``X`` (n_samples, n_features)."""
        y_pred, fitted = self._forward(X)
        binarizer = fitted.binarizer or self._label_binarizer
        return binarizer.inverse_transform(y_pred)

    def predict_proba(self, X):
        """Probabilities ``(n_samples, n_classes)``, classes ordered as ``classes_``."""
        y_pred, _ = self._forward(X)
        if y_pred.ndim == 1:
            return np.vstack([1 - y_pred, y_pred]).T
        return y_pred

    def predict_log_proba(self, X):
        """``log(predict_proba(X))``."""
        y_prob = self.predict_proba(X)
        return np.log(y_prob, out=y_prob)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_label = True
        return tags


class MLPRegressor(RegressorMixin, _MultilayerPerceptron):
    """Multi-layer perceptron regressor: scikit-learn's ``MLPRegressor``, trained by nabla.

    As ``MLPClassifier`` (see its notes on the differences from scikit-learn), with the
    identity output and half the squared error as the loss, or (``loss='poisson'``) the
    exponential output and the Poisson deviance. Targets are converted to the model's
    float type.
    """

    _parameter_constraints = dict(_ScikitLearnMLPRegressor._parameter_constraints)

    def __init__(
        self,
        loss="squared_error",
        hidden_layer_sizes=(100,),
        activation="relu",
        *,
        solver="adam",
        alpha=0.0001,
        batch_size="auto",
        learning_rate="constant",
        learning_rate_init=0.001,
        power_t=0.5,
        max_iter=200,
        shuffle=True,
        random_state=None,
        tol=1e-4,
        verbose=False,
        warm_start=False,
        momentum=0.9,
        nesterovs_momentum=True,
        early_stopping=False,
        validation_fraction=0.1,
        beta_1=0.9,
        beta_2=0.999,
        epsilon=1e-8,
        n_iter_no_change=10,
        max_fun=15000,
    ):
        _store_parameters(self, locals())

    _stratify = False

    @available_if(lambda estimator: estimator._check_solver())
    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X, y, sample_weight=None):
        """One epoch over ``X``, ``y`` (rows weighted by ``sample_weight``, if given)."""
        return self._fit(X, y, sample_weight, incremental=True)

    def _output_activation(self):
        return "exp" if self.loss == "poisson" else "identity"

    def _validate_input(self, X, y, incremental, reset):
        X, y = validate_data(
            self,
            X,
            y,
            accept_sparse=["csr", "csc"],
            multi_output=True,
            y_numeric=True,
            dtype=(np.float64, np.float32),
            reset=reset,
        )
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        if y.dtype.kind in "USV":
            # Where scikit-learn's loss fails on such targets, with its error.
            np.subtract(y[:1], np.zeros(1, dtype=X.dtype))
        return X, y

    def predict(self, X):
        """The predictions ``(n_samples,)`` or ``(n_samples, n_outputs)`` for ``X``."""
        return self._forward(X)[0]
