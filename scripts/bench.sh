#!/usr/bin/env bash
# Training speed on full MNIST, 784-256-10 ReLU, float32, plain gradient descent,
# in-order batches, at batch 50 and 256 (2 epochs per run, REPEATS runs each):
# seconds per epoch (training only, not the per-epoch evaluation), samples/s, achieved
# GFLOP/s, this machine's own 2048^3 sgemm GFLOP/s probed right before each run, their
# ratio, the per-epoch evaluation's GFLOP/s (70,000 rows forward, 8-bit pixels converted
# on the way) and each run's peak memory (max RSS). With python3 + numpy it runs
# scripts/numpy_mlp.py (the same algorithm, vectorised) right after each nabla run and
# prints the speed ratio. Ratios are taken within a repeat; medians are printed.
#
# Then the assignment's experiment (a) as whole processes, paired run by run: `nabla
# --quiet` (3,000/1,000 subset rows, 784-256-10 sigmoid, batch 50, 50 epochs, evaluated
# after each) against scripts/numpy_ref.py (the team's NumPy yardstick, the same run with
# `eval`): wall seconds of each, loading and process start included, and their ratio.
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
# Evaluation work: forward of 60,000 + 10,000 rows, 2*70,000*(784*256 + 256*10): 28.5 GFLOP.
set -euo pipefail
cd "$(dirname "$0")/.."

threads=${THREADS:-$(nproc)}
repeats=${REPEATS:-5}
epochs=2
if [ -n "${QUICK:-}" ]; then repeats=1 epochs=1; fi
rows=60000
gflop=$(awk -v n=$rows 'BEGIN { printf "%.4f", (4*n*(784*256 + 256*10) + 2*n*256*10) / 1e9 }')
eval_gflop=$(awk 'BEGIN { printf "%.4f", 2*70000*(784*256 + 256*10) / 1e9 }')
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

cargo build --release --quiet --bin nabla --example sgemm
release=$(scripts/target-dir.sh)/release
openblas_env="env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE"
[ -n "${KEEP_OPENBLAS_ENV:-}" ] && openblas_env="env"
nabla="$openblas_env $release/nabla"

# The values of the column named $1 in the CSV file $2 (logs are read by column name).
column() { awk -F, -v name="$1" 'NR == 1 { for (i = 1; i <= NF; i++) if ($i == name) c = i; if (!c) exit 1; next } { print $c }' "$2"; }
median() { sort -g | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
sgemm() { $openblas_env $release/examples/sgemm 2048 2048 2048 --threads "$threads" | awk '{ print $(NF - 1) }'; }

numpy=""
if python3 -c 'import numpy' 2>/dev/null; then
    numpy="$openblas_env OPENBLAS_NUM_THREADS=$threads python3 scripts/numpy_mlp.py"
fi

kernel=$($openblas_env OPENBLAS_VERBOSE=2 $release/examples/sgemm 16 16 16 2>&1 | sed -n 's/^Core: //p')
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
printf '%-6s %-6s %9s %11s %8s %9s %10s %8s  %s\n' batch impl s/epoch samples/s GFLOP/s "of sgemm" "eval GF/s" "peak MB" gemm

summary=()
for batch in 50 256; do
    for file in sgemm nabla_seconds nabla_peak nabla_of_sgemm nabla_eval numpy_seconds numpy_peak numpy_of_sgemm speedup; do
        : >"$work/$file"
    done
    for run in $(seq "$repeats"); do
        probe=$(sgemm)
        echo "$probe" >>"$work/sgemm"
        log="$work/nabla_${batch}_$run.csv"
        $nabla train --dataset mnist --activation relu --hidden 256 --lr 0.01 --batch-size "$batch" \
            --epochs "$epochs" --dtype f32 --threads "$threads" --log "$log" >"$work/out"
        gemm=$(head -1 "$work/out" | sed -n 's/.*gemm \([a-z]*\).*/\1/p')
        nabla_seconds=$(column train_seconds "$log" | median)
        echo "$nabla_seconds" >>"$work/nabla_seconds"
        awk -v g="$eval_gflop" -v s="$(column eval_seconds "$log" | median)" 'BEGIN { print g / s }' >>"$work/nabla_eval"
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
        evaluation=$(if [ "$impl" = nabla ]; then median <"$work/nabla_eval"; else echo -; fi)
        how=$(if [ "$impl" = nabla ]; then echo "$gemm"; else echo "OpenBLAS threads"; fi)
        awk -v b="$batch" -v i="$impl" -v s="$seconds" -v n=$rows -v g="$gflop" -v peak="$peak" -v r="$of_sgemm" \
            -v e="$evaluation" -v how="$how" \
            'BEGIN { printf "%-6s %-6s %9.4f %11.0f %8.1f %8.0f%% %10s %8.0f  %s\n", b, i, s, n / s, g / s, 100 * r, (e == "-" ? e : sprintf("%.0f", e)), peak, how }'
    done
    line="batch $batch: sgemm 2048^3 on $threads threads $(median <"$work/sgemm") GFLOP/s (median of $repeats probes); nabla's evaluation at $(median <"$work/nabla_eval" | awk -v p="$(median <"$work/sgemm")" '{ printf "%.0f%%", 100 * $1 / p }') of it"
    if [ -n "$numpy" ]; then
        line="$line; nabla is $(median <"$work/speedup" | awk '{ printf "%.2f", $1 }')x faster than NumPy per epoch"
    fi
    summary+=("$line")
done
echo
for line in "${summary[@]}"; do echo "$line"; done

# The assignment's experiment (a), whole processes, paired run by run.
if [ -n "$numpy" ] && [ -z "${QUICK:-}" ]; then
    echo
    echo "experiment (a): nabla --quiet (3,000/1,000 subset, sigmoid, batch 50, 50 epochs, evaluated"
    echo "after each) against scripts/numpy_ref.py 3000 256 sigmoid 50 50 0.01 f32 eval; wall seconds"
    : >"$work/a_nabla"; : >"$work/a_numpy"; : >"$work/a_ratio"
    wall() { local start; start=$(date +%s.%N); "$@" >/dev/null; awk -v s="$start" -v e="$(date +%s.%N)" 'BEGIN { print e - s }'; }
    for run in $(seq "$repeats"); do
        a=$(wall $nabla --quiet --threads "$threads")
        b=$(wall env OPENBLAS_NUM_THREADS="$threads" MNIST_DIR=data/mnist python3 scripts/numpy_ref.py 3000 256 sigmoid 50 50 0.01 f32 eval)
        echo "$a" >>"$work/a_nabla"; echo "$b" >>"$work/a_numpy"
        awk -v a="$a" -v b="$b" 'BEGIN { print b / a }' >>"$work/a_ratio"
    done
    printf 'nabla %.2f s, numpy %.2f s (medians of %d pairs): nabla %.2fx faster\n' \
        "$(median <"$work/a_nabla")" "$(median <"$work/a_numpy")" "$repeats" "$(median <"$work/a_ratio")"
fi
