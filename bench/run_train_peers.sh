#!/usr/bin/env bash
# Seconds per epoch of the seed CNN's gradient training (Fashion-MNIST, Adam 1e-3, batch 128, 468 steps per epoch)
# in evoc, JAX/Flax/Optax and PyTorch, one after the other on this machine, and one side-by-side table.
#
#   bench/run_train_peers.sh [--epochs N] [--threads 1] [--no-build] [--only evoc|jax|torch]... [--csv FILE]
#
#   --epochs N   epochs per implementation (default 1; each epoch is timed alone, evaluation excluded)
#   --threads 1  one thread each (OMP_NUM_THREADS=1 for evoc, XLA_FLAGS for JAX, torch.set_num_threads(1)): steadier
#                numbers on a shared machine; default: each uses every core
#   --no-build   do not (re)build evoc first
#   --only X     run only implementation X; may be repeated
#   --csv FILE   also write the raw rows (impl,epoch,train_s,test_acc,test_loss,eval_s,threads) to FILE
#
# evoc runs `evoc train configs/fashion_mnist_cnn_adam.yaml` (its metrics.jsonl epoch lines carry epoch_s and
# eval_s); the peers run bench/train_epoch_peers.py (same model, data, batch, optimizer and timing rules).
# Environment: BUILD_DIR (default build-bench), JAX_PYTHON (default /tmp/venv-jax/bin/python: python3 -m venv
# /tmp/venv-jax && /tmp/venv-jax/bin/pip install jax flax optax), TORCH_PYTHON (default /tmp/venv-torch/bin/python:
# python3 -m venv /tmp/venv-torch && /tmp/venv-torch/bin/pip install torch), DATA_DIR (default
# /usr/share/datasets/fashion-mnist). Neither venv is a project dependency; a missing one is skipped with a note.
# OMP_NUM_THREADS / XLA_FLAGS pass through unchanged (every implementation uses every core by default).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD_DIR="${BUILD_DIR:-$ROOT/build-bench}"
JAX_PYTHON="${JAX_PYTHON:-/tmp/venv-jax/bin/python}"
TORCH_PYTHON="${TORCH_PYTHON:-/tmp/venv-torch/bin/python}"
DATA_DIR="${DATA_DIR:-/usr/share/datasets/fashion-mnist}"
EPOCHS=1
THREADS=0
BUILD=1
ONLY=()
CSV_OUT=""
while [ $# -gt 0 ]; do
  case "$1" in
    --epochs) EPOCHS="$2"; shift ;;
    --threads) THREADS="$2"; shift ;;
    --no-build) BUILD=0 ;;
    --only) ONLY+=("$2"); shift ;;
    --csv) CSV_OUT="$2"; shift ;;
    -h|--help) sed -n '2,21p' "$0"; exit 0 ;;
    *) echo "run_train_peers.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done
[ ${#ONLY[@]} -eq 0 ] && ONLY=(evoc jax torch)
[ "$THREADS" = 1 ] && export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1

if [ "$BUILD" = 1 ]; then
  BUILD_LOG="$(mktemp)"
  if ! { cmake -S "$ROOT" -B "$BUILD_DIR" -DEVOC_CUDA=OFF -DCMAKE_BUILD_TYPE=Release &&
         cmake --build "$BUILD_DIR" -j"$(nproc)" --target evoc_cli; } >"$BUILD_LOG" 2>&1; then
    tail -30 "$BUILD_LOG" >&2
    echo "run_train_peers.sh: build failed (full log: $BUILD_LOG)" >&2
    exit 1
  fi
  rm -f "$BUILD_LOG"
fi

ROWS="$(mktemp)"
RUN_DIR="$(mktemp -d)"
trap 'rm -rf "$ROWS" "$RUN_DIR"' EXIT

echo "machine: $(lscpu | sed -n 's/^Model name: *//p' | head -1), $(nproc --all) CPUs, $(free -g | awk '/^Mem:/ {print $2}') GiB RAM"
echo "date:    $(date -u '+%Y-%m-%d %H:%M UTC'); load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
if awk '{exit !($1 > 0.5)}' /proc/loadavg; then
  echo "warning: the machine is busy (load average $(cut -d' ' -f1 /proc/loadavg)); timings will be noisy" >&2
fi
echo "evoc:    $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')$(git -C "$ROOT" diff --quiet 2>/dev/null || echo '+dirty')"

for impl in "${ONLY[@]}"; do
  case "$impl" in
    evoc)
      echo "running evoc train ($EPOCHS epochs) ..." >&2
      "$BUILD_DIR/apps/evoc/evoc" train "$ROOT/configs/fashion_mnist_cnn_adam.yaml" --quiet --out "$RUN_DIR/evoc" \
        --set trainer.epochs="$EPOCHS" --set task.data_dir="$DATA_DIR" |
        python3 -c '
import json, os, sys
for line in sys.stdin:
    o = json.loads(line)
    if "test_loss" in o:
        print("evoc,%d,%.3f,%.4f,%.4f,%.3f,%d" % (o["epoch"], o["epoch_s"], o["test_acc"], o["test_loss"],
              o["eval_s"], int(os.environ.get("OMP_NUM_THREADS", os.cpu_count()))))' >>"$ROWS" ||
        echo "note: evoc failed; its rows are missing" >&2
      ;;
    jax|torch)
      py="$JAX_PYTHON"
      [ "$impl" = torch ] && py="$TORCH_PYTHON"
      if [ ! -x "$py" ]; then
        echo "note: $py not found: $impl skipped (see --help for the venv)" >&2
        continue
      fi
      echo "running $impl ($EPOCHS epochs) ..." >&2
      "$py" "$ROOT/bench/train_epoch_peers.py" --framework "$impl" --epochs "$EPOCHS" --data-dir "$DATA_DIR" \
        --threads "$THREADS" --csv >>"$ROWS" || echo "note: $impl failed; its rows are missing" >&2
      ;;
    *) echo "run_train_peers.sh: unknown implementation $impl" >&2; exit 2 ;;
  esac
done
[ -n "$CSV_OUT" ] && cp "$ROWS" "$CSV_OUT"
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
echo

# Per implementation: mean training seconds per epoch, the last epoch's test accuracy, and evoc's speedup.
awk -F, '
  { if (!($1 in n)) order[++k] = $1; n[$1]++; s[$1] += $3; acc[$1] = $4; ev[$1] += $6; th[$1] = $7 }
  END {
    printf "| %-6s | %6s | %11s | %9s | %8s | %7s | %-14s |\n", "impl", "epochs", "s/epoch", "test acc", "eval s",
           "threads", "evoc speedup"
    printf "|--------|-------:|------------:|----------:|---------:|--------:|----------------|\n"
    for (i = 1; i <= k; i++) {
      m = order[i]; spe = "-"
      if (("evoc" in n) && m != "evoc") spe = sprintf("%.2fx", (s[m] / n[m]) / (s["evoc"] / n["evoc"]))
      printf "| %-6s | %6d | %11.2f | %9.4f | %8.2f | %7s | %-14s |\n", m, n[m], s[m] / n[m], acc[m], ev[m] / n[m],
             th[m], spe
    }
  }' "$ROWS"
