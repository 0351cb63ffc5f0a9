#!/usr/bin/env bash
# Runs the simulation-manager benchmarks (bench_sim_cartpole, bench_sim_mnist) and their EvoJAX peers
# (bench/evojax_peers.py: SimManager.eval_params on JAX CPU) one after the other on this machine and prints one
# side-by-side table (the source of the simulation rows of bench/RESULTS.md).
#
#   bench/run_sim_peers.sh [--quick] [--no-build] [--only cartpole|mnist]... [--csv FILE]
#
#   --quick      fewer timed generations (a smoke run; the workloads are unchanged)
#   --no-build   do not (re)build the benchmarks first
#   --only W     run only workload W (cartpole, mnist); may be repeated
#   --csv FILE   also write the raw rows (both implementations) to FILE
#
# Environment: BUILD_DIR (default build-bench), EVOJAX_PYTHON (default /tmp/venv-evojax/bin/python; a throwaway
# venv made with `python3 -m venv /tmp/venv-evojax && /tmp/venv-evojax/bin/pip install evojax`; EvoJAX and JAX
# are never project dependencies), OMP_NUM_THREADS / XLA_FLAGS are passed through unchanged (both sides use every
# core by default). MNIST rows need the Debian package dataset-fashion-mnist (both sides skip without it).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD_DIR="${BUILD_DIR:-$ROOT/build-bench}"
EVOJAX_PYTHON="${EVOJAX_PYTHON:-/tmp/venv-evojax/bin/python}"
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
    -h|--help) sed -n '2,17p' "$0"; exit 0 ;;
    *) echo "run_sim_peers.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done
[ ${#ONLY[@]} -eq 0 ] && ONLY=(cartpole mnist)

if [ "$BUILD" = 1 ]; then
  BUILD_LOG="$(mktemp)"
  if ! { cmake -S "$ROOT" -B "$BUILD_DIR" -DEVOC_CUDA=OFF -DCMAKE_BUILD_TYPE=Release &&
         cmake --build "$BUILD_DIR" -j"$(nproc)" --target bench_sim_cartpole bench_sim_mnist; } \
       >"$BUILD_LOG" 2>&1; then
    tail -30 "$BUILD_LOG" >&2
    echo "run_sim_peers.sh: build failed (full log: $BUILD_LOG)" >&2
    exit 1
  fi
  rm -f "$BUILD_LOG"
fi
if [ ! -x "$EVOJAX_PYTHON" ]; then
  echo "run_sim_peers.sh: $EVOJAX_PYTHON not found; make the throwaway venv:" >&2
  echo "  python3 -m venv /tmp/venv-evojax && /tmp/venv-evojax/bin/pip install evojax" >&2
  exit 2
fi

ROWS="$(mktemp)"
trap 'rm -f "$ROWS"' EXIT

echo "machine: $(lscpu | sed -n 's/^Model name: *//p' | head -1), $(nproc) CPUs, $(free -g | awk '/^Mem:/ {print $2}') GiB RAM"
echo "date:    $(date -u '+%Y-%m-%d %H:%M UTC'); load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
if awk '{exit !($1 > 0.5)}' /proc/loadavg; then
  echo "warning: the machine is busy (load average $(cut -d' ' -f1 /proc/loadavg)); timings will be noisy" >&2
fi
echo "evoc:    $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')$(git -C "$ROOT" diff --quiet 2>/dev/null || echo '+dirty'), $(${CC:-cc} --version | head -1)"
echo "evojax:  $("$EVOJAX_PYTHON" -c 'from importlib.metadata import version as v; print("evojax", v("evojax"), "jax", v("jax"), "jaxlib", v("jaxlib"), "flax", v("flax"))' 2>/dev/null)"
echo

for w in "${ONLY[@]}"; do
  case "$w" in
    cartpole) prog=bench_sim_cartpole ;;
    mnist) prog=bench_sim_mnist ;;
    *) echo "run_sim_peers.sh: unknown workload $w" >&2; exit 2 ;;
  esac
  echo "running evoc $prog ${QUICK[*]:-} ..." >&2
  "$BUILD_DIR/bench/$prog" --csv "${QUICK[@]}" >>"$ROWS"
  echo "running evojax $w ${QUICK[*]:-} ..." >&2
  "$EVOJAX_PYTHON" "$ROOT/bench/evojax_peers.py" --csv --only "$w" "${QUICK[@]}" 2>/dev/null >>"$ROWS" ||
    echo "run_sim_peers.sh: evojax_peers.py failed for $w (run it by hand to see why)" >&2
done

[ -n "$CSV_OUT" ] && cp "$ROWS" "$CSV_OUT"
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
echo

# Rows: impl,workload,config,work,median_ms,min_ms,rate (work per generation: env steps or images; rate = work/s).
# Speedup = EvoJAX median / evoc median (> 1: evoc faster).
awk -F, '
  { key = $2; if (!(key in seen)) { seen[key] = 1; order[++n] = key; cfg[key] = $3 }
    ms[$1, key] = $5; rate[$1, key] = $7 }
  END {
    printf "| %-13s | %-40s | %12s | %12s | %14s | %12s | %8s |\n", "workload", "config", "evoc ms/gen",
           "evoc rate/s", "EvoJAX ms/gen", "EvoJAX rate/s", "speedup"
    printf "|%s|%s|%s|%s|%s|%s|%s|\n", "---------------", "------------------------------------------",
           "-------------:", "-------------:", "---------------:", "--------------:", "---------:"
    for (i = 1; i <= n; i++) {
      k = order[i]
      e = ((("evoc", k) in ms) ? sprintf("%12.1f | %12.4g", ms["evoc", k], rate["evoc", k]) : sprintf("%12s | %12s", "-", "-"))
      j = ((("evojax", k) in ms) ? sprintf("%14.1f | %12.4g", ms["evojax", k], rate["evojax", k]) : sprintf("%14s | %12s", "-", "-"))
      s = "-"
      if ((("evoc", k) in ms) && (("evojax", k) in ms) && ms["evoc", k] > 0) s = sprintf("%.1fx", ms["evojax", k] / ms["evoc", k])
      printf "| %-13s | %-40s | %s | %s | %8s |\n", k, cfg[k], e, j, s
    }
  }' "$ROWS"
