#!/usr/bin/env bash
# Times the Rust engine's step (`eccentric bench`) and the PyTorch / NumPy reference
# (bench/reference.py) on n=4096, d=64 with the log kernel (s=0).
# Prints each implementation's steps/s, then the best Rust row's speed-up over torch and numpy.
#
# Usage: bench/compare.sh     (from anywhere; runs in the repository root)
# Both programs write CSV with the header
#   impl,n,d,threads,steps_per_second,pair_interactions_per_second,gflops
# into a temporary folder that is removed on exit. PYTHON picks the interpreter (default python3).
set -euo pipefail

cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

echo "== rust: cargo run --release -- bench --n 4096 --dim 64 --kernel-s 0"
cargo run --release --quiet -- bench --n 4096 --dim 64 --kernel-s 0 --out "$TMP/rust.csv"
echo
echo "== reference: bench/reference.py --n 4096 --dim 64"
"$PYTHON" bench/reference.py --n 4096 --dim 64 --out "$TMP/ref.csv"
echo

"$PYTHON" - "$TMP/rust.csv" "$TMP/ref.csv" <<'EOF'
import csv
import sys

HEADER = ["impl", "n", "d", "threads", "steps_per_second", "pair_interactions_per_second", "gflops"]


def read(path, label):
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    if not rows or rows[0] != HEADER:
        sys.exit(f"compare.sh: {label} CSV {path} does not start with the header {','.join(HEADER)}")
    out = [dict(zip(HEADER, r)) for r in rows[1:] if r]
    if not out:
        sys.exit(f"compare.sh: {label} CSV {path} has no rows")
    for r in out:
        r["sps"] = float(r["steps_per_second"])
    return out


rust = read(sys.argv[1], "rust")
ref = read(sys.argv[2], "reference")

print("== steps per second (n=4096, d=64, s=0)")
print(f"{'source':<10}{'impl':<16}{'n':>6}{'d':>5}{'threads':>9}{'steps/s':>12}{'GFLOP/s':>10}")
for source, rows in (("rust", rust), ("reference", ref)):
    for r in rows:
        print(f"{source:<10}{r['impl']:<16}{r['n']:>6}{r['d']:>5}{r['threads']:>9}{r['sps']:>12.4g}{float(r['gflops']):>10.2f}")

best = max(rust, key=lambda r: r["sps"])
print()
print(f"best rust row: {best['impl']} at {best['sps']:.4g} steps/s")
for impl in ("torch", "numpy"):
    match = [r for r in ref if r["impl"] == impl and r["n"] == best["n"] and r["d"] == best["d"]]
    if not match:
        print(f"  vs {impl}: no {impl} row with n={best['n']} d={best['d']} (see the reference output above)")
        continue
    print(f"  vs {impl}: {best['sps'] / match[0]['sps']:.3g}x ({impl} {match[0]['sps']:.4g} steps/s)")
EOF
