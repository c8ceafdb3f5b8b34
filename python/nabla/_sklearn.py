"""``nabla.MLPClassifier`` and ``nabla.MLPRegressor``: scikit-learn's MLPs on nabla's
engine.

This layer validates and converts with scikit-learn's own utilities and holds no
training logic: the epochs, the loss, the gradients, the SGD and Adam updates, the
stopping rule and early stopping's best weights all run in Rust (``nabla._core.Core``,
over the library's ``nabla::sklearn``) with the GIL released.

Three things are drawn here from ``random_state``, with scikit-learn's own calls in
scikit-learn's order, so that a given ``random_state`` gives scikit-learn's numbers: the
initial weights (uniform in +-sqrt(6 / (fan_in + fan_out)), +-sqrt(2 / ...) for
``'logistic'``), the early-stopping split (``train_test_split``, stratified) and each
epoch's shuffled order (``sklearn.utils.shuffle``, which the engine asks for between
epochs).
"""

import signal
import threading
import warnings
import weakref
from itertools import pairwise
from typing import NamedTuple

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin, _fit_context
from sklearn.exceptions import ConvergenceWarning, NotFittedError
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier as _ScikitLearnMLPClassifier
from sklearn.neural_network import MLPRegressor as _ScikitLearnMLPRegressor
from sklearn.preprocessing import LabelBinarizer
from sklearn.utils import check_random_state
from sklearn.utils import shuffle as _shuffle
from sklearn.utils.metaestimators import available_if
from sklearn.utils.multiclass import (
    _check_partial_fit_first_call,
    check_classification_targets,
    type_of_target,
    unique_labels,
)
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
        if self.solver not in _STOCHASTIC_SOLVERS:
            raise ValueError(
                f"solver={self.solver!r} is not supported by nabla: use 'sgd' or 'adam'."
            )
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
        stratify = y if self._stratify and y.shape[1] == 1 else None
        self.n_outputs_ = y.shape[1]
        layer_units = [X.shape[1]] + hidden_layer_sizes + [self.n_outputs_]
        random_state = check_random_state(self.random_state)
        if first_pass:
            self._initialize(y, layer_units, X.dtype, random_state)
        else:
            self._push_parameters()
        X = np.asarray(X, dtype=self._core.dtype)
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
                X,
                y,
                sample_weight,
                X_val,
                y_val,
                sample_weight_val,
                settings,
                incremental,
                shuffle,
                print if self.verbose else None,
                _watch_interrupts(),
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
        return self

    def _initialize(self, y, layer_units, dtype, random_state):
        """scikit-learn's ``_initialize``: the output activation and the initial weights,
        drawn from ``random_state`` as scikit-learn draws them."""
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
        # coefs_ and intercepts_ change when the fit ends (_pull_state): a thread
        # predicting meanwhile keeps the previous weights.

    def _push_parameters(self):
        """Hands ``coefs_`` / ``intercepts_`` as they are now (a user may have assigned
        them) to the engine, with the hidden activation set now."""
        if self._core_activation != self.activation:
            self._core = Core.restore(self._core.export(), self.activation)
            self._core_activation = self.activation
        dtype = self._core.dtype
        self._core.set_parameters(
            [np.asarray(c, dtype=dtype) for c in self.coefs_],
            [np.asarray(b, dtype=dtype) for b in self.intercepts_],
        )

    def _pull_state(self):
        """Mirrors the engine's weights and progress as scikit-learn's attributes."""
        for name, value in self._core.progress().items():
            setattr(self, name, value)
        coefs, intercepts = self._core.parameters()
        self._fitted = _Fitted(
            coefs,
            intercepts,
            self.out_activation_,
            self.n_outputs_,
            getattr(self, "_label_binarizer", None),
        )

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
        X = validate_data(self, X, dtype=(np.float64, np.float32), reset=False)
        coefs, intercepts = fitted.coefs, fitted.intercepts
        dtype = coefs[0].dtype if coefs[0].dtype == np.float32 else np.float64
        y_pred = _predict_proba(
            [np.asarray(c, dtype=dtype) for c in coefs],
            [np.asarray(b, dtype=dtype) for b in intercepts],
            self.activation,
            fitted.out_activation or self.out_activation_,
            np.asarray(X, dtype=dtype),
        )
        n_outputs = fitted.n_outputs if fitted.n_outputs is not None else self.n_outputs_
        if n_outputs == 1:
            y_pred = y_pred.ravel()
        return y_pred, fitted

    # -- scikit-learn plumbing ------------------------------------------------------

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


def _watch_interrupts():
    """Whether a fit called now should stop on Ctrl-C: only on Python's main thread (the
    only one Python's Ctrl-C reaches, as in scikit-learn) and while SIGINT has a Python
    handler (not ignored, not left to the default action)."""
    if threading.current_thread() is not threading.main_thread():
        return False
    return callable(signal.getsignal(signal.SIGINT))


class MLPClassifier(ClassifierMixin, _MultilayerPerceptron):
    """Multi-layer perceptron classifier: scikit-learn's ``MLPClassifier``, trained by nabla.

    The parameters, their defaults and meanings, the fitted attributes and the methods
    are scikit-learn's (see ``sklearn.neural_network.MLPClassifier``); so are the
    mathematics (loss with ``alpha / (2 * batch_rows) * sum of squared weights``, the
    SGD and Adam updates, the ``tol`` / ``n_iter_no_change`` rule) and, for a given
    ``random_state``, the initial weights, the validation split and the shuffling.

    Differences from scikit-learn:

    - ``solver='lbfgs'`` is refused (``ValueError``); ``max_fun`` is accepted and unused.
    - Sparse input is refused.
    - float32 data trains in float32 and float64 in float64, as in scikit-learn; data of
      the other dtype given to a fitted model (``predict``, ``partial_fit``, a warm start)
      is converted to the model's dtype, where scikit-learn would let NumPy upcast.
    - The epoch's loss is summed in float64 (scikit-learn sums a float32 model's in
      float32); per-element results agree to rounding, not bit for bit (BLAS sums in
      another order and the logistic function is nabla's, within 2 ulp).
    - A KeyboardInterrupt stops training at the end of the running epoch (scikit-learn
      stops within it); both warn "Training interrupted by user.".
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
        return X, self._label_binarizer.transform(y)

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
    identity output and half the squared error as the loss; ``loss='poisson'`` is
    refused (``ValueError``). Targets are converted to the model's float type.
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

    def _fit(self, X, y, sample_weight, incremental):
        if self.loss != "squared_error":
            raise ValueError(
                f"loss={self.loss!r} is not supported by nabla: use 'squared_error'."
            )
        return super()._fit(X, y, sample_weight, incremental)

    def _output_activation(self):
        return "identity"

    def _validate_input(self, X, y, incremental, reset):
        X, y = validate_data(
            self,
            X,
            y,
            multi_output=True,
            y_numeric=True,
            dtype=(np.float64, np.float32),
            reset=reset,
        )
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        return X, y

    def predict(self, X):
        """The predictions ``(n_samples,)`` or ``(n_samples, n_outputs)`` for ``X``."""
        return self._forward(X)[0]
