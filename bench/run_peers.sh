#!/usr/bin/env bash
# Runs the evoc benchmarks and their JAX (CPU) peers one after the other on this machine and prints one
# side-by-side table (the source of bench/RESULTS.md).
#
#   bench/run_peers.sh [--quick] [--no-build] [--only mlp|cnn|train]... [--csv FILE]
#
#   --quick      fewer timed runs and only P = 1024 for the MLP (a smoke run; the shapes of cnn/train are unchanged)
#   --no-build   do not (re)build the benchmarks first
#   --only W     run only workload W (mlp, cnn, train); may be repeated
#   --csv FILE   also write the raw rows (both implementations) to FILE
#
# Environment: BUILD_DIR (default build-bench), JAX_PYTHON (default /tmp/venv-jax/bin/python; a throwaway venv made
# with `python3 -m venv /tmp/venv-jax && /tmp/venv-jax/bin/pip install jax flax`; jax is never a project dependency),
# OMP_NUM_THREADS / XLA_FLAGS are passed through unchanged (both sides use every core by default).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD_DIR="${BUILD_DIR:-$ROOT/build-bench}"
JAX_PYTHON="${JAX_PYTHON:-/tmp/venv-jax/bin/python}"
QUICK=()
BUILD=1
ONLY=()
CSV_OUT=""
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) QUICK=(--quick) ;;
    --no-build) BUILD=0 ;;
    --only) ONLY+=("$2"); shift ;;
    --csv) CSV_OUT="$2"; shift ;;
    -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
    *) echo "run_peers.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done
[ ${#ONLY[@]} -eq 0 ] && ONLY=(mlp cnn train)

if [ "$BUILD" = 1 ]; then
  BUILD_LOG="$(mktemp)"
  if ! { cmake -S "$ROOT" -B "$BUILD_DIR" -DEVOC_CUDA=OFF -DCMAKE_BUILD_TYPE=Release &&
         cmake --build "$BUILD_DIR" -j"$(nproc)" --target bench_mlp_pop bench_cnn_pop bench_train_step; } \
       >"$BUILD_LOG" 2>&1; then
    tail -30 "$BUILD_LOG" >&2
    echo "run_peers.sh: build failed (full log: $BUILD_LOG)" >&2
    exit 1
  fi
  rm -f "$BUILD_LOG"
fi
if [ ! -x "$JAX_PYTHON" ]; then
  echo "run_peers.sh: $JAX_PYTHON not found; make the throwaway venv:" >&2
  echo "  python3 -m venv /tmp/venv-jax && /tmp/venv-jax/bin/pip install jax flax" >&2
  exit 2
fi

ROWS="$(mktemp)"
trap 'rm -f "$ROWS"' EXIT

echo "machine: $(lscpu | sed -n 's/^Model name: *//p' | head -1), $(nproc) CPUs" \
     "($(lscpu | sed -n 's/^Core(s) per socket: *//p' | head -1) cores/socket," \
     "$(lscpu | sed -n 's/^Socket(s): *//p' | head -1) socket(s)), $(free -g | awk '/^Mem:/ {print $2}') GiB RAM"
echo "date:    $(date -u '+%Y-%m-%d %H:%M UTC'); load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
if awk '{exit !($1 > 0.5)}' /proc/loadavg; then
  echo "warning: the machine is busy (load average $(cut -d' ' -f1 /proc/loadavg)); timings will be noisy" >&2
fi
echo "evoc:    $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')$(git -C "$ROOT" diff --quiet 2>/dev/null || echo '+dirty'), $(cmake --version | head -1), $(${CC:-cc} --version | head -1)"
echo "jax:     $("$JAX_PYTHON" -c 'import jax, jaxlib; print("jax", jax.__version__, "jaxlib", jaxlib.__version__)')"
echo

for w in "${ONLY[@]}"; do
  case "$w" in
    mlp) prog=bench_mlp_pop ;;
    cnn) prog=bench_cnn_pop ;;
    train) prog=bench_train_step ;;
    *) echo "run_peers.sh: unknown workload $w" >&2; exit 2 ;;
  esac
  echo "running evoc $prog ${QUICK[*]:-} ..." >&2
  "$BUILD_DIR/bench/$prog" --csv "${QUICK[@]}" >>"$ROWS"
  echo "running jax $w ${QUICK[*]:-} ..." >&2
  "$JAX_PYTHON" "$ROOT/bench/jax_peers.py" --csv --only "$w" "${QUICK[@]}" >>"$ROWS"
done

[ -n "$CSV_OUT" ] && cp "$ROWS" "$CSV_OUT"
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
echo

# Rows: impl,workload,config,flop,median_ms,min_ms,gflops. Speedup = JAX median / evoc median (> 1: evoc faster).
awk -F, '
  { key = $2; if (!(key in seen)) { seen[key] = 1; order[++n] = key; cfg[key] = $3; flop[key] = $4 }
    ms[$1, key] = $5; mn[$1, key] = $6; gf[$1, key] = $7 }
  function cell(impl, k) {
    if (!((impl, k) in ms)) return sprintf("%9s | %9s | %9s", "-", "-", "-")
    return sprintf("%9.3f | %9.3f | %9.2f", ms[impl, k], mn[impl, k], gf[impl, k])
  }
  END {
    printf "| %-14s | %-34s | %9s | %9s | %9s | %9s | %9s | %9s | %9s | %8s | %-11s |\n", "workload", "config",
           "GFLOP", "evoc ms", "evoc min", "evoc GF/s", "JAX ms", "JAX min", "JAX GF/s", "speedup", "verdict"
    printf "|%s|%s|%s|%s|%s|%s|%s|%s|%s|%s|%s|\n", "----------------", "------------------------------------",
           "----------:", "----------:", "----------:", "----------:", "----------:", "----------:", "----------:",
           "---------:", "-------------"
    for (i = 1; i <= n; i++) {
      k = order[i]; s = "-"; verdict = ""
      if ((("evoc", k) in ms) && (("jax", k) in ms) && ms["evoc", k] > 0) {
        s = sprintf("%.2fx", ms["jax", k] / ms["evoc", k])
        verdict = (ms["jax", k] >= ms["evoc", k]) ? "evoc faster" : "JAX faster"
      }
      printf "| %-14s | %-34s | %9.3f | %s | %s | %8s | %-11s |\n", k, cfg[k], flop[k] / 1e9, cell("evoc", k),
             cell("jax", k), s, verdict
    }
  }' "$ROWS"
