#!/usr/bin/env python3
"""nabla.MLPClassifier against scikit-learn's MLPClassifier, paired.

SGD on full MNIST: both fit 784-256-10 ReLU, solver='sgd', learning_rate_init=0.01,
momentum=0, shuffle=False, float32, MAX_ITER epochs (5) with the other parameters at
their defaults (alpha=1e-4), at batch 50 and 200.

L-BFGS: both fit the default network (100 ReLU units), solver='lbfgs', float64,
random_state=0, LBFGS_ITER iterations at most (200) on scikit-learn's digits (1,797 x
64, 10 classes) and on make_classification(20,000 rows, 20 features, random_state=0).
L-BFGS runs are compared per iteration (fit time / n_iter_): two libraries' last bits
differ, and near convergence L-BFGS can take a different number of iterations.

Sparse: a 20,000 x 50,000 TF-IDF matrix at 0.1% density (50 random terms a row with
counts 1-4, through TfidfTransformer: rows of unit norm, SciPy CSR, float64), two
classes from a linear rule; the default network and solver (100 ReLU units, Adam, batch 200), TFIDF_ITER
epochs (3), compared per epoch.

Each fit runs in its own process (so that peak memory is its own), nabla then
scikit-learn, REPEATS times (3). Printed per case: seconds per epoch or iteration
(validation and conversion included), peak RSS of the process, the score, each the
median over repeats, and the median of the per-pair speed ratios.

    python3 scripts/bench_sklearn.py            # needs nabla (pip install ./python)
    REPEATS=1 MAX_ITER=1 LBFGS_ITER=20 TFIDF_ITER=1 python3 scripts/bench_sklearn.py   # a quick look
    CASES=lbfgs-digits,tfidf python3 scripts/bench_sklearn.py   # some cases only (50, 200,
                                         # lbfgs-digits, lbfgs-20000, tfidf)
"""

import os
import subprocess
import sys
import time
import warnings

HERE = os.path.dirname(os.path.abspath(__file__))


def one_fit(implementation, case, max_iter):
    """Fits once in this process; prints seconds per epoch (or iteration) and the
    score: test accuracy on MNIST, training accuracy for L-BFGS and TF-IDF."""
    sys.path.insert(0, HERE)
    import numpy as np

    if implementation == "nabla":
        from nabla import MLPClassifier
    else:
        from sklearn.neural_network import MLPClassifier
    if case == "tfidf" or case.startswith("lbfgs-"):
        if case == "tfidf":
            x, y = tfidf_data()
            model = MLPClassifier(max_iter=max_iter, random_state=0)
        else:
            x, y = lbfgs_data(case)
            model = MLPClassifier(solver="lbfgs", max_iter=max_iter, random_state=0)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            started = time.perf_counter()
            model.fit(x, y)
            seconds = time.perf_counter() - started
        print(f"{seconds / model.n_iter_:.5f} {model.score(x, y):.4f}")
        return
    from mnist import load

    batch_size = int(case)
    x_train, y_train, x_test, y_test = load(dtype=np.float32)
    model = MLPClassifier(
        hidden_layer_sizes=(256,),
        activation="relu",
        solver="sgd",
        learning_rate_init=0.01,
        momentum=0.0,
        batch_size=batch_size,
        shuffle=False,
        max_iter=max_iter,
        random_state=0,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        started = time.perf_counter()
        model.fit(x_train, y_train)
        seconds = time.perf_counter() - started
    accuracy = model.score(x_test, y_test)
    assert model.coefs_[0].dtype == np.float32
    print(f"{seconds / model.n_iter_:.4f} {accuracy:.4f}")


def lbfgs_data(case):
    """The L-BFGS cases' data, float64."""
    from sklearn.datasets import load_digits, make_classification

    if case == "lbfgs-digits":
        x, y = load_digits(return_X_y=True)
        return x / 16.0, y
    return make_classification(n_samples=20_000, n_features=20, random_state=0)


def tfidf_data():
    """The sparse case's matrix and labels."""
    import numpy as np
    import scipy.sparse as sp
    from sklearn.feature_extraction.text import TfidfTransformer

    rows, cols, per_row = 20_000, 50_000, 50
    rng = np.random.default_rng(0)
    indices = rng.integers(0, cols, rows * per_row)
    counts = rng.integers(1, 5, rows * per_row).astype(float)
    indptr = np.arange(0, rows * per_row + 1, per_row)
    counts = sp.csr_matrix((counts, indices, indptr), shape=(rows, cols))
    counts.sum_duplicates()
    x = TfidfTransformer().fit_transform(counts).tocsr()
    y = (x @ rng.normal(size=50_000) > 0).astype(int)
    return x, y


def run(implementation, case, max_iter):
    """One fit in a child process: (s/epoch, score, peak RSS in MB)."""
    child = subprocess.Popen(
        [sys.executable, __file__, "--one", implementation, str(case), str(max_iter)],
        stdout=subprocess.PIPE,
        text=True,
    )
    output = child.stdout.read()
    _, status, usage = os.wait4(child.pid, 0)
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode != 0:
        sys.exit(f"{implementation} on {case} failed (exit {child.returncode})")
    seconds, accuracy = map(float, output.split())
    return seconds, accuracy, usage.ru_maxrss / 1024


def median(values):
    values = sorted(values)
    middle = len(values) // 2
    return values[middle] if len(values) % 2 else (values[middle - 1] + values[middle]) / 2


def main():
    repeats = int(os.environ.get("REPEATS", "3"))
    max_iter = int(os.environ.get("MAX_ITER", "5"))
    lbfgs_iter = int(os.environ.get("LBFGS_ITER", "200"))
    tfidf_iter = int(os.environ.get("TFIDF_ITER", "3"))
    import numpy
    import sklearn

    import nabla  # noqa: F401  (fail early when the package is missing)

    flags = open("/proc/cpuinfo").read().split("flags\t\t: ")[1].split("\n")[0].split()
    simd = " ".join(f for f in ("avx2", "avx512f", "avx512_bf16", "fma") if f in flags)
    model = open("/proc/cpuinfo").read().split("model name\t: ")[1].split("\n")[0]
    print(f"machine: {model}, {os.cpu_count()} cores; flags: {simd}")
    print(f"scikit-learn {sklearn.__version__}, numpy {numpy.__version__}; nabla {nabla.__file__}")
    print(
        f"MNIST: 784-256-10 relu, sgd, lr 0.01, momentum 0, shuffle=False, float32, "
        f"{max_iter} epochs; L-BFGS: 100 relu, float64, at most {lbfgs_iter} iterations; "
        f"TF-IDF: 100 relu, adam, {tfidf_iter} epochs; "
        f"{repeats} paired repeats, each fit in its own process\n"
    )
    print("case          impl       s/epoch or s/iter  peak MB  accuracy")
    summary = []
    cases = [("50", max_iter, "epoch"), ("200", max_iter, "epoch")]
    cases += [("lbfgs-digits", lbfgs_iter, "iteration"), ("lbfgs-20000", lbfgs_iter, "iteration")]
    cases += [("tfidf", tfidf_iter, "epoch")]
    chosen = os.environ.get("CASES")
    if chosen:
        cases = [case for case in cases if case[0] in chosen.split(",")]
    for case, iterations, unit in cases:
        results = {"nabla": [], "sklearn": []}
        for _ in range(repeats):
            for implementation in ("nabla", "sklearn"):
                results[implementation].append(run(implementation, case, iterations))
        label = f"batch {case}" if case.isdigit() else case
        for implementation in ("nabla", "sklearn"):
            seconds, accuracy, peak = (
                median([r[column] for r in results[implementation]]) for column in range(3)
            )
            print(f"{label:<13} {implementation:<10} {seconds:17.4f}  {peak:7.0f}  {accuracy:8.4f}")
        ratios = [s[0] / n[0] for n, s in zip(results["nabla"], results["sklearn"])]
        summary.append(f"{label}: nabla is {median(ratios):.2f}x faster than scikit-learn per {unit}")
    print()
    print("\n".join(summary))


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "--one":
        one_fit(sys.argv[2], sys.argv[3], int(sys.argv[4]))
    else:
        main()
