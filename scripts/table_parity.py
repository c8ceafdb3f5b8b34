#!/usr/bin/env python3
"""nabla against scikit-learn on four small tables, the same files and settings both sides.

Datasets (each written as CSV with a header, so both tools read the same text):
  1. breast-cancer  sklearn's load_breast_cancer, label `diagnosis` as text
                    (malignant/benign) in the FIRST column (nabla gets --label).
  2. wine           sklearn's load_wine, label `cultivar` as text (class_0..), first column.
  3. penguins       palmerpenguins.load_penguins(), label `species`; text categories
                    island and sex; missing values as they come (rows without a species
                    dropped); an `id` column (P0001, ...) that nabla is told to --ignore
                    and scikit-learn drops.
  4. diabetes       sklearn's load_diabetes(scaled=False), a regression, metric R².

For each dataset and each seed (0 .. SEEDS-1) one split is made with
train_test_split(test_size=0.25, random_state=seed, stratify=y for classification);
train.csv and test.csv go into a temporary directory and both tools train on them:

  nabla         one process: --train-file train.csv --test-file test.csv --hidden 64
                --activation relu --optimizer adam --lr 0.001 --batch-size 200
                --epochs 200 --seed SEED (its own defaults otherwise: median imputation,
                standard scaling, one-hot text columns); the metric is read from
                RUNDIR/summary.json, the time is the whole process (wall clock).
  scikit-learn  pandas.read_csv of the same files, then
                ColumnTransformer(numeric: median SimpleImputer + StandardScaler,
                text: constant "missing" SimpleImputer + OneHotEncoder(ignore unknown))
                and MLPClassifier/MLPRegressor(hidden_layer_sizes=(64,), relu, adam,
                learning_rate_init=1e-3, batch_size=200, max_iter=200,
                random_state=SEED, tol=0, n_iter_no_change=200), i.e. a fixed 200
                epochs like nabla (ConvergenceWarning silenced). For diabetes the
                regressor is wrapped in TransformedTargetRegressor(StandardScaler()), so
                that it too fits the standardised target, as nabla's --task regression
                does; R² is then computed on the original scale. The time covers the CSV
                read, fit and predict, in this process.

Printed: the machine context, then a Markdown table (mean ± sd over seeds; the
difference nabla - scikit-learn in points, i.e. accuracy or R² × 100; median seconds per
run), then one PASS/FAIL line per dataset for |mean difference| <= 1 point. Exit status 1
if any dataset FAILs. PER_SEED=1 also prints each seed's numbers; TOLERANCE=P sets the bar
in points (CI uses 3: its machines' kernels differ in the last bits, and one test row of
wine is 2.2 points).

    /tmp/venv/bin/python scripts/table_parity.py            # 5 seeds, a few minutes
    SEEDS=2 /tmp/venv/bin/python scripts/table_parity.py    # a quick look

Needs: Python 3.11 with numpy, pandas, scikit-learn and palmerpenguins
(pip install numpy pandas scikit-learn palmerpenguins), and a built nabla: the NABLA
environment variable, or else "$(scripts/target-dir.sh)/release/nabla" (which needs
cargo). This script does not build it.
"""

import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import warnings

import numpy as np
import pandas as pd
import sklearn
from sklearn.compose import ColumnTransformer, TransformedTargetRegressor
from sklearn.datasets import load_breast_cancer, load_diabetes, load_wine
from sklearn.exceptions import ConvergenceWarning
from sklearn.impute import SimpleImputer
from sklearn.metrics import accuracy_score, r2_score
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier, MLPRegressor
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

HERE = os.path.dirname(os.path.abspath(__file__))
TIMEOUT_S = 300
BAR_POINTS = float(os.environ.get("TOLERANCE", "1.0"))
NABLA_SETTINGS = [
    "--hidden", "64", "--activation", "relu", "--optimizer", "adam", "--lr", "0.001",
    "--batch-size", "200", "--epochs", "200",
]


# --- datasets: each returns (frame, label column, task, extra nabla arguments) ----------


def sklearn_table(loader, label):
    """A scikit-learn toy data set as a frame with the text label in the first column."""
    bunch = loader()
    frame = pd.DataFrame(bunch.data, columns=bunch.feature_names)
    frame.insert(0, label, np.asarray(bunch.target_names)[bunch.target])
    return frame


def breast_cancer():
    return sklearn_table(load_breast_cancer, "diagnosis"), "diagnosis", "classification", []


def wine():
    return sklearn_table(load_wine, "cultivar"), "cultivar", "classification", []


def penguins():
    from palmerpenguins import load_penguins

    frame = load_penguins().dropna(subset=["species"]).reset_index(drop=True)
    frame.insert(0, "id", [f"P{i + 1:04d}" for i in range(len(frame))])
    return frame, "species", "classification", ["--ignore", "id"]


def diabetes():
    bunch = load_diabetes(scaled=False)
    frame = pd.DataFrame(bunch.data, columns=bunch.feature_names)
    frame["progression"] = bunch.target
    return frame, "progression", "regression", ["--task", "regression"]


DATASETS = {
    "breast-cancer": breast_cancer,
    "wine": wine,
    "penguins": penguins,
    "diabetes": diabetes,
}
IGNORED = ["id"]  # columns scikit-learn drops, as nabla is told to --ignore them


# --- the two tools -------------------------------------------------------------------


def nabla_binary():
    if os.environ.get("NABLA"):
        return os.environ["NABLA"]
    target_dir = subprocess.run(
        [os.path.join(HERE, "target-dir.sh")],
        capture_output=True, text=True, check=True, timeout=60,
    ).stdout.strip()
    return os.path.join(target_dir, "release", "nabla")


def run_nabla(binary, directory, label, task, extra, seed):
    """Trains nabla once on directory/train.csv; returns (metric, wall seconds)."""
    out = os.path.join(directory, "nabla-run")
    command = [
        binary,
        "--train-file", os.path.join(directory, "train.csv"),
        "--test-file", os.path.join(directory, "test.csv"),
        "--label", label,
        *extra,
        *NABLA_SETTINGS,
        "--seed", str(seed),
        "--out", out,
        "-q",
    ]
    start = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True, timeout=TIMEOUT_S)
    seconds = time.perf_counter() - start
    if result.returncode != 0:
        sys.exit(f"nabla failed ({result.returncode}): {' '.join(command)}\n{result.stderr}")
    with open(os.path.join(out, "summary.json")) as file:
        test = json.load(file)["final"]["test"]
    metric = test["regression"]["r2"] if task == "regression" else test["accuracy"]
    return metric, seconds


def run_sklearn(directory, label, task, seed):
    """Reads the same CSVs, fits and predicts; returns (metric, seconds)."""
    start = time.perf_counter()
    train = pd.read_csv(os.path.join(directory, "train.csv"))
    test = pd.read_csv(os.path.join(directory, "test.csv"))
    x_train = train.drop(columns=[label, *[c for c in IGNORED if c in train]])
    x_test = test[x_train.columns]
    numeric_cols = x_train.select_dtypes(include="number").columns.tolist()
    categorical_cols = [c for c in x_train.columns if c not in numeric_cols]
    preprocess = ColumnTransformer([
        ("num", Pipeline([
            ("impute", SimpleImputer(strategy="median")),
            ("scale", StandardScaler()),
        ]), numeric_cols),
        ("cat", Pipeline([
            ("impute", SimpleImputer(strategy="constant", fill_value="missing")),
            ("onehot", OneHotEncoder(handle_unknown="ignore")),
        ]), categorical_cols),
    ])
    settings = dict(
        hidden_layer_sizes=(64,), activation="relu", solver="adam",
        learning_rate_init=1e-3, batch_size=200, max_iter=200,
        random_state=seed, tol=0, n_iter_no_change=200,
    )
    if task == "regression":
        model = TransformedTargetRegressor(
            regressor=MLPRegressor(**settings), transformer=StandardScaler()
        )
    else:
        model = MLPClassifier(**settings)
    pipeline = Pipeline([("preprocess", preprocess), ("model", model)])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        # wine has fewer than 200 training rows: scikit-learn clips the batch to them
        # (one full batch per epoch, as nabla does) and says so.
        warnings.filterwarnings("ignore", message="Got `batch_size` less than 1")
        pipeline.fit(x_train, train[label])
    predicted = pipeline.predict(x_test)
    seconds = time.perf_counter() - start
    if task == "regression":
        metric = r2_score(test[label], predicted)
    else:
        metric = accuracy_score(test[label], predicted)
    return metric, seconds


# --- report ---------------------------------------------------------------------------


def machine_context(binary):
    cpu = platform.processor() or "unknown"
    try:
        with open("/proc/cpuinfo") as file:
            cpu = next(l.split(":", 1)[1].strip() for l in file if l.startswith("model name"))
    except (OSError, StopIteration):
        pass
    print(f"- CPUs (nproc): {os.cpu_count()} usable {len(os.sched_getaffinity(0))}; {cpu}")
    print(f"- Python {platform.python_version()}, scikit-learn {sklearn.__version__}, "
          f"numpy {np.__version__}, pandas {pd.__version__}")
    print(f"- nabla: {binary}")
    print()


def mean_sd(values, scale):
    values = [v * scale for v in values]
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return statistics.mean(values), sd


def main():
    seeds = range(int(os.environ.get("SEEDS", "5")))
    per_seed = os.environ.get("PER_SEED") == "1"
    binary = nabla_binary()
    if not os.access(binary, os.X_OK):
        sys.exit(f"no nabla binary at {binary} (build it, or set NABLA)")
    machine_context(binary)

    rows, verdicts = [], []
    for name, make in DATASETS.items():
        frame, label, task, extra = make()
        nabla_scores, sklearn_scores, nabla_times, sklearn_times = [], [], [], []
        for seed in seeds:
            train, test = train_test_split(
                frame, test_size=0.25, random_state=seed,
                stratify=frame[label] if task == "classification" else None,
            )
            with tempfile.TemporaryDirectory(prefix=f"parity-{name}-") as directory:
                train.to_csv(os.path.join(directory, "train.csv"), index=False)
                test.to_csv(os.path.join(directory, "test.csv"), index=False)
                n_score, n_time = run_nabla(binary, directory, label, task, extra, seed)
                s_score, s_time = run_sklearn(directory, label, task, seed)
            nabla_scores.append(n_score)
            sklearn_scores.append(s_score)
            nabla_times.append(n_time)
            sklearn_times.append(s_time)
            if per_seed:
                print(f"  {name} seed {seed}: nabla {n_score:.4f} ({n_time:.2f} s), "
                      f"scikit-learn {s_score:.4f} ({s_time:.2f} s)", file=sys.stderr)
        metric = "R²" if task == "regression" else "accuracy"
        n_mean, n_sd = mean_sd(nabla_scores, 100)
        s_mean, s_sd = mean_sd(sklearn_scores, 100)
        difference = n_mean - s_mean
        rows.append(
            f"| {name} | {len(train)}/{len(test)} | {metric} | {n_mean:.2f} ± {n_sd:.2f} "
            f"| {s_mean:.2f} ± {s_sd:.2f} | {difference:+.2f} "
            f"| {statistics.median(nabla_times):.2f} | {statistics.median(sklearn_times):.2f} |"
        )
        passed = abs(difference) <= BAR_POINTS
        verdicts.append((name, passed, difference))

    print(f"Over {len(seeds)} seeds; scores ×100; difference = nabla − scikit-learn, points; "
          "seconds: median per run.")
    print()
    print("| dataset | train/test rows | metric | nabla | scikit-learn | difference "
          "| nabla s | scikit-learn s |")
    print("|---|---|---|---|---|---|---|---|")
    for row in rows:
        print(row)
    print()
    for name, passed, difference in verdicts:
        verdict = "PASS" if passed else "FAIL"
        print(f"{verdict} {name}: |difference| {abs(difference):.2f} "
              f"{'<=' if passed else '>'} {BAR_POINTS:g} point")
    return 0 if all(passed for _, passed, _ in verdicts) else 1


if __name__ == "__main__":
    sys.exit(main())
