#!/usr/bin/env bash
# Training runs side by side with EvoJAX on this machine: for each recipe, `evoc run` on evoc's config and EvoJAX's
# own Trainer (bench/evojax_train.py, JAX on CPU) with the same hyperparameters, iterations and seed, one after the
# other; prints one table (iterations, wall time, generations per second, final and best test score).
#
#   bench/run_train_evojax.sh [--iters N] [--seed S] [--no-build] [--out DIR] RECIPE...
#
#   RECIPE       cartpole_easy | cartpole_hard | mnist   (configs/cartpole_swingup_{easy,hard}_pgpe.yaml and
#                configs/fashion_mnist_pgpe.yaml; EvoJAX's examples/train_cartpole.py and train_mnist.py defaults)
#   --iters N    iterations for both (default: the recipe's, 1000 / 1000 / 5000; EvoJAX's MNIST generation takes
#                ~23 s on a 2-vCPU machine, so pass e.g. --iters 100 there)
#   --seed S     seed for both (default 42, EvoJAX's default)
#   --no-build   use BUILD_DIR's evoc as it is
#   --out DIR    keep the run folders and EvoJAX's JSON lines there (default: a temporary folder)
#
# Environment: BUILD_DIR (default build-bench), EVOJAX_PYTHON (default /tmp/venv-evojax/bin/python: a throwaway
# venv made with `python3 -m venv /tmp/venv-evojax && /tmp/venv-evojax/bin/pip install evojax`; never a project
# dependency). Both sides use every core. Each side's wall time includes its start-up and compilation (evoc's jit,
# JAX's XLA) and the periodic tests, as in a user's run; generations/s = iterations / wall time.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD_DIR="${BUILD_DIR:-$ROOT/build-bench}"
EVOJAX_PYTHON="${EVOJAX_PYTHON:-/tmp/venv-evojax/bin/python}"
ITERS=0
SEED=42
BUILD=1
OUT=""
RECIPES=()
while [ $# -gt 0 ]; do
  case "$1" in
    --iters) ITERS="$2"; shift ;;
    --seed) SEED="$2"; shift ;;
    --no-build) BUILD=0 ;;
    --out) OUT="$2"; shift ;;
    -h|--help) sed -n '2,19p' "$0"; exit 0 ;;
    cartpole_easy|cartpole_hard|mnist) RECIPES+=("$1") ;;
    *) echo "run_train_evojax.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done
[ ${#RECIPES[@]} -gt 0 ] || { echo "run_train_evojax.sh: name at least one recipe (see --help)" >&2; exit 2; }
[ -x "$EVOJAX_PYTHON" ] || { echo "run_train_evojax.sh: no EvoJAX python at $EVOJAX_PYTHON (see --help)" >&2; exit 2; }
[ -n "$OUT" ] || OUT="$(mktemp -d)"
mkdir -p "$OUT"

if [ "$BUILD" = 1 ]; then
  cmake -S "$ROOT" -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=Release > "$OUT/build.log" 2>&1
  cmake --build "$BUILD_DIR" -j --target evoc_cli >> "$OUT/build.log" 2>&1 || { tail -20 "$OUT/build.log"; exit 1; }
fi
EVOC="$BUILD_DIR/apps/evoc/evoc"

config_of() {
  case "$1" in
    cartpole_easy) echo "$ROOT/configs/cartpole_swingup_easy_pgpe.yaml" ;;
    cartpole_hard) echo "$ROOT/configs/cartpole_swingup_hard_pgpe.yaml" ;;
    mnist) echo "$ROOT/configs/fashion_mnist_pgpe.yaml" ;;
  esac
}

ROWS="$OUT/rows.tsv"
: > "$ROWS"
for r in "${RECIPES[@]}"; do
  cfg="$(config_of "$r")"
  sets=(--set "seed=$SEED" --set trainer.max_seconds=0)
  [ "$ITERS" -gt 0 ] && sets+=(--set "trainer.max_iter=$ITERS")
  echo "== $r: evoc ($cfg)" >&2
  rm -rf "$OUT/evoc_$r"
  "$EVOC" run "$cfg" "${sets[@]}" --out "$OUT/evoc_$r" --quiet
  python3 - "$OUT/evoc_$r/summary.json" "$r" >> "$ROWS" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
print("\t".join(map(str, [sys.argv[2], "evoc", s["iterations"], s["wall_s"], s["test_score"], s["best_test_score"]])))
PY
  echo "== $r: EvoJAX" >&2
  args=("$r" --seed "$SEED" --out "$OUT/evojax_$r.jsonl")
  [ "$ITERS" -gt 0 ] && args+=(--max-iter "$ITERS")
  (cd "$OUT" && "$EVOJAX_PYTHON" "$ROOT/bench/evojax_train.py" "${args[@]}") > "$OUT/evojax_$r.log" 2>&1 ||
    { tail -20 "$OUT/evojax_$r.log"; exit 1; }
  python3 - "$OUT/evojax_$r.jsonl" "$r" >> "$ROWS" <<'PY'
import json, sys
s = [json.loads(l) for l in open(sys.argv[1]) if l.strip()][-1]
tests = s["tests"] + ([s["final_test"]] if s["final_test"] is not None else [])
print("\t".join(map(str, [sys.argv[2], "evojax", s["iterations"], s["wall_s"], s["final_test"], max(tests)])))
PY
done

echo
echo "Training side by side, seed $SEED, $(nproc) CPUs, $(date -u '+%Y-%m-%d %H:%M UTC'); run folders in $OUT"
python3 - "$ROWS" <<'PY'
import sys
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1]) if l.strip()]
print(f"{'recipe':<15}{'impl':<8}{'iters':>7}{'wall s':>10}{'gen/s':>9}{'final test':>12}{'best test':>11}{'speedup':>9}")
rate = {}
for r, impl, it, wall, final, best in rows:
    g = int(it) / float(wall)
    rate[(r, impl)] = g
    sp = f"{rate[(r, 'evoc')] / g:.2f}x" if impl == "evojax" else ""
    print(f"{r:<15}{impl:<8}{int(it):>7}{float(wall):>10.1f}{g:>9.3f}{float(final):>12.4f}{float(best):>11.4f}{sp:>9}")
print("speedup = evoc generations/s over EvoJAX's")
PY
