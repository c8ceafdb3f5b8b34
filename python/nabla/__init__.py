"""nabla from Python: scikit-learn's ``MLPClassifier`` and ``MLPRegressor`` on nabla's
Rust engine.

    from nabla import MLPClassifier   # instead of sklearn.neural_network

Same parameters, attributes and methods as scikit-learn's; see ``MLPClassifier``'s
docstring for the few differences.
"""

import os as _os


def _fit_openblas_to_address_space():
    """Under a tight address-space limit (``ulimit -v``, ``RLIMIT_AS``), fewer OpenBLAS
    threads. OpenBLAS starts one thread per core but one when it loads, each taking a
    128 MiB buffer at once; a thread that cannot have it retries forever. So, when the
    limit leaves no room for them and ``OPENBLAS_NUM_THREADS`` is not set, the system
    OpenBLAS (loaded with nabla's extension below) is loaded with what fits."""
    import resource

    if "OPENBLAS_NUM_THREADS" in _os.environ:
        return None
    limit = resource.getrlimit(resource.RLIMIT_AS)[0]
    if limit == resource.RLIM_INFINITY:
        return None
    try:
        with open("/proc/self/statm") as statm:
            mapped = int(statm.read().split()[0]) * _os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError):
        return None
    room = max(1, (limit - mapped) // (2 * (192 << 20)))
    if room >= len(_os.sched_getaffinity(0)):
        return None
    _os.environ["OPENBLAS_NUM_THREADS"] = str(room)
    return "OPENBLAS_NUM_THREADS"


_set = _fit_openblas_to_address_space()
from . import _threadpool  # noqa: E402,F401  (registers nabla with threadpoolctl)
from ._core import thread_budget  # noqa: E402

if _set:  # read by OpenBLAS as it loaded; the rest of the process keeps its environment
    del _os.environ[_set]
from ._sklearn import MLPClassifier, MLPRegressor  # noqa: E402

__all__ = ["MLPClassifier", "MLPRegressor", "thread_budget"]
