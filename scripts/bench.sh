#!/usr/bin/env bash
# Training speed on full MNIST, 784-256-10 ReLU, float32, plain gradient descent,
# in-order batches, at batch 50 and 256 (2 epochs per run, REPEATS runs each):
# seconds per epoch (training only, not the per-epoch evaluation), samples/s, achieved
# GFLOP/s, this machine's own 2048^3 sgemm GFLOP/s probed right before each run, their
# ratio, and each run's peak memory (max RSS). With python3 + numpy it runs
# scripts/numpy_mlp.py (the same algorithm, vectorised) right after each nabla run and
# prints the speed ratio. Ratios are taken within a repeat; medians are printed.
#
#   scripts/bench.sh                      # about 1 minute on 2 cores
#   THREADS=1 REPEATS=5 scripts/bench.sh  # fixed thread count, more runs
#   KEEP_OPENBLAS_ENV=1 scripts/bench.sh  # keep OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE
#   QUICK=1 scripts/bench.sh              # one repeat of one epoch: a smoke test (CI)
#
# Kernels: some machines set OPENBLAS_CORETYPE (and OPENBLAS_L2_SIZE) because older
# OpenBLAS builds crashed or miscomputed on their processors; forcing an older core type
# slows a current NumPy as much as nabla. By default every command below (the sgemm
# probe, nabla and NumPy alike) runs with both unset, so each OpenBLAS picks its own
# kernel for this CPU, and the kernels are printed. (nabla's tests check its sgemm
# results against plain loops under either setting.)
#
# Epoch work: forward 2N(784*256 + 256*10), weight gradients the same, the hidden
# layer's input gradient 2N*256*10 (the first layer's is not computed): 49.1 GFLOP.
set -euo pipefail
cd "$(dirname "$0")/.."

threads=${THREADS:-$(nproc)}
repeats=${REPEATS:-5}
epochs=2
if [ -n "${QUICK:-}" ]; then repeats=1 epochs=1; fi
rows=60000
gflop=$(awk -v n=$rows 'BEGIN { printf "%.4f", (4*n*(784*256 + 256*10) + 2*n*256*10) / 1e9 }')
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

cargo build --release --quiet --bin nabla --example sgemm
openblas_env="env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE"
[ -n "${KEEP_OPENBLAS_ENV:-}" ] && openblas_env="env"
nabla="$openblas_env target/release/nabla"

# The values of the column named $1 in the CSV file $2 (logs are read by column name).
column() { awk -F, -v name="$1" 'NR == 1 { for (i = 1; i <= NF; i++) if ($i == name) c = i; if (!c) exit 1; next } { print $c }' "$2"; }
median() { sort -g | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
sgemm() { $openblas_env target/release/examples/sgemm 2048 2048 2048 --threads "$threads" | awk '{ print $(NF - 1) }'; }

numpy=""
if python3 -c 'import numpy' 2>/dev/null; then
    numpy="$openblas_env OPENBLAS_NUM_THREADS=$threads python3 scripts/numpy_mlp.py"
fi

kernel=$($openblas_env OPENBLAS_VERBOSE=2 target/release/examples/sgemm 16 16 16 2>&1 | sed -n 's/^Core: //p')
echo "machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) cores; $threads threads; $(date -u +%Y-%m-%d)"
echo "nabla: system OpenBLAS $(pkg-config --modversion openblas 2>/dev/null || echo '?'), kernel ${kernel:-?}"
if [ -n "$numpy" ]; then
    echo "numpy: $(python3 -c 'import numpy; print(numpy.__version__)')$($openblas_env python3 -c '
import numpy
try:
    from threadpoolctl import threadpool_info
    info = [i for i in threadpool_info() if i.get("internal_api") == "openblas"][0]
    print(", bundled OpenBLAS", info["version"] + ", kernel", info["architecture"])
except Exception:
    print(" (install threadpoolctl to see its kernel)")' 2>/dev/null)"
fi
echo
echo "Each repeat measures sgemm, then nabla, then NumPy, back to back; the ratios are taken"
echo "within a repeat and their medians printed (the machine's speed drifts between repeats)."
echo
printf '%-6s %-6s %9s %11s %8s %9s %8s\n' batch impl s/epoch samples/s GFLOP/s "of sgemm" "peak MB"

summary=()
for batch in 50 256; do
    for file in sgemm nabla_seconds nabla_peak nabla_of_sgemm numpy_seconds numpy_peak numpy_of_sgemm speedup; do
        : >"$work/$file"
    done
    for run in $(seq "$repeats"); do
        probe=$(sgemm)
        echo "$probe" >>"$work/sgemm"
        log="$work/nabla_${batch}_$run.csv"
        $nabla train --dataset mnist --activation relu --hidden 256 --lr 0.01 --batch-size "$batch" \
            --epochs "$epochs" --dtype f32 --threads "$threads" --quiet --log "$log" >"$work/out"
        nabla_seconds=$(column train_seconds "$log" | median)
        echo "$nabla_seconds" >>"$work/nabla_seconds"
        sed -n 's/.*peak memory \([0-9.]*\) MB.*/\1/p' "$work/out" >>"$work/nabla_peak"
        awk -v g="$gflop" -v s="$nabla_seconds" -v p="$probe" 'BEGIN { print g / s / p }' >>"$work/nabla_of_sgemm"
        if [ -n "$numpy" ]; then
            line=$($numpy data/mnist "$batch" "$epochs")
            numpy_seconds=$(echo "$line" | sed -n 's/.*seconds_per_epoch=\([0-9.]*\).*/\1/p')
            echo "$numpy_seconds" >>"$work/numpy_seconds"
            echo "$line" | sed -n 's/.*peak_mb=\([0-9.]*\).*/\1/p' >>"$work/numpy_peak"
            awk -v g="$gflop" -v s="$numpy_seconds" -v p="$probe" 'BEGIN { print g / s / p }' >>"$work/numpy_of_sgemm"
            awk -v a="$numpy_seconds" -v b="$nabla_seconds" 'BEGIN { print a / b }' >>"$work/speedup"
        fi
    done
    impls=nabla
    [ -n "$numpy" ] && impls="nabla numpy"
    for impl in $impls; do
        seconds=$(median <"$work/${impl}_seconds")
        of_sgemm=$(median <"$work/${impl}_of_sgemm")
        peak=$(sort -g "$work/${impl}_peak" | tail -1)
        awk -v b="$batch" -v i="$impl" -v s="$seconds" -v n=$rows -v g="$gflop" -v peak="$peak" -v r="$of_sgemm" \
            'BEGIN { printf "%-6s %-6s %9.4f %11.0f %8.1f %8.0f%% %8.0f\n", b, i, s, n / s, g / s, 100 * r, peak }'
    done
    line="batch $batch: sgemm 2048^3 on $threads threads $(median <"$work/sgemm") GFLOP/s (median of $repeats probes)"
    if [ -n "$numpy" ]; then
        line="$line; nabla is $(median <"$work/speedup" | awk '{ printf "%.2f", $1 }')x faster than NumPy per epoch"
    fi
    summary+=("$line")
done
echo
for line in "${summary[@]}"; do echo "$line"; done
