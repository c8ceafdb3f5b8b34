"""What a scikit-learn user's code relies on beyond the numbers of a plain fit, each
compared with scikit-learn's own behaviour in the same test: hand-set attributes,
warm starts with another architecture, a diverged fit under early stopping, NaN under
assume_finite, the types and errors a test suite checks, and the private state users
read (``_optimizer``, ``_no_improvement_count``, ``_best_coefs``)."""

import warnings

import numpy as np
import pytest
import sklearn
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.datasets import load_digits, load_iris
from sklearn.exceptions import ConvergenceWarning
from sklearn.neural_network import MLPClassifier as ScikitLearnMLPClassifier
from sklearn.neural_network import MLPRegressor as ScikitLearnMLPRegressor

from nabla import MLPClassifier, MLPRegressor

PAIRS = [(MLPClassifier, ScikitLearnMLPClassifier)]


@pytest.fixture(scope="module")
def iris():
    X, y = load_iris(return_X_y=True)
    return (X - X.mean(0)) / X.std(0), y


def quietly(function, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return function(*args, **kwargs)


def outcome(function, *args, **kwargs):
    """``('ok', result)`` or ``('raised', exception)``."""
    try:
        return "ok", quietly(function, *args, **kwargs)
    except Exception as error:  # noqa: BLE001 - the test compares what was raised
        return "raised", error


def hand_set_one_sgd_step(cls):
    """scikit-learn's worked example of one SGD step (its test_fit): every fitted
    attribute assigned by hand, then one partial_fit."""
    X = np.array([[0.6, 0.8, 0.7]])
    y = np.array([0])
    mlp = cls(solver="sgd", learning_rate_init=0.1, alpha=0.1, activation="logistic",
              random_state=1, max_iter=1, hidden_layer_sizes=2, momentum=0)
    mlp.coefs_ = [0] * 2
    mlp.intercepts_ = [0] * 2
    mlp.n_outputs_ = 1
    mlp.coefs_[0] = np.array([[0.1, 0.2], [0.3, 0.1], [0.5, 0]])
    mlp.coefs_[1] = np.array([[0.1], [0.2]])
    mlp.intercepts_[0] = np.array([0.1, 0.1])
    mlp.intercepts_[1] = np.array([1.0])
    mlp._coef_grads = [] * 2
    mlp._intercept_grads = [] * 2
    mlp.n_features_in_ = 3
    mlp.n_iter_ = 0
    mlp.learning_rate_ = 0.1
    mlp.n_layers_ = 3
    mlp._coef_grads = [0] * (mlp.n_layers_ - 1)
    mlp._intercept_grads = [0] * (mlp.n_layers_ - 1)
    mlp.out_activation_ = "logistic"
    mlp.t_ = 0
    mlp.best_loss_ = np.inf
    mlp.loss_curve_ = []
    mlp._no_improvement_count = 0
    mlp._intercept_velocity = [np.zeros_like(b) for b in mlp.intercepts_]
    mlp._coef_velocity = [np.zeros_like(c) for c in mlp.coefs_]
    mlp.partial_fit(X, y, classes=[0, 1])
    return mlp


def test_hand_set_attributes_then_partial_fit_equal_scikit_learn():
    ours = hand_set_one_sgd_step(MLPClassifier)
    theirs = hand_set_one_sgd_step(ScikitLearnMLPClassifier)
    for mine, reference in zip(ours.coefs_ + ours.intercepts_, theirs.coefs_ + theirs.intercepts_):
        assert_allclose(mine, reference, rtol=1e-12)
    # scikit-learn's manually worked values.
    assert_allclose(ours.coefs_[0], [[0.098, 0.195756], [0.2956664, 0.096008], [0.4939998, -0.002244]], atol=1e-3)
    assert_allclose(ours.coefs_[1], [[0.04706], [0.154089]], atol=1e-3)
    assert_allclose(ours.intercepts_[1], [0.9235], atol=1e-3)
    assert ours.t_ == theirs.t_ == 1
    assert_allclose(ours.loss_curve_, theirs.loss_curve_, rtol=1e-12)
    assert_allclose(ours.predict_proba(np.array([[0.6, 0.8, 0.7]])), theirs.predict_proba(np.array([[0.6, 0.8, 0.7]])), rtol=1e-12)


def test_hand_set_progress_is_what_the_fit_continues_from(iris):
    X, y = iris
    fitted = []
    for cls in (MLPClassifier, ScikitLearnMLPClassifier):
        estimator = quietly(cls(hidden_layer_sizes=(8,), max_iter=3, warm_start=True, random_state=0).fit, X, y)
        estimator.t_ = 10_000
        estimator.loss_curve_ = [9.0, 8.0]
        estimator.best_loss_ = 0.0
        estimator._no_improvement_count = 5
        quietly(estimator.fit, X, y)
        fitted.append(estimator)
    ours, theirs = fitted
    assert ours.t_ == theirs.t_
    assert_allclose(ours.loss_curve_, theirs.loss_curve_, rtol=1e-10)
    assert ours._no_improvement_count == theirs._no_improvement_count
    assert ours.n_iter_ == theirs.n_iter_


@pytest.mark.parametrize("solver", ["sgd", "adam", "lbfgs"])
@pytest.mark.parametrize("new_sizes", [(7,), (5, 5)], ids=["wider", "deeper"])
def test_warm_start_with_another_architecture_raises(iris, solver, new_sizes):
    """scikit-learn raises for a changed depth and with lbfgs, and silently keeps the
    fitted widths with sgd and adam; nabla raises a ValueError in every case."""
    X, y = iris
    results = []
    for cls in (MLPClassifier, ScikitLearnMLPClassifier):
        estimator = quietly(cls(hidden_layer_sizes=(5,), solver=solver, warm_start=True, max_iter=3, random_state=0).fit, X, y)
        estimator.set_params(hidden_layer_sizes=new_sizes)
        results.append(outcome(estimator.fit, X, y))
        if solver != "lbfgs":
            results.append(outcome(estimator.partial_fit, X, y))
    ours = results[: len(results) // 2]
    theirs = results[len(results) // 2 :]
    for (kind, error), (their_kind, _) in zip(ours, theirs):
        assert kind == "raised" and isinstance(error, ValueError), error
        assert "layer widths [4, 5, 3]" in str(error)
        if new_sizes == (5, 5) or solver == "lbfgs":
            assert their_kind == "raised"
    # The estimator is unchanged and still predicts.
    assert len(results) and ours


def test_early_stopping_after_the_loss_turns_nan_equals_scikit_learn(iris):
    X, y = iris
    params = dict(activation="logistic", solver="sgd", learning_rate_init=1e300,
                  early_stopping=True, random_state=0)
    results, estimators = [], []
    for cls in (MLPClassifier, ScikitLearnMLPClassifier):
        estimator = cls(**params)
        results.append(outcome(estimator.fit, X, y))
        estimators.append(estimator)
    ours, theirs = estimators
    assert results[0][0] == results[1][0] == "raised"
    assert str(results[0][1]) == str(results[1][1])
    assert ours.n_iter_ == theirs.n_iter_ < 20
    assert_array_equal(ours.validation_scores_, theirs.validation_scores_)
    assert np.isfinite(ours.validation_scores_).all()
    # The losses, inf and NaN included.
    assert_allclose(ours.loss_curve_, theirs.loss_curve_, rtol=1e-10)


@pytest.mark.parametrize("activation", ["relu", "tanh", "logistic", "identity"])
def test_nan_under_assume_finite_stays_nan(iris, activation):
    X, y = iris
    rows = X[:4].copy()
    rows[0, 0] = np.nan
    answers = []
    for cls in (MLPClassifier, ScikitLearnMLPClassifier):
        estimator = quietly(cls(activation=activation, max_iter=20, random_state=0).fit, X, y)
        with sklearn.config_context(assume_finite=True):
            answers.append((estimator.predict_proba(rows), estimator.predict(rows)))
    (ours_proba, ours), (theirs_proba, theirs) = answers
    assert np.isnan(ours_proba[0]).all() and np.isnan(theirs_proba[0]).all()
    assert_allclose(ours_proba, theirs_proba, rtol=1e-6)
    assert_array_equal(ours, theirs)
    # Outside assume_finite both refuse the NaN.
    with pytest.raises(ValueError, match="NaN"):
        MLPClassifier(max_iter=1).fit(rows, y[:4])


def test_stratified_split_error_names_the_classes_as_scikit_learn(iris):
    X, y = iris
    labels = np.array([0] * (len(y) - 1) + [1])
    messages = []
    for cls in (MLPClassifier, ScikitLearnMLPClassifier):
        kind, error = outcome(cls(early_stopping=True, max_iter=2).fit, X, labels)
        assert kind == "raised"
        messages.append(f"{type(error).__name__}: {error}")
    assert messages[0] == messages[1]


def test_fitted_attribute_types_equal_scikit_learns(iris):
    X, y = iris
    fitted = [quietly(cls(max_iter=3, random_state=0).fit, X, y) for cls in (MLPClassifier, ScikitLearnMLPClassifier)]
    ours, theirs = fitted
    for name in ("loss_", "best_loss_", "n_iter_", "t_", "_no_improvement_count"):
        assert type(getattr(ours, name)) is type(getattr(theirs, name)), name
    assert [type(v) for v in ours.loss_curve_] == [type(v) for v in theirs.loss_curve_]
    stopped = [quietly(cls(max_iter=3, early_stopping=True, random_state=0).fit, X, y) for cls in (MLPClassifier, ScikitLearnMLPClassifier)]
    ours, theirs = stopped
    assert ours.best_loss_ is None and theirs.best_loss_ is None
    assert type(ours.best_validation_score_) is type(theirs.best_validation_score_)
    assert [type(v) for v in ours.validation_scores_] == [type(v) for v in theirs.validation_scores_]


def test_regressor_refuses_string_targets_as_scikit_learn():
    X = np.arange(12.0).reshape(6, 2)
    y = np.array(["a", "b", "a", "b", "a", "b"])
    errors = [outcome(cls(max_iter=2).fit, X, y)[1] for cls in (MLPRegressor, ScikitLearnMLPRegressor)]
    assert type(errors[0]) is type(errors[1])
    assert isinstance(errors[0], TypeError)
    # Numbers written as strings are numbers to both.
    ok = [outcome(cls(max_iter=2, random_state=0).fit, X, np.array(["1.5", "2", "3", "1", "0", "2"], dtype=object))[0] for cls in (MLPRegressor, ScikitLearnMLPRegressor)]
    assert ok == ["ok", "ok"]


@pytest.mark.parametrize(
    "params",
    [
        dict(solver="sgd", learning_rate="adaptive", tol=0.5, n_iter_no_change=1, max_iter=12),
        dict(solver="sgd", learning_rate="invscaling", power_t=0.3, max_iter=5),
        dict(solver="sgd", learning_rate="constant", momentum=0.5, max_iter=4),
        dict(solver="adam", max_iter=5),
        dict(solver="adam", early_stopping=True, max_iter=6, validation_fraction=0.2),
    ],
    ids=["adaptive", "invscaling", "constant", "adam", "adam-early-stopping"],
)
def test_private_state_users_read_equals_scikit_learns(iris, params):
    X, y = iris
    common = dict(hidden_layer_sizes=(6,), learning_rate_init=0.05, random_state=0, **params)
    ours, theirs = [quietly(cls(**common).fit, X, y) for cls in (MLPClassifier, ScikitLearnMLPClassifier)]
    mine, reference = ours._optimizer, theirs._optimizer
    assert_allclose(mine.learning_rate, reference.learning_rate, rtol=1e-12)
    assert mine.learning_rate_init == reference.learning_rate_init
    if params["solver"] == "sgd":
        assert mine.lr_schedule == reference.lr_schedule
        assert (mine.momentum, mine.nesterov, mine.power_t) == (reference.momentum, reference.nesterov, reference.power_t)
        pairs = zip(mine.velocities, reference.velocities)
    else:
        assert mine.t == reference.t
        assert (mine.beta_1, mine.beta_2, mine.epsilon) == (reference.beta_1, reference.beta_2, reference.epsilon)
        pairs = list(zip(mine.ms, reference.ms)) + list(zip(mine.vs, reference.vs))
    for a, b in pairs:
        assert a.shape == b.shape
        assert_allclose(a, b, rtol=1e-8, atol=1e-14)
    assert ours._no_improvement_count == theirs._no_improvement_count
    for a, b in zip(ours._best_coefs + ours._best_intercepts, theirs._best_coefs + theirs._best_intercepts):
        assert_allclose(a, b, rtol=1e-10)
    # Before any stochastic fit there is no _optimizer, as in scikit-learn.
    assert not hasattr(MLPClassifier(), "_optimizer") and not hasattr(ScikitLearnMLPClassifier(), "_optimizer")


@pytest.mark.parametrize(
    "params, weights",
    [
        (dict(early_stopping=True), "validation-zero"),
        (dict(solver="lbfgs"), "sum-zero"),
        (dict(solver="sgd", batch_size=5, shuffle=False), "batch-zero"),
        (dict(solver="adam", batch_size=5, shuffle=False), "batch-zero"),
    ],
    ids=["early-stopping", "lbfgs", "sgd", "adam"],
)
def test_weights_that_sum_to_zero_are_refused_as_scikit_learn(params, weights):
    """Found by a hostile probe: nabla returned the initial network (NaN validation
    scores, a NaN L-BFGS loss) or blamed large values."""
    X, y = load_digits(return_X_y=True)
    X, y = X[:100] / 16.0, y[:100]
    sample_weight = {
        "validation-zero": np.where(np.isin(np.arange(100), [1, 3, 5, 7]), 1.0, 0.0),
        "sum-zero": np.r_[np.ones(50), -np.ones(50)],
        "batch-zero": np.r_[np.zeros(10), np.ones(90)],
    }[weights]
    errors = []
    for cls in (MLPClassifier, ScikitLearnMLPClassifier):
        kind, error = outcome(cls((10,), random_state=0, max_iter=5, **params).fit, X, y, sample_weight=sample_weight)
        assert kind == "raised"
        errors.append((type(error), str(error)))
    assert errors[0] == errors[1]


def test_partial_fit_extends_the_loss_curve_in_place_as_scikit_learn(iris):
    """Found by a hostile probe: a reference to loss_curve_ held across partial_fit
    calls went stale (and the whole curve was copied at each call)."""
    X, y = iris
    lengths = []
    for cls in (MLPClassifier, ScikitLearnMLPClassifier):
        estimator = cls(hidden_layer_sizes=(5,), random_state=0)
        estimator.partial_fit(X, y, classes=np.unique(y))
        curve = estimator.loss_curve_
        for _ in range(3):
            estimator.partial_fit(X, y)
        assert estimator.loss_curve_ is curve
        # A curve assigned by hand is the one continued.
        estimator.loss_curve_ = [1.0]
        estimator.partial_fit(X, y)
        lengths.append((len(curve), len(estimator.loss_curve_), estimator.t_))
    assert lengths[0] == lengths[1] == (4, 2, 5 * len(y))
