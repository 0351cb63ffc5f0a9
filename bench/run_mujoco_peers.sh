#!/usr/bin/env bash
# Runs bench_mujoco (evoc's MuJoCo tasks) and bench/evotorch_peers.py (bare MuJoCo 3 loop, Gymnasium's Hopper-v5,
# EvoTorch's GymNE) one after the other on this machine and prints one side-by-side table (the source of the MuJoCo
# rows of bench/RESULTS.md).
#
#   bench/run_mujoco_peers.sh [--quick]
#
# With EVOTORCH_ACTORS=2 (needs `pip install ray` in the venv) EvoTorch's generation is also timed on 2 Ray actors,
# beside evoc's generation on 2 task threads (the _t2 rows).
#
# Environment: BUILD_DIR (default build), EVOTORCH_PYTHON (default /tmp/venv-evotorch/bin/python: a throwaway venv
# made with `python3 -m venv /tmp/venv-evotorch && /tmp/venv-evotorch/bin/pip install evotorch gymnasium mujoco
# imageio`; none of them is a project dependency).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD_DIR="${BUILD_DIR:-$ROOT/build}"
PY="${EVOTORCH_PYTHON:-/tmp/venv-evotorch/bin/python}"
QUICK=()
[ "${1:-}" = --quick ] && QUICK=(--quick)
rows="$(mktemp)"
trap 'rm -f "$rows"' EXIT
"$BUILD_DIR/bench/bench_mujoco" --csv "${QUICK[@]}" | tee -a "$rows"
ACTORS=()
[ -n "${EVOTORCH_ACTORS:-}" ] && ACTORS=(--actors "$EVOTORCH_ACTORS")
"$PY" "$ROOT/bench/evotorch_peers.py" "${QUICK[@]}" "${ACTORS[@]}" 2> /dev/null | grep "^[a-z0-9.-]*,mujoco_" \
  | tee -a "$rows"
echo
echo "Hopper: physics steps/s (loops, one thread) and env steps/s (one generation of 64 x 1000 steps; _t2: two"
echo "task threads for evoc, two Ray actors for EvoTorch)"
printf '%-34s %14s %14s %14s\n' workload evoc peer "evoc/peer"
awk -F, '
  $1 == "evoc" { e[$2] = $7 }
  $1 != "evoc" { p[$2] = $7; who[$2] = $1 }
  END {
    n = split("mujoco_loop_hopper_bare mujoco_loop_hopper mujoco_pop_hopper_linear_t1 mujoco_pop_hopper_mlp64x64_t1 " \
              "mujoco_pop_hopper_linear_t2 mujoco_pop_hopper_mlp64x64_t2", w, " ")
    for (i = 1; i <= n; i++) {
      k = w[i]
      printf "%-34s %14s %14s %14s  %s\n", k, e[k] != "" ? e[k] : "-", p[k] != "" ? p[k] : "-",
             (e[k] > 0 && p[k] > 0) ? sprintf("%.2fx", e[k] / p[k]) : "-", who[k]
    }
  }' "$rows"
