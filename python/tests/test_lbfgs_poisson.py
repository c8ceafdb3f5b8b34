"""solver='lbfgs' and loss='poisson' against scikit-learn itself: the same runs from the
same random_state, compared in the same test."""

import warnings

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.datasets import load_digits, make_multilabel_classification, make_regression
from sklearn.exceptions import ConvergenceWarning
from sklearn.neural_network import MLPClassifier as ScikitLearnMLPClassifier
from sklearn.neural_network import MLPRegressor as ScikitLearnMLPRegressor

from nabla import MLPClassifier, MLPRegressor

# The bar for L-BFGS in float64. Over a few dozen iterations the two stay well
# inside it; run to convergence on a flat objective, L-BFGS amplifies the last-bit
# differences of two BLAS libraries (see the README), so these runs stop at max_iter.
RTOL = 1e-8


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return X[:500] / 16.0, y[:500]


def fit_both(ours, theirs, *args, **kwargs):
    """Both estimators fitted on the same data; their warnings, as strings."""
    caught = []
    for estimator in (ours, theirs):
        with warnings.catch_warnings(record=True) as records:
            warnings.simplefilter("always")
            estimator.fit(*args, **kwargs)
        caught.append([f"{r.category.__name__}: {r.message}" for r in records])
    return caught


def assert_same_weights(ours, theirs, rtol=RTOL):
    for mine, reference in zip(ours.coefs_ + ours.intercepts_, theirs.coefs_ + theirs.intercepts_):
        assert mine.dtype == reference.dtype
        assert_allclose(mine, reference, rtol=rtol, atol=rtol * 1e-3)


def assert_same_lbfgs_fit(ours, theirs, rtol=RTOL):
    assert ours.n_iter_ == theirs.n_iter_
    assert type(ours.loss_) is type(theirs.loss_)
    assert_allclose(ours.loss_, theirs.loss_, rtol=rtol)
    assert_same_weights(ours, theirs, rtol)
    assert ours.out_activation_ == theirs.out_activation_
    assert ours.t_ == theirs.t_
    # scikit-learn's lbfgs keeps no curve and no stochastic counters.
    for name in ("loss_curve_", "best_loss_", "validation_scores_", "_optimizer"):
        assert hasattr(ours, name) == hasattr(theirs, name), name


@pytest.mark.parametrize(
    "params",
    [
        dict(hidden_layer_sizes=(40, 20), max_iter=30),
        dict(hidden_layer_sizes=(30,), activation="tanh", alpha=1e-2, max_iter=30),
        dict(hidden_layer_sizes=(30,), activation="logistic", max_iter=30),
        dict(hidden_layer_sizes=(25,), activation="identity", max_iter=20, tol=1e-3),
    ],
    ids=["relu-2-layers", "tanh-alpha", "logistic", "identity"],
)
def test_lbfgs_classifier_equals_scikit_learn(digits, params):
    X, y = digits
    common = dict(solver="lbfgs", random_state=3, **params)
    ours, theirs = MLPClassifier(**common), ScikitLearnMLPClassifier(**common)
    warned = fit_both(ours, theirs, X, y)
    assert warned[0] == warned[1]
    assert_same_lbfgs_fit(ours, theirs)
    assert_array_equal(ours.predict(X), theirs.predict(X))
    assert_allclose(ours.predict_proba(X), theirs.predict_proba(X), rtol=1e-6, atol=1e-9)


def test_lbfgs_max_iter_warning_equals_scikit_learns(digits):
    X, y = digits
    common = dict(solver="lbfgs", hidden_layer_sizes=(10,), max_iter=3, random_state=0)
    ours, theirs = MLPClassifier(**common), ScikitLearnMLPClassifier(**common)
    warned = fit_both(ours, theirs, X, y)
    assert any("lbfgs failed to converge after 3 iteration(s)" in w for w in warned[0])
    assert warned[0] == warned[1]
    # max_fun stops it too, with scikit-learn's message.
    common = dict(solver="lbfgs", hidden_layer_sizes=(10,), max_fun=5, random_state=0)
    ours, theirs = MLPClassifier(**common), ScikitLearnMLPClassifier(**common)
    warned = fit_both(ours, theirs, X, y)
    assert warned[0] == warned[1] and warned[0]
    assert_same_lbfgs_fit(ours, theirs)


def test_lbfgs_binary_multilabel_and_weights_equal_scikit_learn(digits):
    X, y = digits
    weights = np.random.default_rng(0).uniform(0.2, 3.0, len(y))
    common = dict(solver="lbfgs", hidden_layer_sizes=(20,), max_iter=25, random_state=1)
    ours, theirs = MLPClassifier(**common), ScikitLearnMLPClassifier(**common)
    fit_both(ours, theirs, X, y > 4, sample_weight=weights)
    assert ours.out_activation_ == "logistic"
    assert_same_lbfgs_fit(ours, theirs)
    Xm, ym = make_multilabel_classification(n_samples=200, n_features=10, n_classes=4, random_state=0)
    ours, theirs = MLPClassifier(**common), ScikitLearnMLPClassifier(**common)
    fit_both(ours, theirs, Xm / 10.0, ym)
    assert_same_lbfgs_fit(ours, theirs)
    assert_array_equal(ours.predict(Xm / 10.0), theirs.predict(Xm / 10.0))


@pytest.mark.parametrize("n_targets", [1, 3])
@pytest.mark.parametrize("loss", ["squared_error", "poisson"])
def test_lbfgs_regressor_equals_scikit_learn(n_targets, loss):
    X, y = make_regression(n_samples=300, n_features=8, n_targets=n_targets, noise=0.5, random_state=0)
    y = y / np.abs(y).max()
    if loss == "poisson":
        y = np.exp(y)
    common = dict(solver="lbfgs", loss=loss, hidden_layer_sizes=(15,), max_iter=30, random_state=2)
    ours, theirs = MLPRegressor(**common), ScikitLearnMLPRegressor(**common)
    warned = fit_both(ours, theirs, X, y)
    assert warned[0] == warned[1]
    assert_same_lbfgs_fit(ours, theirs)
    assert_allclose(ours.predict(X), theirs.predict(X), rtol=1e-7)
    assert_allclose(ours.score(X, y), theirs.score(X, y), rtol=1e-7)


def test_lbfgs_warm_start_continues_as_scikit_learn(digits):
    X, y = digits
    common = dict(solver="lbfgs", hidden_layer_sizes=(20,), max_iter=10, warm_start=True, random_state=0)
    ours, theirs = MLPClassifier(**common), ScikitLearnMLPClassifier(**common)
    fit_both(ours, theirs, X, y)
    fit_both(ours, theirs, X, y)
    assert_same_lbfgs_fit(ours, theirs)
    # The best weights scikit-learn keeps for lbfgs are the initial ones.
    for mine, reference in zip(ours._best_coefs, theirs._best_coefs):
        assert_allclose(mine, reference, rtol=1e-12)


def test_lbfgs_on_float32_evaluates_in_float32_and_ends_in_float64(digits):
    """scikit-learn packs float32 coefficients, so SciPy hands every evaluation a
    float32 point; the result is SciPy's float64 point."""
    X, y = digits
    X = X.astype(np.float32)
    common = dict(solver="lbfgs", hidden_layer_sizes=(20,), max_iter=5, random_state=0)
    ours, theirs = MLPClassifier(**common), ScikitLearnMLPClassifier(**common)
    fit_both(ours, theirs, X, y)
    assert ours.coefs_[0].dtype == theirs.coefs_[0].dtype == np.float64
    assert ours.n_iter_ == theirs.n_iter_
    # float32 evaluations: equal to float32's precision, not float64's.
    assert_same_weights(ours, theirs, rtol=1e-4)
    assert ours.predict_proba(X).dtype == theirs.predict_proba(X).dtype


def test_partial_fit_is_not_available_with_lbfgs():
    messages = []
    for estimator in (MLPClassifier(solver="lbfgs"), ScikitLearnMLPClassifier(solver="lbfgs")):
        with pytest.raises(AttributeError) as raised:
            estimator.partial_fit
        messages.append(str(raised.value))
    assert messages[0] == messages[1] == "This 'MLPClassifier' has no attribute 'partial_fit'"


@pytest.mark.parametrize(
    "params",
    [
        dict(solver="adam", learning_rate_init=0.01),
        dict(solver="sgd", learning_rate_init=0.01, momentum=0.9),
        dict(solver="adam", early_stopping=True, validation_fraction=0.2),
    ],
    ids=["adam", "sgd", "adam-early-stopping"],
)
@pytest.mark.parametrize("n_targets", [1, 2])
def test_poisson_equals_scikit_learn(params, n_targets):
    rng = np.random.default_rng(5)
    X = rng.normal(size=(240, 6))
    rate = np.exp(X[:, :n_targets] * 0.5)
    y = rng.poisson(rate).astype(float)
    if n_targets == 1:
        y = y.ravel()
    common = dict(loss="poisson", hidden_layer_sizes=(12,), max_iter=12, random_state=0, **params)
    ours, theirs = MLPRegressor(**common), ScikitLearnMLPRegressor(**common)
    fit_both(ours, theirs, X, y)
    assert ours.out_activation_ == theirs.out_activation_ == "exp"
    assert ours.n_iter_ == theirs.n_iter_
    assert_allclose(ours.loss_curve_, theirs.loss_curve_, rtol=1e-10)
    assert_same_weights(ours, theirs, rtol=1e-10)
    assert_allclose(ours.predict(X), theirs.predict(X), rtol=1e-10)
    assert (ours.predict(X) > 0).all()
    if params.get("early_stopping"):
        assert_allclose(ours.validation_scores_, theirs.validation_scores_, rtol=1e-10)
