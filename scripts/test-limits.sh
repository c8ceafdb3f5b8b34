#!/usr/bin/env bash
# nabla under real cgroup limits: a cgroup made for the test with a CPU quota of one
# core and a 400 MB memory limit (cgroup v2 where the cpu and memory controllers can be
# enabled, v1 otherwise), a training run inside it, then the cgroup removed. Needs root
# (CI runs as root); takes a few seconds.
#
#   scripts/test-limits.sh            # builds the release nabla if missing
set -euo pipefail
cd "$(dirname "$0")/.."
nabla=$(scripts/target-dir.sh)/release/nabla
[ -x "$nabla" ] || cargo build --release --quiet
if [ "$(id -u)" != 0 ]; then
    echo "test-limits: needs root to make cgroups; not run" >&2
    exit 1
fi

made=()
cleanup() {
    for dir in "${made[@]}"; do rmdir "$dir" 2>/dev/null || true; done
}
trap cleanup EXIT

# Directories for the quota and the limit: v2 if its controllers are there, else v1.
v2=/sys/fs/cgroup
if [ -f $v2/cgroup.controllers ] && grep -qw cpu $v2/cgroup.controllers \
    && grep -qw memory $v2/cgroup.controllers; then
    echo "+cpu +memory" > $v2/cgroup.subtree_control 2>/dev/null || true
    cpu_dir=$v2/nabla-test-$$
    memory_dir=$cpu_dir
    mkdir "$cpu_dir"; made+=("$cpu_dir")
    echo "100000 100000" > "$cpu_dir/cpu.max"
    echo 400000000 > "$memory_dir/memory.max"
    kind=v2
elif [ -d /sys/fs/cgroup/cpu ] && [ -d /sys/fs/cgroup/memory ]; then
    cpu_dir=/sys/fs/cgroup/cpu/nabla-test-$$
    memory_dir=/sys/fs/cgroup/memory/nabla-test-$$
    mkdir "$cpu_dir"; made+=("$cpu_dir")
    mkdir "$memory_dir"; made+=("$memory_dir")
    echo 100000 > "$cpu_dir/cpu.cfs_quota_us"
    echo 100000 > "$cpu_dir/cpu.cfs_period_us"
    echo 400000000 > "$memory_dir/memory.limit_in_bytes"
    kind=v1
else
    echo "test-limits: no cgroup v2 cpu+memory controllers and no v1 cpu/memory hierarchies" >&2
    exit 1
fi

# Runs nabla with the given flags inside the test cgroup(s).
inside() {
    sh -c 'for dir in "$1" "$2"; do echo $$ > "$dir/cgroup.procs"; done; shift 2; exec "$@"' \
        _ "$cpu_dir" "$memory_dir" "$nabla" "$@"
}

header=$(inside --train-rows 200 --test-rows 50 --epochs 1 | head -1)
case "$header" in
    *"1 thread (cgroup CPU quota: 1.00 cores; gemm openblas, auto)"*) ;;
    *) echo "test-limits ($kind): the quota did not set the threads: $header" >&2; exit 1 ;;
esac

set +e
error=$(inside --hidden 200000 --train-rows 100 --test-rows 10 --epochs 1 2>&1 >/dev/null)
status=$?
set -e
case "$status:$error" in
    "2:nabla: error: a 784-200000-10 network's parameters and gradients (f32) would need 2.5 GB"*"of memory left under the cgroup's limit") ;;
    *) echo "test-limits ($kind): the memory limit was not a clean refusal (exit $status): $error" >&2; exit 1 ;;
esac
echo "test-limits ($kind): one thread under a one-core quota; a clean refusal under a 400 MB limit"
