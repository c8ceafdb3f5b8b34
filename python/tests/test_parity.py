"""nabla.MLPClassifier against scikit-learn's MLPClassifier: the same numbers from the
same starting weights, partial_fit, pickling, warnings, dtypes and the released GIL."""

import pickle
import threading
import time
import warnings

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.datasets import load_digits, make_multilabel_classification, make_regression
from sklearn.exceptions import ConvergenceWarning
from sklearn.neural_network import MLPClassifier as ScikitLearnMLPClassifier
from sklearn.neural_network import MLPRegressor as ScikitLearnMLPRegressor

from nabla import MLPClassifier, MLPRegressor

RTOL = 1e-10

SOLVERS = {
    "sgd": dict(solver="sgd", momentum=0.0),
    "momentum": dict(solver="sgd", momentum=0.9, nesterovs_momentum=False),
    "nesterov": dict(solver="sgd", momentum=0.9, nesterovs_momentum=True),
    "adam": dict(solver="adam"),
}


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return X[:600] / 16.0, y[:600]


def quietly(function, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return function(*args, **kwargs)


def assert_same_fit(ours, theirs, rtol=RTOL, atol=1e-12):
    """Curves, weights and counters equal to ``rtol`` (relative) and ``atol``."""
    assert ours.n_iter_ == theirs.n_iter_
    assert ours.t_ == theirs.t_
    assert len(ours.loss_curve_) == len(theirs.loss_curve_)
    assert_allclose(ours.loss_curve_, theirs.loss_curve_, rtol=rtol, atol=0)
    assert_allclose(ours.loss_, theirs.loss_, rtol=rtol)
    for mine, reference in zip(ours.coefs_ + ours.intercepts_, theirs.coefs_ + theirs.intercepts_):
        assert mine.dtype == reference.dtype
        assert_allclose(mine, reference, rtol=rtol, atol=atol)
    assert ours.out_activation_ == theirs.out_activation_
    assert ours.n_layers_ == theirs.n_layers_
    assert ours.n_outputs_ == theirs.n_outputs_
    if hasattr(theirs, "classes_"):
        assert_array_equal(ours.classes_, theirs.classes_)


@pytest.mark.parametrize("solver", SOLVERS)
def test_fit_from_the_same_weights_equals_scikit_learn(digits, solver):
    """The issue's parity test: scikit-learn fitted once gives the starting weights,
    copied into both with warm_start=True; float64, shuffle=False, alpha > 0."""
    X, y = digits
    start = quietly(
        ScikitLearnMLPClassifier(hidden_layer_sizes=(40, 20), max_iter=3, random_state=7).fit, X, y
    )
    params = dict(
        hidden_layer_sizes=(40, 20), alpha=1e-3, batch_size=64, learning_rate_init=0.05,
        max_iter=5, shuffle=False, warm_start=True, random_state=0, **SOLVERS[solver],
    )
    if solver == "adam":
        params["learning_rate_init"] = 0.005
    fitted = []
    for estimator in (MLPClassifier(**params), ScikitLearnMLPClassifier(**params)):
        quietly(estimator.fit, X, y)  # defines classes_ and the layers
        estimator.coefs_ = [c.copy() for c in start.coefs_]
        estimator.intercepts_ = [b.copy() for b in start.intercepts_]
        quietly(estimator.fit, X, y)
        fitted.append(estimator)
    ours, theirs = fitted
    assert_same_fit(ours, theirs)
    assert len(ours.loss_curve_) == 10
    assert_array_equal(ours.predict(X), theirs.predict(X))
    assert_allclose(ours.predict_proba(X), theirs.predict_proba(X), rtol=RTOL, atol=1e-13)


@pytest.mark.parametrize(
    "params",
    [
        dict(solver="sgd", shuffle=True),
        dict(solver="adam", shuffle=True, activation="tanh"),
        dict(solver="sgd", learning_rate="invscaling", learning_rate_init=0.5, activation="logistic"),
        dict(solver="sgd", learning_rate="adaptive", tol=0.05, n_iter_no_change=1, max_iter=12),
        dict(solver="adam", tol=0.05, n_iter_no_change=2, max_iter=30, activation="identity"),
        dict(solver="adam", early_stopping=True, validation_fraction=0.2, max_iter=12),
        dict(solver="sgd", early_stopping=True, tol=0.5, n_iter_no_change=2, max_iter=20),
        dict(solver="sgd", tol=0.5, n_iter_no_change=np.inf, max_iter=8),
        dict(solver="sgd", early_stopping=True, tol=0.5, n_iter_no_change=2**70, max_iter=8),
    ],
    ids=[
        "shuffle",
        "adam-tanh",
        "invscaling",
        "adaptive",
        "tol-stop",
        "early-stopping",
        "early-stop-tol",
        "never-stop-inf",
        "never-stop-2**70",
    ],
)
def test_random_state_gives_scikit_learns_run(digits, params):
    """From scratch with the same random_state: the same initial weights, shuffling,
    validation split, schedules and stopping rule as scikit-learn."""
    X, y = digits
    common = dict(hidden_layer_sizes=(30,), alpha=1e-4, max_iter=6, random_state=3, batch_size=50)
    common.update(params)
    ours = quietly(MLPClassifier(**common).fit, X, y)
    theirs = quietly(ScikitLearnMLPClassifier(**common).fit, X, y)
    assert_same_fit(ours, theirs)
    if common.get("early_stopping"):
        assert_allclose(ours.validation_scores_, theirs.validation_scores_, rtol=0, atol=0)
        assert ours.best_validation_score_ == theirs.best_validation_score_
        assert ours.best_loss_ is None and theirs.best_loss_ is None
    else:
        assert ours.validation_scores_ is None
        assert_allclose(ours.best_loss_, theirs.best_loss_, rtol=RTOL)
    never = common.get("n_iter_no_change", 10) >= 2**62
    if never:
        # n_iter_no_change=np.inf (or a count no run reaches) turns the rule off.
        assert ours.n_iter_ == theirs.n_iter_ == common["max_iter"]
    elif common.get("tol", 0) >= 0.05 and common.get("learning_rate") != "adaptive":
        # The tol / n_iter_no_change rule stopped both runs at the same epoch.
        assert ours.n_iter_ < common["max_iter"]


@pytest.mark.parametrize("kind", ["binary", "multilabel"])
def test_logistic_outputs_equal_scikit_learn(digits, kind):
    X, y = digits
    if kind == "binary":
        y = np.where(y % 2 == 0, "even", "odd")
    else:
        X, y = make_multilabel_classification(n_samples=300, n_features=20, n_classes=4, random_state=0)
    params = dict(hidden_layer_sizes=(16,), solver="sgd", learning_rate_init=0.1, max_iter=5, random_state=2, alpha=1e-3)
    ours = quietly(MLPClassifier(**params).fit, X, y)
    theirs = quietly(ScikitLearnMLPClassifier(**params).fit, X, y)
    assert ours.out_activation_ == "logistic"
    assert_same_fit(ours, theirs)
    assert_array_equal(ours.predict(X), theirs.predict(X))
    assert_allclose(ours.predict_proba(X), theirs.predict_proba(X), rtol=RTOL, atol=1e-13)
    assert ours.score(X, y) == theirs.score(X, y)


@pytest.mark.parametrize("solver", ["sgd", "adam"])
def test_partial_fit_over_mini_batches_equals_scikit_learn(digits, solver):
    X, y = digits
    classes = np.unique(y)
    start = quietly(ScikitLearnMLPClassifier(hidden_layer_sizes=(25,), max_iter=2, random_state=11).fit, X, y)
    params = dict(hidden_layer_sizes=(25,), alpha=1e-3, random_state=5, **SOLVERS[solver])
    fitted = []
    for estimator in (MLPClassifier(**params), ScikitLearnMLPClassifier(**params)):
        estimator.partial_fit(X[:100], y[:100], classes=classes)
        estimator.coefs_ = [c.copy() for c in start.coefs_]
        estimator.intercepts_ = [b.copy() for b in start.intercepts_]
        for first in range(100, 600, 100):
            estimator.partial_fit(X[first : first + 100], y[first : first + 100])
        fitted.append(estimator)
    ours, theirs = fitted
    assert_same_fit(ours, theirs)
    assert ours.n_iter_ == 1 and ours.t_ == 600


def test_float32_trains_in_float32(digits):
    X, y = digits
    X = X.astype(np.float32)
    params = dict(hidden_layer_sizes=(30,), solver="sgd", learning_rate_init=0.1, max_iter=4, random_state=0)
    ours = quietly(MLPClassifier(**params).fit, X, y)
    theirs = quietly(ScikitLearnMLPClassifier(**params).fit, X, y)
    assert all(c.dtype == np.float32 for c in ours.coefs_ + ours.intercepts_)
    assert ours.predict_proba(X).dtype == np.float32
    # float32 rounding (BLAS order, float32 loss sums in scikit-learn) but the same run.
    assert_same_fit(ours, theirs, rtol=1e-4, atol=1e-5)


def test_pickle_keeps_predictions_and_solver_state(digits):
    X, y = digits
    estimator = quietly(MLPClassifier(hidden_layer_sizes=(20,), max_iter=3, random_state=0).fit, X, y)
    copy = pickle.loads(pickle.dumps(estimator))
    assert_array_equal(copy.predict(X), estimator.predict(X))
    assert_array_equal(copy.predict_proba(X), estimator.predict_proba(X))
    assert copy.loss_curve_ == estimator.loss_curve_
    # Adam's moments and step count travel too: both continue identically.
    estimator.partial_fit(X, y)
    copy.partial_fit(X, y)
    for a, b in zip(estimator.coefs_ + estimator.intercepts_, copy.coefs_ + copy.intercepts_):
        assert_array_equal(a, b)


def test_assigned_weights_are_used_for_prediction(digits):
    X, y = digits
    estimator = quietly(MLPClassifier(hidden_layer_sizes=(20,), max_iter=2, random_state=0).fit, X, y)
    reference = quietly(ScikitLearnMLPClassifier(hidden_layer_sizes=(20,), max_iter=2, random_state=1).fit, X, y)
    estimator.coefs_ = reference.coefs_
    estimator.intercepts_ = reference.intercepts_
    assert_allclose(estimator.predict_proba(X), reference.predict_proba(X), rtol=1e-12, atol=1e-15)


def test_warnings_and_refusals(digits):
    X, y = digits
    with pytest.warns(ConvergenceWarning, match=r"Maximum iterations \(2\) reached"):
        MLPClassifier(hidden_layer_sizes=(10,), max_iter=2).fit(X, y)
    with pytest.raises(ValueError, match="partial_fit does not support early_stopping"):
        MLPClassifier(early_stopping=True).partial_fit(X, y, classes=np.unique(y))
    with pytest.raises(ValueError, match="hidden_layer_sizes must be > 0"):
        MLPClassifier(hidden_layer_sizes=(10, 0)).fit(X, y)
    with pytest.raises(ValueError, match="non-finite parameter weights"):
        quietly(MLPClassifier(solver="sgd", learning_rate_init=1e300, max_iter=2).fit, X * 1e300, y)


def test_verbose_lines_equal_scikit_learns(digits, capsys):
    X, y = digits
    params = dict(hidden_layer_sizes=(15,), solver="sgd", learning_rate="adaptive", tol=0.05,
                  n_iter_no_change=1, max_iter=6, early_stopping=True, verbose=True, random_state=0)
    quietly(MLPClassifier(**params).fit, X, y)
    ours = capsys.readouterr().out
    quietly(ScikitLearnMLPClassifier(**params).fit, X, y)
    theirs = capsys.readouterr().out
    assert "Validation score" in ours
    # The last digits of the loss may differ in rounding; the lines and values agree.
    assert [line.split(" = ")[0] for line in ours.splitlines()] == [
        line.split(" = ")[0] for line in theirs.splitlines()
    ]


def test_fit_releases_the_gil():
    rng = np.random.default_rng(0)
    X = rng.random((20000, 100))
    y = rng.integers(0, 10, 20000)
    estimator = MLPClassifier(hidden_layer_sizes=(256,), max_iter=4, random_state=0)
    worker = threading.Thread(target=quietly, args=(estimator.fit, X, y))
    started = time.perf_counter()
    worker.start()
    ticks = 0
    while worker.is_alive():
        time.sleep(0.002)
        ticks += 1
    elapsed = time.perf_counter() - started
    assert estimator.n_iter_ == 4
    # With the GIL held by fit, this loop would stall for the whole fit.
    assert elapsed > 0.05
    assert ticks >= elapsed / 0.002 / 10, (ticks, elapsed)


@pytest.mark.parametrize(
    "params",
    [
        dict(solver="sgd", momentum=0.0, shuffle=False),
        dict(solver="sgd", momentum=0.9, activation="tanh"),
        dict(solver="adam", early_stopping=True, validation_fraction=0.25),
    ],
    ids=["sgd", "nesterov-tanh", "adam-early-stopping"],
)
@pytest.mark.parametrize("n_targets", [1, 3])
def test_regressor_equals_scikit_learn(params, n_targets):
    X, y = make_regression(n_samples=200, n_features=8, n_targets=n_targets, noise=0.1, random_state=0)
    y = y / 100.0
    common = dict(hidden_layer_sizes=(20, 10), alpha=1e-3, learning_rate_init=0.01, max_iter=8, random_state=4, **params)
    ours = quietly(MLPRegressor(**common).fit, X, y)
    theirs = quietly(ScikitLearnMLPRegressor(**common).fit, X, y)
    assert ours.out_activation_ == "identity"
    assert_same_fit(ours, theirs)
    assert ours.predict(X).shape == theirs.predict(X).shape
    assert_allclose(ours.predict(X), theirs.predict(X), rtol=RTOL, atol=1e-12)
    assert_allclose(ours.score(X, y), theirs.score(X, y), rtol=RTOL)
    if params.get("early_stopping"):
        # R^2 on the validation split, as scikit-learn's _score for regressors.
        assert_allclose(ours.validation_scores_, theirs.validation_scores_, rtol=RTOL)


def test_regressor_partial_fit_equals_scikit_learn():
    X, y = make_regression(n_samples=300, n_features=6, noise=0.5, random_state=1)
    y = y / 50.0
    params = dict(hidden_layer_sizes=(12,), solver="sgd", learning_rate_init=0.01, random_state=0)
    fitted = []
    for estimator in (MLPRegressor(**params), ScikitLearnMLPRegressor(**params)):
        for first in range(0, 300, 60):
            estimator.partial_fit(X[first : first + 60], y[first : first + 60])
        fitted.append(estimator)
    assert_same_fit(*fitted)


def test_ctrl_c_ends_the_fit_with_scikit_learns_warning(tmp_path):
    """SIGINT during fit: the epoch ends, the fit returns what it has and warns, as
    scikit-learn's (which catches KeyboardInterrupt)."""
    import signal
    import subprocess
    import sys

    script = tmp_path / "fit.py"
    script.write_text(
        "import signal, warnings\n"
        "signal.signal(signal.SIGINT, signal.default_int_handler)\n"
        "import numpy as np\n"
        "from nabla import MLPClassifier\n"
        "rng = np.random.default_rng(0)\n"
        "X, y = rng.random((4000, 50)), rng.integers(0, 3, 4000)\n"
        "model = MLPClassifier(hidden_layer_sizes=(64,), max_iter=100000, tol=0,\n"
        "                      n_iter_no_change=10**9, verbose=True, random_state=0)\n"
        "with warnings.catch_warnings(record=True) as caught:\n"
        "    warnings.simplefilter('always')\n"
        "    model.fit(X, y)\n"
        "print('DONE', model.n_iter_, len(model.loss_curve_), [str(w.message) for w in caught], flush=True)\n"
    )
    child = subprocess.Popen(
        [sys.executable, str(script)], stdout=subprocess.PIPE, text=True
    )
    for line in child.stdout:
        if line.startswith("Iteration 3,"):
            child.send_signal(signal.SIGINT)
            break
    rest = child.stdout.read()
    assert child.wait(timeout=60) == 0, rest
    done = [line for line in rest.splitlines() if line.startswith("DONE")]
    assert done, rest
    _, n_iter, curve, *_ = done[0].split(" ", 3)
    assert 3 <= int(n_iter) < 100000 and n_iter == curve
    assert "Training interrupted by user." in done[0]


def test_a_damaged_pickle_is_refused_not_a_panic(digits):
    X, y = digits
    estimator = quietly(MLPClassifier(hidden_layer_sizes=(8,), max_iter=2, random_state=0).fit, X, y)
    state = estimator.__getstate__()
    state["_core_state"]["solver"]["ms"] = state["_core_state"]["solver"]["ms"][:-1]
    with pytest.raises(ValueError, match="solver state does not fit"):
        MLPClassifier().__setstate__(state)
    state = estimator.__getstate__()
    state["_core_state"]["best_coefs"] = state["_core_state"]["best_coefs"][::-1]
    with pytest.raises(ValueError, match="best weights"):
        MLPClassifier().__setstate__(state)
    state = estimator.__getstate__()
    state["_core_state"]["solver"]["kind"] = "rmsprop"
    with pytest.raises(ValueError, match="unknown stochastic solver 'rmsprop'"):
        MLPClassifier().__setstate__(state)


@pytest.mark.parametrize(
    "params",
    [
        dict(solver="sgd", momentum=0.0),
        dict(solver="sgd", momentum=0.9, shuffle=True),
        dict(solver="adam", early_stopping=True, validation_fraction=0.2),
    ],
    ids=["sgd", "nesterov-shuffle", "adam-early-stopping"],
)
def test_sample_weight_equals_scikit_learn(digits, params):
    X, y = digits
    weights = np.random.default_rng(0).uniform(0.1, 3.0, len(y))
    common = dict(hidden_layer_sizes=(25,), alpha=1e-3, learning_rate_init=0.05, max_iter=5,
                  shuffle=False, random_state=6, batch_size=64)
    common.update(params)
    if common["solver"] == "adam":
        common["learning_rate_init"] = 0.005
    ours = quietly(MLPClassifier(**common).fit, X, y, sample_weight=weights)
    theirs = quietly(ScikitLearnMLPClassifier(**common).fit, X, y, sample_weight=weights)
    assert_same_fit(ours, theirs)
    if common.get("early_stopping"):
        # Weighted accuracy on the weighted validation split, as scikit-learn's.
        assert_allclose(ours.validation_scores_, theirs.validation_scores_, rtol=RTOL)
    assert ours.score(X, y, sample_weight=weights) == theirs.score(X, y, sample_weight=weights)
    # The weights matter: an unweighted fit ends elsewhere.
    plain = quietly(MLPClassifier(**common).fit, X, y)
    assert not np.allclose(plain.coefs_[0], ours.coefs_[0])


def test_regressor_sample_weight_and_partial_fit_equal_scikit_learn():
    X, y = make_regression(n_samples=240, n_features=6, n_targets=2, noise=0.5, random_state=2)
    y = y / 50.0
    weights = np.random.default_rng(1).uniform(0.5, 2.0, len(y))
    params = dict(hidden_layer_sizes=(12,), solver="adam", learning_rate_init=0.01, random_state=0,
                  early_stopping=False)
    fitted = []
    for estimator in (MLPRegressor(**params), ScikitLearnMLPRegressor(**params)):
        for first in range(0, 240, 80):
            rows = slice(first, first + 80)
            estimator.partial_fit(X[rows], y[rows], sample_weight=weights[rows])
        fitted.append(estimator)
    assert_same_fit(*fitted)
    ours, theirs = fitted
    assert_allclose(ours.score(X, y, sample_weight=weights), theirs.score(X, y, sample_weight=weights), rtol=RTOL)
