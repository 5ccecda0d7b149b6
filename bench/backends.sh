#!/usr/bin/env bash
# Times the CPU engine (its own choice of force path) and the GPU engine over n = 1024, 4096,
# 16384 and d = 3, 64, 256, and writes the table to a CSV file. Builds without the desktop app.
# Usage: bench/backends.sh [SECONDS] [OUT.csv]
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-2}"
out="${2:-backends.csv}"
cargo run --release --no-default-features --quiet -- bench --backend cpu,gpu --path auto \
    --n 1024,4096,16384 --dim 3,64,256 --seconds "$seconds" --out "$out"
echo "wrote $out"
