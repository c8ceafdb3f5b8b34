#!/usr/bin/env bash
# Hyperparameter sweep: one `nabla train` run per grid point, one CSV log per run, then a
# summary table (results.md, results.csv) and one plot of all runs (curves.svg).
#
#   scripts/sweep.sh                      # the assignment's five experiments (a)-(e)
#   scripts/sweep.sh --activation "sigmoid relu" --lr "0.1 0.01" --epochs 20
#
# Cost: the default grid (5 runs x 50 epochs on the 3,000/1,000 subset, f32) takes about
# 15 s of training on a 2-core machine, plus the release build the first time.
set -euo pipefail

usage() {
    cat <<'USAGE'
Usage: scripts/sweep.sh [OPTIONS]

With no grid options, runs the assignment's five experiments, 50 epochs, seed 10701:
  (a) 256 sigmoid, lr 0.01,  batch 50     (b) 256 sigmoid, lr 0.001, batch 50
  (c) 256 relu,    lr 0.01,  batch 50     (d) 256 relu,    lr 0.01,  batch 200
  (e) 384,256 relu, lr 0.01, batch 50
With any grid option, runs every combination of the lists given (space-separated
values; the unlisted ones take the first default below).

Grid options (each a quoted, space-separated list):
  --hidden LIST        hidden widths per run, e.g. "256 384,256"   (default 256)
  --activation LIST    sigmoid, relu, tanh                          (default sigmoid)
  --lr LIST            learning rates                               (default 0.01)
  --batch-size LIST    batch sizes                                  (default 50)
Other options:
  --epochs N           epochs per run (default 50)
  --seed N             seed (default 10701)
  --dataset NAME|DIR   mnist-subset (default), mnist, or a directory
  --dtype f32|f64      float type (default f32)
  --threads N          threads per run (default: number of cores)
  --out DIR            output directory (default runs/sweep)
  -h, --help           this text

Writes DIR/logs/RUN.csv per run, DIR/results.md, DIR/results.csv and DIR/curves.svg.
USAGE
}

hidden_list="" activation_list="" lr_list="" batch_list=""
epochs=50 seed=10701 dataset=mnist-subset dtype=f32 out=runs/sweep
threads=$(nproc 2>/dev/null || echo 2)
while [ $# -gt 0 ]; do
    case "$1" in
        --hidden) hidden_list=$2; shift 2 ;;
        --activation) activation_list=$2; shift 2 ;;
        --lr) lr_list=$2; shift 2 ;;
        --batch-size) batch_list=$2; shift 2 ;;
        --epochs) epochs=$2; shift 2 ;;
        --seed) seed=$2; shift 2 ;;
        --dataset) dataset=$2; shift 2 ;;
        --dtype) dtype=$2; shift 2 ;;
        --threads) threads=$2; shift 2 ;;
        --out) out=$2; shift 2 ;;
        -h|--help) usage; exit 0 ;;
        *) echo "sweep.sh: unknown option '$1' (see --help)" >&2; exit 2 ;;
    esac
done

cd "$(dirname "$0")/.."
cargo build --release --quiet
nabla=target/release/nabla

# Each run: NAME HIDDEN ACTIVATION LR BATCH
runs=()
if [ -z "$hidden_list$activation_list$lr_list$batch_list" ]; then
    runs=(
        "a 256 sigmoid 0.01 50"
        "b 256 sigmoid 0.001 50"
        "c 256 relu 0.01 50"
        "d 256 relu 0.01 200"
        "e 384,256 relu 0.01 50"
    )
else
    for hidden in ${hidden_list:-256}; do
        for activation in ${activation_list:-sigmoid}; do
            for lr in ${lr_list:-0.01}; do
                for batch in ${batch_list:-50}; do
                    runs+=("h${hidden//,/-}_${activation}_lr${lr}_bs${batch} $hidden $activation $lr $batch")
                done
            done
        done
    done
fi

mkdir -p "$out/logs"
logs=()
failed=()
started=$(date +%s.%N)
for run in "${runs[@]}"; do
    read -r name hidden activation lr batch <<<"$run"
    log="$out/logs/$name.csv"
    echo "== $name: hidden $hidden, $activation, lr $lr, batch $batch, $epochs epochs"
    if ! "$nabla" train --dataset "$dataset" --hidden "$hidden" --activation "$activation" \
        --lr "$lr" --batch-size "$batch" --epochs "$epochs" --seed "$seed" \
        --dtype "$dtype" --threads "$threads" --quiet --log "$log"; then
        failed+=("$name")
    fi
    # A run that stopped early (divergence) still counts with the epochs it logged.
    if [ "$(wc -l <"$log" 2>/dev/null || echo 0)" -gt 1 ]; then
        logs+=("$log")
    fi
done
finished=$(date +%s.%N)

if [ ${#logs[@]} -gt 0 ]; then
    "$nabla" summarize "${logs[@]}" --markdown "$out/results.md" --csv "$out/results.csv"
    "$nabla" plot "${logs[@]}" -o "$out/curves.svg"
    cat "$out/results.md"
fi
awk -v start="$started" -v end="$finished" -v count="${#runs[@]}" \
    'BEGIN { printf "sweep wall time: %.1f s for %d runs\n", end - start, count }'
if [ ${#failed[@]} -gt 0 ]; then
    echo "sweep.sh: ${#failed[@]} run(s) failed: ${failed[*]} (their errors are above)" >&2
    exit 1
fi
