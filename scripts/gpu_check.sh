#!/usr/bin/env bash
# The one prepared command for a GPU machine: configure with CUDA (sm_90), build, run the whole test suite with the
# GPU visible, run the benchmarks, keep logs under $OUT (if set), and print a short table last.
# Usage on the device: source .deps/unpack.sh && scripts/gpu_check.sh
set -uo pipefail
cd "$(dirname "$0")/.."
out=${OUT:-build-gpu/logs}
mkdir -p "$out"
status() { printf '%-28s %s\n' "$1" "$2" >> "$out/summary.txt"; }
: > "$out/summary.txt"

nvidia-smi > "$out/nvidia-smi.txt" 2>&1 && status gpu "$(nvidia-smi --query-gpu=name --format=csv,noheader | head -1)"
if cmake -S . -B build-gpu -G Ninja -DEVOC_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES=90 > "$out/configure.log" 2>&1 &&
   cmake --build build-gpu -j"$(nproc)" > "$out/build.log" 2>&1; then
  status build ok
else
  status build FAILED; tail -40 "$out/build.log" "$out/configure.log"; cat "$out/summary.txt"; exit 1
fi
if ctest --test-dir build-gpu --output-on-failure -j4 > "$out/ctest.log" 2>&1; then status tests ok
else status tests FAILED; grep -E 'Failed|FAIL' "$out/ctest.log" | head -20; fi
status tests "$(grep -E 'tests passed' "$out/ctest.log" | tail -1)"
for b in build-gpu/bench/bench_*; do
  [ -x "$b" ] || continue
  timeout 120 "$b" --quick > "$out/$(basename "$b").txt" 2>&1 && status "$(basename "$b")" ok || status "$(basename "$b")" FAILED
done
echo "==== gpu_check summary ===="
cat "$out/summary.txt"
for f in "$out"/bench_*.txt; do [ -f "$f" ] && { echo "--- $(basename "$f")"; tail -15 "$f"; }; done
