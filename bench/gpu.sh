#!/usr/bin/env bash
# Times the GPU engine on a real GPU machine at n = 65,536, d = 128 (and the CPU reference GEMM
# rate for scale), in one short command. Builds without the desktop app, so it needs no window
# libraries. Usage: bench/gpu.sh [SECONDS] [OUT.csv]
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-10}"
out="${2:-gpu_bench.csv}"
cargo run --release --no-default-features --quiet -- bench --backend gpu --n 65536 --dim 128 \
    --kernel-s 0 --seconds "$seconds" --gemm-size 1024 --out "$out"
echo "wrote $out"
