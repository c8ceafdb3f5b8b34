#!/usr/bin/env bash
# Training speed on full MNIST, 784-256-10 ReLU, float32, plain gradient descent,
# in-order batches, at batch 50 and 256 (2 epochs per run, REPEATS runs each):
# seconds per epoch (median over all epochs; training only, not the per-epoch
# evaluation), samples/s, achieved GFLOP/s, this machine's own 2048^3 sgemm GFLOP/s
# measured in the same run, their ratio, and each run's peak memory (max RSS).
# With python3 + numpy it runs scripts/numpy_mlp.py (the same algorithm, vectorised)
# in alternation and prints the speed ratio.
#
#   scripts/bench.sh                      # about 40 s on 2 cores
#   THREADS=1 REPEATS=5 scripts/bench.sh  # fixed thread count, more runs
#   KEEP_OPENBLAS_ENV=1 scripts/bench.sh  # keep OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE
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
rows=60000
gflop=$(awk -v n=$rows 'BEGIN { printf "%.4f", (4*n*(784*256 + 256*10) + 2*n*256*10) / 1e9 }')
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

cargo build --release --quiet --bin nabla --example sgemm
openblas_env="env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE"
[ -n "${KEEP_OPENBLAS_ENV:-}" ] && openblas_env="env"
nabla="$openblas_env target/release/nabla"

median() { sort -g | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
sgemm() { $openblas_env target/release/examples/sgemm 2048 2048 2048 --threads "$threads" | awk '{ print $(NF - 1) }'; }

numpy=""
if python3 -c 'import numpy' 2>/dev/null; then
    numpy="$openblas_env OPENBLAS_NUM_THREADS=$threads python3 scripts/numpy_mlp.py"
fi

sgemm_before=$(sgemm)
echo "machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) cores; $threads threads; $(date -u +%Y-%m-%d)"
kernel=$($openblas_env OPENBLAS_VERBOSE=2 target/release/examples/sgemm 16 16 16 2>&1 | sed -n 's/^Core: //p')
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
printf '%-6s %-6s %9s %11s %8s %11s %8s\n' batch impl s/epoch samples/s GFLOP/s "of sgemm" "peak MB"

results=()
for batch in 50 256; do
    : >"$work/nabla_seconds"; : >"$work/nabla_peak"; : >"$work/numpy_seconds"; : >"$work/numpy_peak"
    for run in $(seq "$repeats"); do
        log="$work/nabla_${batch}_$run.csv"
        $nabla train --dataset mnist --activation relu --hidden 256 --lr 0.01 --batch-size "$batch" \
            --epochs 2 --dtype f32 --threads "$threads" --quiet --log "$log" >"$work/out"
        awk -F, 'NR > 1 { print $9 }' "$log" >>"$work/nabla_seconds"
        sed -n 's/.*peak memory \([0-9.]*\) MB.*/\1/p' "$work/out" >>"$work/nabla_peak"
        if [ -n "$numpy" ]; then
            line=$($numpy data/mnist "$batch" 2)
            echo "$line" | sed -n 's/.*seconds_per_epoch=\([0-9.]*\).*/\1/p' >>"$work/numpy_seconds"
            echo "$line" | sed -n 's/.*peak_mb=\([0-9.]*\).*/\1/p' >>"$work/numpy_peak"
        fi
    done
    impls=nabla
    [ -n "$numpy" ] && impls="nabla numpy"
    for impl in $impls; do
        seconds=$(median <"$work/${impl}_seconds")
        peak=$(sort -g "$work/${impl}_peak" | tail -1)
        awk -v b="$batch" -v i="$impl" -v s="$seconds" -v n=$rows -v g="$gflop" -v peak="$peak" -v ref="$sgemm_before" \
            'BEGIN { printf "%-6s %-6s %9.4f %11.0f %8.1f %10.0f%% %8.0f\n", b, i, s, n / s, g / s, 100 * g / s / ref, peak }'
        eval "seconds_${impl}_$batch=$seconds"
    done
    if [ -n "$numpy" ]; then
        results+=("$(awk -v b="$batch" -v a="$(eval echo "\$seconds_numpy_$batch")" -v n="$(eval echo "\$seconds_nabla_$batch")" \
            'BEGIN { printf "batch %s: nabla is %.2fx faster than NumPy per epoch", b, a / n }')")
    fi
done
sgemm_after=$(sgemm)
echo
echo "sgemm 2048^3 on $threads threads: $sgemm_before GFLOP/s before, $sgemm_after after (ratios above use 'before')"
for line in "${results[@]}"; do echo "$line"; done
