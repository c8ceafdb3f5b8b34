#!/usr/bin/env bash
# Prints cargo's target directory for this repository, as cargo itself resolves it
# (CARGO_TARGET_DIR, CARGO_BUILD_TARGET_DIR or a .cargo/config target-dir, relative ones
# included), so that scripts run the binary they just built, never a stale one under
# ./target. Needs only cargo (no jq, no python).
#
#   "$(scripts/target-dir.sh)/release/nabla"     # about 0.1 s
set -euo pipefail
cd "$(dirname "$0")/.."
cargo metadata --format-version 1 --no-deps --offline \
    | grep -o '"target_directory":"[^"]*"' \
    | sed 's/^"target_directory":"//; s/"$//'
