#!/usr/bin/env python3
"""nabla.MLPClassifier next to other work, from Python; every comparison paired (the
two sides back to back, in alternating order, REPEATS times; medians printed):

1. GridSearchCV(n_jobs=2) against n_jobs=1: 6 settings x 2 folds = 12 fits of
   MLPClassifier with its default network (one hidden layer of 100 ReLU units), and
   of a wider one (256), on scikit-learn's digits (4 copies: 7,188 rows), 50 epochs
   (about 1.4 s for n_jobs=1, the scale of the issue's 12 fits),
   for solver='sgd' (momentum=0) and 'adam', with joblib's loky (processes) and
   threading backends. Target: n_jobs=2 at least 1.3x faster. (The better one fit
   uses both cores, the less two fits at once can gain: the hidden layer of 256 units
   runs 1.4-1.5x faster on two threads than on one, which bounds n_jobs=2's gain to
   about 2 / 1.45 = 1.38x even with nothing else to share.)
2. Two fits in two Python threads against the same two one after the other (the
   default network, same data). Target: at least 1.3x faster.
3. One-row predict latency of a fitted 784-512-512-10 model: nabla against
   scikit-learn with the same weights, median of 1,000 calls each (alternating blocks
   of 100). Target: nabla's median at most scikit-learn's.

    python3 scripts/bench_sklearn_concurrency.py      # about 2 minutes on 2 cores
    QUICK=1 python3 scripts/bench_sklearn_concurrency.py   # one repeat, fewer calls (CI)
"""

import os
import platform
import statistics
import threading
import time
import warnings

import numpy as np
from joblib import parallel_config
from sklearn.datasets import load_digits
from sklearn.model_selection import GridSearchCV
from sklearn.neural_network import MLPClassifier as ScikitLearnMLPClassifier
from threadpoolctl import threadpool_info

import nabla
from nabla import MLPClassifier

QUICK = bool(os.environ.get("QUICK"))
REPEATS = int(os.environ.get("REPEATS", 1 if QUICK else 3))
CALLS = 200 if QUICK else 1000

warnings.simplefilter("ignore")


def machine():
    flags = set()
    with open("/proc/cpuinfo") as cpuinfo:
        for line in cpuinfo:
            if line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
                break
    shown = [f for f in ("avx2", "avx512f", "avx512_bf16", "fma") if f in flags]
    blas = {
        info["internal_api"] + " " + info.get("version", "?") + " " + str(info.get("architecture", "")): info["filepath"]
        for info in threadpool_info()
        if info["user_api"] == "blas"
    }
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores; flags: {' '.join(shown)}")
    for name, path in blas.items():
        owner = "nabla" if "x86_64-linux-gnu" in path else os.path.basename(os.path.dirname(path))
        print(f"  BLAS for {owner}: {name}")
    print(f"  nabla threads: {nabla.thread_budget()}; repeats: {REPEATS}")


def timed(function):
    started = time.perf_counter()
    function()
    return time.perf_counter() - started


def paired(first, second):
    """Median of first/second wall-time ratios, the two run back to back in
    alternating order."""
    ratios, times = [], []
    for repeat in range(REPEATS):
        if repeat % 2:
            b = timed(second)
            a = timed(first)
        else:
            a = timed(first)
            b = timed(second)
        ratios.append(a / b)
        times.append((a, b))
    return statistics.median(ratios), times


def row(name, value, target, better):
    met = value >= target if better == "more" else value <= target
    sign = ">=" if better == "more" else "<="
    print(f"{name:<78} {value:5.2f}x  {sign} {target:<4} {'yes' if met else 'NO'}")


def digits():
    X, y = load_digits(return_X_y=True)
    return np.tile(X / 16.0, (4, 1)), np.tile(y, 4)


def grid_search(solver, hidden):
    X, y = digits()
    extra = dict(momentum=0.0) if solver == "sgd" else {}
    estimator = MLPClassifier(
        hidden_layer_sizes=hidden, solver=solver, max_iter=50, random_state=0, **extra
    )
    grid = dict(alpha=[1e-4, 1e-3, 1e-2], learning_rate_init=[1e-3, 1e-2])

    def search(n_jobs, backend):
        def run():
            with parallel_config(backend=backend):
                GridSearchCV(estimator, grid, cv=2, n_jobs=n_jobs).fit(X, y)

        return run

    for backend in ("loky", "threading"):
        search(2, backend)()  # warm-up: loky starts its worker processes once
        ratio, times = paired(search(1, backend), search(2, backend))
        detail = ", ".join(f"{a:.2f}/{b:.2f} s" for a, b in times)
        row(f"GridSearchCV {solver} {hidden[0]}, {backend}: n_jobs=1 / 2 ({detail})", ratio, 1.3, "more")


def two_threads(solver):
    X, y = digits()
    extra = dict(momentum=0.0) if solver == "sgd" else {}

    def fit():
        MLPClassifier(solver=solver, max_iter=20, random_state=0, **extra).fit(X, y)

    def serial():
        fit()
        fit()

    def threaded():
        workers = [threading.Thread(target=fit) for _ in range(2)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()

    ratio, times = paired(serial, threaded)
    detail = ", ".join(f"{a:.2f}/{b:.2f} s" for a, b in times)
    row(f"two fits {solver} 100: serial / two threads ({detail})", ratio, 1.3, "more")


def predict_latency():
    rng = np.random.default_rng(0)
    X = rng.random((2000, 784))
    y = rng.integers(0, 10, 2000)
    settings = dict(hidden_layer_sizes=(512, 512), max_iter=1, random_state=0)
    ours = MLPClassifier(**settings).fit(X, y)
    theirs = ScikitLearnMLPClassifier(**settings).fit(X, y)
    theirs.coefs_ = [c.copy() for c in ours.coefs_]
    theirs.intercepts_ = [b.copy() for b in ours.intercepts_]
    one = X[:1]
    assert np.allclose(ours.predict_proba(one), theirs.predict_proba(one), rtol=1e-10, atol=1e-12)
    samples = {"nabla": [], "scikit-learn": []}
    for block in range(CALLS // 100):
        order = [("nabla", ours), ("scikit-learn", theirs)]
        for name, model in order if block % 2 == 0 else order[::-1]:
            for _ in range(100):
                started = time.perf_counter()
                model.predict(one)
                samples[name].append(time.perf_counter() - started)
    ours_median = statistics.median(samples["nabla"])
    theirs_median = statistics.median(samples["scikit-learn"])
    row(
        f"one-row predict 784-512-512-10, nabla / scikit-learn ({ours_median * 1e6:.0f}/{theirs_median * 1e6:.0f} us)",
        ours_median / theirs_median,
        1.0,
        "less",
    )


def main():
    machine()
    print()
    print(f"{'paired medians (detail: first / second side, each repeat)':<78} {'ratio':>6}  target met")
    for solver in ("sgd", "adam"):
        for hidden in ((100,), (256,)):
            grid_search(solver, hidden)
        two_threads(solver)
    predict_latency()


if __name__ == "__main__":
    main()
