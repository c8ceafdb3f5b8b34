#!/usr/bin/env bash
# Sweeps against the real programs (CI runs this after `cargo test`): the same 4-point
# sweep run locally, through GNU parallel (`--list | parallel`, then `--collect`), and as a
# Slurm job array on a one-node cluster started here (scripts/slurm-local.sh), must give
# the same results.md; and results.html must render in headless Chromium with its table
# sorted by its script, its curves and its confusion matrix.
#
#   scripts/test-sweeps.sh          # about 1 minute once the packages are installed
#
# Installs (Debian) slurm-wlm, munge, parallel and chromium when they are missing, and
# stops the Slurm daemons it started when done.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v parallel >/dev/null || need+=(parallel)
command -v chromium >/dev/null || need+=(chromium)
command -v slurmctld >/dev/null || need+=(slurm-wlm munge)
if [ ${#need[@]} -gt 0 ]; then
    apt-get update
    DEBIAN_FRONTEND=noninteractive apt-get install -y "${need[@]}"
fi

cargo build --release --quiet --bin nabla
nabla=$(scripts/target-dir.sh)/release/nabla
work=$(mktemp -d)
export NABLA_SLURM_DIR=$work/slurm-cluster
cleanup() {
    scripts/slurm-local.sh down >/dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT

grid=(--hidden "16 32" --lr "0.1 0.02" --activation relu --epochs 3 --threads 1
      --extra "--train-rows 500 --test-rows 100")
fail() { echo "test-sweeps: FAILED: $*" >&2; exit 1; }

echo "== local"
"$nabla" sweep "${grid[@]}" --jobs 2 --out "$work/local" >/dev/null
test "$(grep -c '^| h' "$work/local/results.md")" -eq 4 || fail "local: not 4 runs"

echo "== GNU parallel"
"$nabla" sweep "${grid[@]}" --out "$work/parallel" --list >"$work/commands"
test "$(wc -l <"$work/commands")" -eq 4 || fail "--list did not print 4 commands"
parallel --jobs 2 --joblog "$work/parallel.log" <"$work/commands"
"$nabla" sweep --collect "$work/parallel" >/dev/null
cmp "$work/local/results.md" "$work/parallel/results.md" || fail "GNU parallel: results.md differs from the local sweep's"

echo "== Slurm"
scripts/slurm-local.sh up
source <(scripts/slurm-local.sh env)
"$nabla" sweep "${grid[@]}" --out "$work/slurm" --slurm --submit --wait --time 00:05:00 >"$work/slurm.out"
grep -q '^#SBATCH --array=0-3$' "$work/slurm/sweep.sbatch" || fail "the batch script has no 4-task array"
grep -q '^#SBATCH --cpus-per-task=1$' "$work/slurm/sweep.sbatch" || fail "the batch script asks for other CPUs"
test "$(ls "$work"/slurm/slurm/*.out | wc -l)" -eq 4 || fail "not 4 array tasks ran"
cmp "$work/local/results.md" "$work/slurm/results.md" || fail "Slurm: results.md differs from the local sweep's"
scripts/slurm-local.sh down

echo "== results.html in headless Chromium"
page="file://$work/local/results.html#sort=lr"
chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
    --disable-background-networking --disable-component-update --disable-sync \
    --user-data-dir="$work/chromium" --dump-dom "$page" 2>/dev/null >"$work/dom.html"
grep -q '<table id="results">' "$work/dom.html" || fail "no results table in the rendered page"
test "$(grep -o '<tr>' "$work/dom.html" | wc -l)" -ge 5 || fail "the rendered table has fewer than 4 rows"
grep -q 'class="sorted-' "$work/dom.html" || fail "the page's script did not sort the table"
test "$(grep -o '<svg' "$work/dom.html" | wc -l)" -eq 2 || fail "the curves or the confusion matrix are missing"
chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
    --disable-background-networking --disable-component-update --disable-sync \
    --user-data-dir="$work/chromium" --window-size=1400,2000 \
    --screenshot="$work/results.png" "$page" >/dev/null 2>&1
test -s "$work/results.png" || fail "no screenshot"
echo "test-sweeps: local, GNU parallel and Slurm agree; results.html renders"
