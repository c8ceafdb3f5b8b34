#!/usr/bin/env python3
"""nabla.MLPClassifier against scikit-learn's MLPClassifier on full MNIST, paired.

Both fit 784-256-10 ReLU, solver='sgd', learning_rate_init=0.01, momentum=0,
shuffle=False, float32, MAX_ITER epochs (5) with the other parameters at their defaults
(alpha=1e-4), at batch 50 and 200; each fit runs in its own process (so that peak memory
is its own), nabla then scikit-learn, REPEATS times (3). Printed per batch size: seconds
per epoch (fit time / n_iter_, validation and conversion included), peak RSS of the process, test
accuracy, each the median over repeats, and the median of the per-pair speed ratios.

    python3 scripts/bench_sklearn.py            # needs nabla (pip install ./python)
    REPEATS=1 MAX_ITER=1 python3 scripts/bench_sklearn.py   # a quick look
"""

import os
import subprocess
import sys
import time
import warnings

HERE = os.path.dirname(os.path.abspath(__file__))


def one_fit(implementation, batch_size, max_iter):
    """Fits once in this process; prints seconds per epoch and test accuracy."""
    sys.path.insert(0, HERE)
    import numpy as np
    from mnist import load

    if implementation == "nabla":
        from nabla import MLPClassifier
    else:
        from sklearn.neural_network import MLPClassifier
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


def run(implementation, batch_size, max_iter):
    """One fit in a child process: (s/epoch, test accuracy, peak RSS in MB)."""
    child = subprocess.Popen(
        [sys.executable, __file__, "--one", implementation, str(batch_size), str(max_iter)],
        stdout=subprocess.PIPE,
        text=True,
    )
    output = child.stdout.read()
    _, status, usage = os.wait4(child.pid, 0)
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode != 0:
        sys.exit(f"{implementation} at batch {batch_size} failed (exit {child.returncode})")
    seconds, accuracy = map(float, output.split())
    return seconds, accuracy, usage.ru_maxrss / 1024


def median(values):
    values = sorted(values)
    middle = len(values) // 2
    return values[middle] if len(values) % 2 else (values[middle - 1] + values[middle]) / 2


def main():
    repeats = int(os.environ.get("REPEATS", "3"))
    max_iter = int(os.environ.get("MAX_ITER", "5"))
    import numpy
    import sklearn

    import nabla  # noqa: F401  (fail early when the package is missing)

    flags = open("/proc/cpuinfo").read().split("flags\t\t: ")[1].split("\n")[0].split()
    simd = " ".join(f for f in ("avx2", "avx512f", "avx512_bf16", "fma") if f in flags)
    model = open("/proc/cpuinfo").read().split("model name\t: ")[1].split("\n")[0]
    print(f"machine: {model}, {os.cpu_count()} cores; flags: {simd}")
    print(f"scikit-learn {sklearn.__version__}, numpy {numpy.__version__}; nabla {nabla.__file__}")
    print(
        f"784-256-10 relu, sgd, lr 0.01, momentum 0, shuffle=False, float32, {max_iter} "
        f"epochs, full MNIST; {repeats} paired repeats, each fit in its own process\n"
    )
    print("batch  impl          s/epoch  peak MB  test acc")
    summary = []
    for batch_size in (50, 200):
        results = {"nabla": [], "sklearn": []}
        for _ in range(repeats):
            for implementation in ("nabla", "sklearn"):
                results[implementation].append(run(implementation, batch_size, max_iter))
        for implementation in ("nabla", "sklearn"):
            seconds, accuracy, peak = (
                median([r[column] for r in results[implementation]]) for column in range(3)
            )
            print(f"{batch_size:<6} {implementation:<12} {seconds:8.3f}  {peak:7.0f}  {accuracy:8.4f}")
        ratios = [s[0] / n[0] for n, s in zip(results["nabla"], results["sklearn"])]
        summary.append(f"batch {batch_size}: nabla is {median(ratios):.2f}x faster than scikit-learn per epoch")
    print()
    print("\n".join(summary))


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "--one":
        one_fit(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
    else:
        main()
