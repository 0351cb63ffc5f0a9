#!/usr/bin/env bash
# The one prepared command for a GPU machine: configure with CUDA (sm_90), build, run the CUDA op harness (its
# own log keeps the per-op counts and RNG ulp differences), the rest of the test suite with the GPU visible, the
# op harness again under compute-sanitizer memcheck when the machine has it, then the benchmarks; print a short
# table last. Logs go to $bdir/logs; with $OUT set, the table and a tarball of the logs are copied there (the
# device tool returns at most 8 files). Everything shares a time budget (EVOC_GPU_CHECK_SECONDS, default 420 s
# from the start) so the call stays inside 8 minutes; a step that would not fit is reported as skipped.
# Usage on the device: source .deps/unpack.sh && scripts/gpu_check.sh
# A dry run of this script without a GPU: EVOC_GPU_CHECK_EMULATE=1 scripts/gpu_check.sh builds against the CUDA
# emulator (tests/cuda_emu) in build-gpu-emu and runs the benchmarks at their smallest sizes, so the script's steps,
# logs and table are checked before device time is spent on them.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
emulate=${EVOC_GPU_CHECK_EMULATE:-0}
if [ "$emulate" = 1 ]; then
  bdir=build-gpu-emu cuda_flags="-DEVOC_CUDA_EMULATE=ON" bench_args="--quick --runs 1 --warmup 0" run_iters=2
else
  bdir=build-gpu cuda_flags="-DEVOC_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES=90" bench_args="" run_iters=50
fi
logs=$bdir/logs
# .deps unpacked by .deps/unpack.sh: OpenBLAS's libblas/liblapack (which liblapacke loads) sit in openblas-openmp/,
# where update-alternatives would have linked them from.
for d in "${TMPDIR:-/tmp}"/evoc-deps/usr/lib/x86_64-linux-gnu/openblas-openmp; do
  [ -d "$d" ] && export LD_LIBRARY_PATH="$d${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" LIBRARY_PATH="$d${LIBRARY_PATH:+:$LIBRARY_PATH}"
done
mkdir -p "$logs"
budget=${EVOC_GPU_CHECK_SECONDS:-420}
left() { echo $((budget - SECONDS)); }
limit() { local l=$(( $(left) - $1 )); [ "$l" -gt "$2" ] && l=$2; [ "$l" -lt 5 ] && l=5; echo "$l"; } # reserve, cap
# Each line also goes to $OUT at once: if the device tool stops the script at its limit, what ran still comes back.
status() {
  printf '%-28s %s\n' "$1" "$2" >> "$logs/summary.txt"
  [ -n "${OUT:-}" ] && printf '%-28s %s\n' "$1" "$2" >> "$OUT/summary.txt"
  return 0
}
save_logs() { [ -n "${OUT:-}" ] && tar czf "$OUT/gpu_logs.tar.gz" -C "$bdir" logs 2>/dev/null; return 0; }
finish() {
  status total "${SECONDS}s"
  [ -n "${OUT:-}" ] && cp "$logs/summary.txt" "$OUT/"
  save_logs
  for f in "$logs"/bench_*.txt; do [ -f "$f" ] && { echo "--- $(basename "$f")"; tail -15 "$f"; }; done
  echo "==== gpu_check summary ===="
  cat "$logs/summary.txt"
  exit "$1"
}
: > "$logs/summary.txt"
[ -n "${OUT:-}" ] && : > "$OUT/summary.txt"
trap save_logs EXIT # the logs come back however the script ends (a `timeout -k` stops a hung step)
# nvcc (and compute-sanitizer) where the toolkit is installed but not on PATH
[ -x /usr/local/cuda/bin/nvcc ] && ! command -v nvcc > /dev/null && export PATH="$PATH:/usr/local/cuda/bin"

nvidia-smi > "$logs/nvidia-smi.txt" 2>&1 && status gpu "$(nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | head -1)"
# shellcheck disable=SC2086 # cuda_flags holds several flags
if cmake -S . -B "$bdir" -G Ninja $cuda_flags > "$logs/configure.log" 2>&1 &&
   cmake --build "$bdir" -j"$(nproc)" > "$logs/build.log" 2>&1; then
  status build "ok (${SECONDS}s)"
else
  status build FAILED; tail -40 "$logs/build.log" "$logs/configure.log"; finish 1
fi

t0=$SECONDS
timeout -k 10 "$(limit 60 600)" "$bdir/tests/test_cuda_ops" --jobs=4 --verbose > "$logs/cuda_ops.log" 2>&1
rc=$?
synth=$(grep -E 'Synthesis' "$logs/cuda_ops.log" | tail -1 | sed 's/.*Synthesis: //')
skips=$(grep -c '^\[SKIP\]' "$logs/cuda_ops.log")
status cuda_ops "$([ $rc -eq 0 ] && echo ok || echo "FAILED rc=$rc") ($((SECONDS - t0))s) ${synth}| skipped: ${skips}"
grep -E '^\[(FAIL|SKIP)\]' "$logs/cuda_ops.log" | head -8

t0=$SECONDS
if timeout -k 10 "$(limit 30 600)" ctest --test-dir "$bdir" --output-on-failure -j4 --timeout 240 -E '^test_cuda_ops$' \
     > "$logs/ctest.log" 2>&1
then status tests "ok ($((SECONDS - t0))s)"
else status tests "FAILED ($((SECONDS - t0))s)"; grep -E 'Failed|FAIL|Timeout' "$logs/ctest.log" | head -20; fi
status tests "$(grep -E 'tests passed' "$logs/ctest.log" | tail -1)"

# evoc run on the GPU vs the CPU: CartPole swing-up (easy) PGPE, 50 iterations, 30 s cap each.
for d in cuda cpu; do
  if [ "$(left)" -lt 90 ]; then status "run cartpole $d" "skipped (time budget)"; continue; fi
  rm -rf "${bdir:?}/run_$d"
  timeout -k 10 60 "$bdir/apps/evoc/evoc" run configs/cartpole_swingup_easy_pgpe.yaml --device "$d" \
    --set trainer.max_iter=$run_iters --quiet --out "$bdir/run_$d" > "$logs/run_$d.log" 2>&1
  rc=$?
  status "run cartpole $d" "$([ $rc -eq 0 ] && echo ok || echo "FAILED rc=$rc") $(sed -n \
    's/.*"wall_s":\([0-9.]*\),.*"test_score":\([^,]*\),.*/\1 s, test \2/p' "$logs/run_$d.log" | tail -1)"
done
# The same GPU run as two in-process ranks sharing the GPU (evoc run --ranks 2): bit-identical to one rank on the
# CPU and on the emulated GPU (test plans are sized from the whole test); this records whether a real GPU agrees.
if [ "$(left)" -lt 90 ] || [ ! -f "$bdir/run_cuda/best.safetensors" ]; then status "run cartpole cuda --ranks 2" "skipped"
else
  rm -rf "${bdir:?}/run_cuda2"
  timeout -k 10 60 "$bdir/apps/evoc/evoc" run configs/cartpole_swingup_easy_pgpe.yaml --device cuda --ranks 2 \
    --set trainer.max_iter=$run_iters --quiet --out "$bdir/run_cuda2" > "$logs/run_cuda2.log" 2>&1
  rc=$?
  same=$(cmp -s "$bdir/run_cuda/best.safetensors" "$bdir/run_cuda2/best.safetensors" && echo "same bits as 1 rank" \
         || echo "differs from 1 rank")
  status "run cartpole cuda --ranks 2" "$([ $rc -eq 0 ] && echo ok || echo "FAILED rc=$rc"), $same"
fi
# Gradient training on the GPU: one epoch of the seed CNN (configs/fashion_mnist_cnn_adam.yaml: batch 128, Adam;
# the parameters and Adam's moments stay on the GPU) on a synthetic Fashion-MNIST-sized IDX set (the machine has no
# dataset package), then JAX/Flax/Optax's epoch (bench/train_epoch_peers.py) on the same files and GPU. Run after
# the GPU benchmarks.
train_epoch() {
  local d="$bdir/synth_idx" e j
  if [ "$emulate" = 1 ]; then python3 bench/synth_idx.py "$d" --train 256 --test 100 > /dev/null
  else python3 bench/synth_idx.py "$d" > /dev/null; fi || { status "train epoch" "FAILED (bench/synth_idx.py)"; return; }
  rm -rf "${bdir:?}/train_cuda"
  timeout -k 10 "$(limit 60 120)" "$bdir/apps/evoc/evoc" train configs/fashion_mnist_cnn_adam.yaml --device cuda \
    --set task.data_dir="$d" --set trainer.epochs=1 --quiet --out "$bdir/train_cuda" > "$logs/train_cuda.log" 2>&1
  rc=$?
  e=$(python3 -c 'import json, sys; s = json.load(open(sys.argv[1])); print("%.2f s/epoch, test acc %.3f, %s" % (
      s["seconds_per_epoch"], s["test_acc"], s["device"]))' "$bdir/train_cuda/summary.json" 2>/dev/null)
  status "train epoch cuda" "$([ $rc -eq 0 ] && echo ok || echo "FAILED rc=$rc") ${e:-}"
  if ! python3 -c 'import jax, flax, optax' > /dev/null 2>&1; then status "train epoch jax" "skipped (no jax/flax/optax)"
  elif [ "$(left)" -lt 60 ]; then status "train epoch jax" "skipped (time budget)"
  else
    timeout -k 10 "$(limit 40 120)" env XLA_PYTHON_CLIENT_PREALLOCATE=false python3 bench/train_epoch_peers.py \
      --framework jax --data-dir "$d" --epochs 1 --csv > "$logs/train_jax.log" 2>&1
    rc=$?
    j=$(awk -F, '$1 == "jax" && $2 == 1 { printf "%.2f s/epoch, test acc %.3f", $3, $4 }' "$logs/train_jax.log")
    status "train epoch jax" "$([ $rc -eq 0 ] && echo ok || echo "FAILED rc=$rc") ${j:-}"
  fi
}
# NCCL (--comm nccl) needs a GPU per rank: on a one-GPU machine its tests run one rank (init, a run, teardown).
if ! grep -q 'NCCL communication ON' "$logs/configure.log"; then status nccl "not built (configure.log says why)"
else
  t0=$SECONDS
  timeout -k 10 "$(limit 30 120)" "$bdir/tests/test_distributed" --filter='nccl/*' --verbose > "$logs/nccl.log" 2>&1
  rc=$?
  status nccl "$([ $rc -eq 0 ] && echo ok || echo "FAILED rc=$rc") ($((SECONDS - t0))s) passed $(grep -c '^\[PASS\]' \
    "$logs/nccl.log"), skipped $(grep -c '^\[SKIP\] nccl' "$logs/nccl.log")"
fi
# Everything above means little if the GPU was not used (an old driver makes the GPU tests skip and stay green).
status "device used" "$(grep -ho 'using cuda[^)]*)' "$logs/run_cuda.log" 2>/dev/null | head -1 || true)"

# memcheck on the op harness: value, guard and NaN/Inf checks only (EVOC_CUDA_OPS_QUICK=1), capped at 180 s.
san=$(command -v compute-sanitizer || ls /usr/local/cuda/bin/compute-sanitizer 2>/dev/null | head -1)
if [ -z "$san" ]; then status memcheck "skipped (no compute-sanitizer)"
elif [ "$(left)" -lt 90 ]; then status memcheck "skipped (time budget)"
else
  t0=$SECONDS
  lim=$(limit 60 180)
  EVOC_CUDA_OPS_QUICK=1 timeout -k 10 "$lim" "$san" --tool memcheck --target-processes all --error-exitcode 3 \
    "$bdir/tests/test_cuda_ops" --jobs=4 > "$logs/memcheck.log" 2>&1
  rc=$?
  errs=$(grep -E 'ERROR SUMMARY' "$logs/memcheck.log" | tail -1 | sed 's/.*ERROR SUMMARY: //')
  case $rc in
    0) status memcheck "ok ($((SECONDS - t0))s) ${errs}" ;;
    124 | 137) status memcheck "TIMEOUT after ${lim}s ${errs}" ;;
    *) if grep -qE 'Device not supported|Unable to|Error 999' "$logs/memcheck.log"; then
         status memcheck "unavailable on this machine: $(grep -m1 -E 'Device not supported|Unable to|Error 999' \
           "$logs/memcheck.log" | cut -c1-80)"
       else
         status memcheck "FAILED rc=$rc ($((SECONDS - t0))s) ${errs}"; grep -E '=========' "$logs/memcheck.log" | head -20
       fi ;;
  esac
fi

# ---- GPU benchmarks: evoc --device cuda, the cuBLAS SGEMM ceiling and JAX jit(vmap) on the same GPU (about a
# minute on an H100). Their table (median ms, GFLOP/s, % of the measured SGEMM ceiling, JAX median / evoc median)
# is added to the summary after the CPU benchmarks, so it prints last and lands in $OUT.
gpu_row() { # log workload jax? -> "median_ms gflops" (counted from the end: the config column has spaces)
  awk -v w="$2" -v jax="$3" '$1 == w { print (jax ? $(NF - 2) " " $NF : $(NF - 3) " " $(NF - 1)) }' "$1" 2>/dev/null |
    tail -1
}
gpu_benchmarks() {
  local name w f e j ceil
  for name in bench_sgemm_ceiling bench_mlp_pop bench_cnn_pop bench_train_step bench_es_device; do
    if [ ! -x "$bdir/bench/$name" ]; then status "gpu $name" "not built"; continue; fi
    if [ "$emulate" = 1 ] && [ "$name" = bench_sgemm_ceiling ]; then
      status "gpu $name" "skipped (emulator: its smallest SGEMM, 4096^3, takes minutes there)"; continue
    fi
    if [ "$(left)" -lt 30 ]; then status "gpu $name" "skipped (time budget)"; continue; fi
    timeout -k 10 "$(limit 20 150)" "$bdir/bench/$name" --device cuda $bench_args > "$logs/gpu_$name.txt" 2>&1 &&
      status "gpu $name" ok || { status "gpu $name" FAILED; tail -5 "$logs/gpu_$name.txt" >&2; }
  done
  if ! python3 -c 'import jax, flax' > /dev/null 2>&1; then status "gpu jax_gpu_peers" "skipped (no jax/flax)"
  elif [ "$(left)" -lt 60 ]; then status "gpu jax_gpu_peers" "skipped (time budget)"
  else
    timeout -k 10 "$(limit 20 240)" env PYTHONUNBUFFERED=1 python3 bench/jax_gpu_peers.py > "$logs/gpu_jax_peers.txt" 2>&1 &&
      status "gpu jax_gpu_peers" ok || { status "gpu jax_gpu_peers" FAILED; tail -5 "$logs/gpu_jax_peers.txt" >&2; }
  fi
  if ! python3 -c 'import jax' > /dev/null 2>&1; then status "gpu es_peers" "skipped (no jax)"
  elif [ "$(left)" -lt 40 ]; then status "gpu es_peers" "skipped (time budget)"
  else
    timeout -k 10 "$(limit 20 120)" env PYTHONUNBUFFERED=1 XLA_PYTHON_CLIENT_PREALLOCATE=false python3 bench/es_peers.py \
      > "$logs/gpu_es_peers.txt" 2>&1 && status "gpu es_peers" ok ||
      { status "gpu es_peers" FAILED; tail -5 "$logs/gpu_es_peers.txt" >&2; }
  fi
  ceil=$(awk '$1 == "sgemm_ceiling_gflops" { print $2 }' "$logs/gpu_bench_sgemm_ceiling.txt" 2>/dev/null)
  echo "---- GPU benchmarks: SGEMM ceiling ${ceil:-?} GFLOP/s (cuBLAS fp32, no TF32); JAX matmul precision highest"
  printf '%-14s %9s %10s %6s %9s %10s %6s %8s\n' workload evoc_ms evoc_GF/s %ceil jax_ms jax_GF/s %ceil jax/evoc
  for w in mlp_pop_1024 mlp_pop_4096 mlp_pop_16384 cnn_pop train_step; do
    case $w in mlp_*) f=bench_mlp_pop ;; cnn_*) f=bench_cnn_pop ;; *) f=bench_train_step ;; esac
    e=$(gpu_row "$logs/gpu_$f.txt" "$w" 0)
    j=$(gpu_row "$logs/gpu_jax_peers.txt" "$w" 1)
    awk -v w="$w" -v e="$e" -v j="$j" -v c="${ceil:-0}" 'BEGIN {
      ne = split(e, a, " "); nj = split(j, b, " ");
      pe = (c > 0 && ne == 2) ? sprintf("%.1f", 100 * a[2] / c) : "-";
      pj = (c > 0 && nj == 2) ? sprintf("%.1f", 100 * b[2] / c) : "-";
      sp = (ne == 2 && nj == 2 && a[1] > 0) ? sprintf("%.2fx", b[1] / a[1]) : "-";
      printf "%-14s %9s %10s %6s %9s %10s %6s %8s\n", w, ne == 2 ? a[1] : "-", ne == 2 ? a[2] : "-", pe,
             nj == 2 ? b[1] : "-", nj == 2 ? b[2] : "-", pj, sp }'
  done
  # PGPE ask + tell per generation: sampled on the host, on the device, and EvoJAX's PGPE in JAX on the GPU.
  echo "---- PGPE ask + tell per generation (ms): host sampling, device sampling, EvoJAX PGPE on the GPU"
  printf '%-16s %9s %9s %9s %12s\n' shape host device jax jax/device
  for w in P64_n4609 P1024_n4609 P4096_n4609 P256_n11274; do
    awk -v w="$w" '$1 == "es_pgpe_host_" w { h = $2 } $1 == "es_pgpe_device_" w { d = $2 } END {
      printf "%s %s\n", h == "" ? "-" : h, d == "" ? "-" : d }' "$logs/gpu_bench_es_device.txt" 2>/dev/null |
      { read -r h d; j=$(awk -v w="es_pgpe_jax_$w" '$1 == w { print $2 }' "$logs/gpu_es_peers.txt" 2>/dev/null)
        awk -v w="$w" -v h="${h:--}" -v d="${d:--}" -v j="${j:--}" 'BEGIN {
          printf "%-16s %9s %9s %9s %12s\n", w, h, d, j, (d + 0 > 0 && j + 0 > 0) ? sprintf("%.2fx", j / d) : "-" }'; }
  done
}
gpu_benchmarks > "$logs/gpu_table.txt"
# after the GPU table, which issue 3 is resolved by
if [ "$(left)" -lt 120 ]; then status "train epoch" "skipped (time budget)"; else train_epoch; fi

for b in "$bdir"/bench/bench_*; do
  [ -x "$b" ] || continue
  name=$(basename "$b")
  if [ "$(left)" -lt 20 ]; then status "$name" "skipped (time budget)"; continue; fi
  timeout -k 10 "$(limit 10 120)" "$b" --quick > "$logs/$name.txt" 2>&1 && status "$name" ok || status "$name" FAILED
done
cat "$logs/gpu_table.txt" >> "$logs/summary.txt"
finish 0
