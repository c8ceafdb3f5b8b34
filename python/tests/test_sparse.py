"""Sparse input (SciPy CSR and CSC) in fit, partial_fit and predict, against scikit-learn
on the same matrices, and the memory a sparse fit takes."""

import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.neural_network import MLPClassifier as ScikitLearnMLPClassifier
from sklearn.neural_network import MLPRegressor as ScikitLearnMLPRegressor

from nabla import MLPClassifier, MLPRegressor


def quietly(function, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return function(*args, **kwargs)


@pytest.fixture(scope="module")
def text_like():
    """A TF-IDF-like matrix: 400 rows, 300 columns, 3% stored, rows of unit norm."""
    X = sp.random(400, 300, density=0.03, format="csr", random_state=0)
    X = sp.diags(1.0 / np.maximum(sp.linalg.norm(X, axis=1), 1e-12)) @ X
    w = np.random.default_rng(0).normal(size=(300, 3))
    y = np.argmax(X @ w, axis=1)
    return X.tocsr(), y


def assert_same_weights(ours, theirs, rtol):
    for mine, reference in zip(ours.coefs_ + ours.intercepts_, theirs.coefs_ + theirs.intercepts_):
        assert mine.dtype == reference.dtype
        assert_allclose(mine, reference, rtol=rtol, atol=1e-12)


@pytest.mark.parametrize("fmt", ["csr", "csc"])
@pytest.mark.parametrize(
    "params",
    [
        dict(solver="adam"),
        dict(solver="sgd", learning_rate_init=0.1, momentum=0.0),
        dict(solver="sgd", learning_rate_init=0.1, momentum=0.9, shuffle=False),
        dict(solver="adam", early_stopping=True, validation_fraction=0.2),
        dict(solver="lbfgs", max_iter=25),
    ],
    ids=["adam", "sgd", "nesterov-in-order", "adam-early-stopping", "lbfgs"],
)
def test_sparse_fit_equals_scikit_learn(text_like, fmt, params):
    X, y = text_like
    X = X.asformat(fmt)
    common = dict(hidden_layer_sizes=(16,), max_iter=8, random_state=0) | params
    ours = quietly(MLPClassifier(**common).fit, X, y)
    theirs = quietly(ScikitLearnMLPClassifier(**common).fit, X, y)
    assert ours.n_iter_ == theirs.n_iter_
    assert_same_weights(ours, theirs, rtol=1e-8)
    if params["solver"] != "lbfgs":
        assert_allclose(ours.loss_curve_, theirs.loss_curve_, rtol=1e-10)
    if params.get("early_stopping"):
        assert_allclose(ours.validation_scores_, theirs.validation_scores_, rtol=1e-12)
    assert_allclose(ours.predict_proba(X), theirs.predict_proba(X), rtol=1e-7, atol=1e-12)
    # The same model on the dense rows predicts the same.
    assert_allclose(ours.predict_proba(X), ours.predict_proba(X.toarray()), rtol=1e-12, atol=1e-15)
    assert_array_equal(ours.predict(X), theirs.predict(X))


def test_sparse_partial_fit_and_regression_equal_scikit_learn(text_like):
    X, y = text_like
    targets = np.asarray(X @ np.linspace(-1, 1, X.shape[1])).ravel()
    fitted = []
    for cls in (MLPRegressor, ScikitLearnMLPRegressor):
        estimator = cls(hidden_layer_sizes=(10,), solver="sgd", learning_rate_init=0.05, random_state=1)
        for first in range(0, 400, 100):
            estimator.partial_fit(X[first : first + 100], targets[first : first + 100])
        fitted.append(estimator)
    ours, theirs = fitted
    assert ours.t_ == theirs.t_ == 400
    assert_allclose(ours.loss_curve_, theirs.loss_curve_, rtol=1e-10)
    assert_same_weights(ours, theirs, rtol=1e-10)
    assert_allclose(ours.predict(X), theirs.predict(X), rtol=1e-9, atol=1e-12)
    # Poisson on sparse rows, float32 data (the model trains in float32).
    X32 = X.astype(np.float32)
    counts = np.round(np.exp(targets)).astype(np.float32)
    ours = quietly(MLPRegressor(loss="poisson", hidden_layer_sizes=(8,), max_iter=5, random_state=0).fit, X32, counts)
    theirs = quietly(ScikitLearnMLPRegressor(loss="poisson", hidden_layer_sizes=(8,), max_iter=5, random_state=0).fit, X32, counts)
    assert ours.coefs_[0].dtype == np.float32
    assert_allclose(ours.loss_curve_, theirs.loss_curve_, rtol=1e-4)


def test_a_sparse_fit_takes_memory_of_its_batch_not_of_the_dense_matrix():
    """50,000 rows x 2,000,000 columns: 800 GB dense, 200 stored values a row... the
    fit's peak memory stays that of the stored values and the weights."""
    script = textwrap.dedent(
        """
        import resource, warnings
        import numpy as np, scipy.sparse as sp
        from nabla import MLPClassifier
        rows, cols, per_row = 50_000, 2_000_000, 5
        rng = np.random.default_rng(0)
        indices = rng.integers(0, cols, rows * per_row)
        indptr = np.arange(0, rows * per_row + 1, per_row)
        X = sp.csr_matrix((rng.random(rows * per_row), indices, indptr), shape=(rows, cols))
        y = rng.integers(0, 2, rows)
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = MLPClassifier(hidden_layer_sizes=(4,), batch_size=1000, max_iter=1).fit(X, y)
        assert model.predict(X[:10]).shape == (10,)
        print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before)
        """
    )
    grown_kib = int(subprocess.run([sys.executable, "-c", script], check=True, capture_output=True, text=True).stdout)
    # Weights, gradients and Adam's moments: 4 x 2,000,000 x 8 bytes x 4 = 256 MB. One
    # densified batch alone would be 1,000 x 2,000,000 x 8 bytes = 16 GB.
    assert grown_kib < 600_000, grown_kib
