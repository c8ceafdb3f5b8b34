#!/usr/bin/env bash
# Hyperparameter sweeps: a grid (or a seeded random sample) of `nabla train` runs, one run
# folder each, run locally several at a time, listed for GNU parallel, or submitted as a
# Slurm job array; then results.md, results.csv, curves.svg and a self-contained
# results.html. A sweep that was stopped continues where it stopped when started again
# with the same command (--force runs everything again).
#
#   scripts/sweep.sh                                   # the assignment's five experiments
#   scripts/sweep.sh --activation "sigmoid relu" --lr "0.1 0.01" --epochs 20
#   scripts/sweep.sh --random 12 --lr "loguniform:1e-4:1e-1" --hidden "64 128 256"
#   scripts/sweep.sh --list | parallel --jobs 4 && scripts/sweep.sh --collect runs/sweep
#   scripts/sweep.sh --slurm --submit --wait --time 00:10:00
#
# Cost: the five experiments (5 runs x 50 epochs on the 3,000/1,000 subset, f32) take
# about 10 s on a 2-core machine, plus the release build the first time.
# `scripts/sweep.sh --help` lists every option.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
(cd "$root" && cargo build --release --quiet --bin nabla)
exec "$("$root/scripts/target-dir.sh")/release/nabla" sweep "$@"
