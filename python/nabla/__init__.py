"""nabla from Python: scikit-learn's ``MLPClassifier`` and ``MLPRegressor`` on nabla's
Rust engine.

    from nabla import MLPClassifier   # instead of sklearn.neural_network

Same parameters, attributes and methods as scikit-learn's; see ``MLPClassifier``'s
docstring for the few differences.
"""

from . import _threadpool  # noqa: F401  (registers nabla with threadpoolctl)
from ._core import thread_budget
from ._sklearn import MLPClassifier, MLPRegressor

__all__ = ["MLPClassifier", "MLPRegressor", "thread_budget"]
