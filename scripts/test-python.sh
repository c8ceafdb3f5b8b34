#!/usr/bin/env bash
# The Python package's tests: builds and installs python/ (nabla.MLPClassifier) into a
# fresh virtual environment with scikit-learn, pytest and pandas from the package
# registry, runs scikit-learn's estimator checks and the parity tests against
# scikit-learn and the tests of threads, forks, limits and Ctrl-C (python/tests), then
# one quick round of scripts/bench_sklearn.py and scripts/bench_sklearn_concurrency.py;
# then nabla's tables against scikit-learn (scripts/table_parity.py, with a 3-point bar)
# and one quick round of the loading benchmark (scripts/bench_load.sh).
#
#   scripts/test-python.sh                  # a new venv in a temporary directory
#   NABLA_VENV=.venv scripts/test-python.sh # reuse (or create) this venv
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
venv=${NABLA_VENV:-$scratch/venv}
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/pip" install --quiet --disable-pip-version-check "maturin>=1.5,<2" "scikit-learn>=1.6,<2" pytest pandas
"$venv/bin/pip" install --quiet --disable-pip-version-check "$repo/python"
# From outside the repository, so that `import nabla` finds the installed package.
(cd "$scratch" && "$venv/bin/python" -m pytest -q -p no:cacheprovider --import-mode=importlib "$repo/python/tests")
REPEATS=1 MAX_ITER=1 "$venv/bin/python" scripts/bench_sklearn.py
QUICK=1 "$venv/bin/python" scripts/bench_sklearn_concurrency.py
"$venv/bin/pip" install --quiet --disable-pip-version-check palmerpenguins
TOLERANCE=3 "$venv/bin/python" scripts/table_parity.py
QUICK=1 PYTHON="$venv/bin/python" scripts/bench_load.sh
