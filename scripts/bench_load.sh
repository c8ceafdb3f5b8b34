#!/usr/bin/env bash
# Table loading speed: `nabla inspect FILE` (which reads the table exactly as
# --train-file does) against pandas.read_csv (C engine, default settings) and, for
# reference, polars.read_csv, on two generated CSV files (seeded, so the same bytes on
# every machine; written to a scratch directory removed on exit):
#
#   numeric.csv  1,000,000 rows x 20 columns, header: 19 standard-normal features to 5
#                decimals and a 0/1 integer label (about 155 MB)
#   text.csv     200,000 rows x 14 columns, header: colour (8 values), city (50), code
#                like A123 (1000), 10 numbers and a text label (yes/no/maybe)
#
# Two times per tool and file:
#   read  in-process seconds of the read alone: nabla's own "read in X s" (a clock around
#         Table::read, printed to the millisecond), and time.perf_counter() around the
#         read_csv call for pandas and polars
#   wall  the whole process, start to exit: for nabla also describing the columns, for
#         Python the interpreter start and `import pandas` / `import polars`
# Paired: each repeat runs nabla, pandas, polars back to back on a file (the order
# reversed every other repeat); the ratios pandas/nabla and polars/nabla are taken within
# a repeat and their medians printed with the median times (above 1: nabla is faster).
#
# Before timing, nabla's parsed values are checked against pandas's on both files: shape,
# names, missing counts, and each numeric column's min / mean / max (1e-6 relative; the
# mean nabla prints to 6 decimals may also differ by half its last digit) and each text
# column's number of categories. A mismatch fails the script (a fast but wrong parser).
#
#   scripts/bench_load.sh                     # about 30 s on 2 cores (5 repeats)
#   REPEATS=9 scripts/bench_load.sh           # more pairs
#   QUICK=1 scripts/bench_load.sh             # 100,000 / 20,000 rows, one repeat, about 5 s (CI)
#   PYTHON=/tmp/venv/bin/python scripts/bench_load.sh   # the Python to use (default python3)
#   NABLA=path/to/nabla scripts/bench_load.sh           # this binary, without building
#
# Python needs numpy and pandas; polars is optional (its columns print "-" with a note if
# it does not import). Runs one process at a time.
set -euo pipefail
cd "$(dirname "$0")/.."

repeats=${REPEATS:-5}
numeric_rows=1000000
text_rows=200000
if [ -n "${QUICK:-}" ]; then repeats=1 numeric_rows=100000 text_rows=20000; fi
python=${PYTHON:-python3}
helper=scripts/bench_load.py

if [ -n "${NABLA:-}" ]; then
    nabla=$NABLA
else
    cargo build --release --quiet --bin nabla
    nabla=$(scripts/target-dir.sh)/release/nabla
fi
[ -x "$nabla" ] || { echo "bench_load.sh: no nabla binary at $nabla" >&2; exit 1; }
if ! "$python" -c 'import numpy, pandas' 2>/dev/null; then
    echo "bench_load.sh: $python needs numpy and pandas (set PYTHON=...)" >&2
    exit 1
fi
polars=""
"$python" -c 'import polars' 2>/dev/null && polars=1

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

median() { sort -g | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
# Runs "$@" with stdout to $work/out; prints its wall seconds.
wall() {
    local start end
    start=$(date +%s.%N)
    "$@" >"$work/out"
    end=$(date +%s.%N)
    awk -v s="$start" -v e="$end" 'BEGIN { printf "%.3f\n", e - s }'
}
# a / b, or "-" when either is missing or b is zero (nabla prints milliseconds).
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "-" || b == "-" || b + 0 == 0) print "-"; else printf "%.2f\n", a / b }'; }

flags=$(grep -m1 '^flags' /proc/cpuinfo || true)
has() { case " ${flags#*:} " in *" $1 "*) echo yes ;; *) echo no ;; esac; }
echo "machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), nproc $(nproc), avx512f $(has avx512f), avx2 $(has avx2); $(date -u +%Y-%m-%d)"
echo "$("$python" "$helper" versions); nabla $nabla"
[ -z "$polars" ] && echo "note: polars does not import in $python: its columns are skipped (-)"

start=$(date +%s.%N)
"$python" "$helper" gen "$work" "$numeric_rows" "$text_rows"
echo "generated in $(awk -v s="$start" -v e="$(date +%s.%N)" 'BEGIN { printf "%.1f", e - s }') s: numeric.csv $numeric_rows rows ($(du -m "$work/numeric.csv" | cut -f1) MB), text.csv $text_rows rows ($(du -m "$work/text.csv" | cut -f1) MB)"

# The correctness check (also warms the page cache and Python's imports).
for file in numeric text; do
    timeout 300 "$nabla" inspect "$work/$file.csv" >"$work/inspect_$file"
    if ! checked=$(timeout 300 "$python" "$helper" check "$work/$file.csv" "$work/inspect_$file"); then
        echo "bench_load.sh: FAILED: nabla's values differ from pandas's on $file.csv (above)" >&2
        exit 1
    fi
    echo "check $file.csv: $checked: nabla agrees with pandas"
done

# One tool on one file: prints "read wall" (seconds), "- -" if skipped.
measure() {
    local tool=$1 file=$2 seconds read
    case $tool in
        nabla)
            seconds=$(wall timeout 300 "$nabla" inspect "$file")
            read=$(head -1 "$work/out" | sed -n 's/.*read in \([0-9.]*\) s.*/\1/p')
            ;;
        pandas | polars)
            if [ "$tool" = polars ] && [ -z "$polars" ]; then echo "- -"; return; fi
            seconds=$(wall timeout 300 "$python" "$helper" read "$tool" "$file")
            read=$(sed -n 's/.*seconds \([0-9.]*\).*/\1/p' "$work/out")
            ;;
    esac
    [ -n "$read" ] || { echo "bench_load.sh: no read time from $tool on $file" >&2; exit 1; }
    echo "$read $seconds"
}

echo
echo "seconds; read = in-process read only (nabla: its own 'read in'; Python: perf_counter around"
echo "read_csv), wall = whole process (nabla: + describing the columns; Python: + start, import);"
echo "ratios pandas/nabla and polars/nabla within each repeat (above 1: nabla faster)"
printf '%-11s %3s %-20s %7s %7s %7s %7s %7s %7s  %7s %7s %7s %7s\n' file rep order \
    nabla:rd wall pandas:rd wall polars:rd wall "pd/nb:rd" wall "pl/nb:rd" wall
summary=()
for file in numeric text; do
    for run in $(seq "$repeats"); do
        if [ $((run % 2)) = 1 ]; then order="nabla pandas polars"; else order="polars pandas nabla"; fi
        for tool in $order; do
            measure "$tool" "$work/$file.csv" >"$work/m_$tool"
            read -r "${tool}_read" "${tool}_wall" <"$work/m_$tool"
        done
        row=("$nabla_read" "$nabla_wall" "$pandas_read" "$pandas_wall" "$polars_read" "$polars_wall"
            "$(ratio "$pandas_read" "$nabla_read")" "$(ratio "$pandas_wall" "$nabla_wall")"
            "$(ratio "$polars_read" "$nabla_read")" "$(ratio "$polars_wall" "$nabla_wall")")
        names=(nabla_read nabla_wall pandas_read pandas_wall polars_read polars_wall pd_read pd_wall pl_read pl_wall)
        for i in "${!names[@]}"; do echo "${row[$i]}" >>"$work/${file}_${names[$i]}"; done
        printf '%-11s %3s %-20s %7s %7s %7s %7s %7s %7s  %7s %7s %7s %7s\n' "$file.csv" "$run" "${order// /,}" "${row[@]}"
    done
    med=()
    for name in "${names[@]}"; do
        if grep -q -- '^-$' "$work/${file}_$name"; then med+=("-"); else med+=("$(median <"$work/${file}_$name")"); fi
    done
    line=$(printf '%-11s %3s %-20s %7s %7s %7s %7s %7s %7s  %7s %7s %7s %7s' "$file.csv" med "of $repeats" "${med[@]}")
    summary+=("$line")
done
echo
echo "medians (times: median of the repeats; ratios: median of the per-repeat ratios)"
for line in "${summary[@]}"; do echo "$line"; done
