#!/usr/bin/env python3
"""JAX (GPU) peers of the evoc GPU benchmarks: the workloads, shapes, FLOP formulas, timing and table of
bench/jax_peers.py (imported from there, so the two cannot drift), run on JAX's first GPU:

  mlp_pop_P   jax.jit(jax.vmap(mlp, in_axes=(0, None))), P = 1024, 4096, 16384 members x 16 observations
  cnn_pop     EvoJAX ConvNet, jax.jit(jax.vmap(apply, in_axes=(0, None))), 64 members x the same 1024 images
  train_step  seed CNN, jax.jit(jax.value_and_grad(loss)), batch 128 (optimizer update excluded)

fp32 as evoc computes it: jax_default_matmul_precision = "highest", so XLA/cuBLAS/cuDNN use no TF32 for dots and
convolutions (pass --tf32 to leave JAX's default, which allows TF32 on Ampere and later, and say so when quoting).
Timing: untimed warm-up calls (the first compiles), then calls timed alone around jax.block_until_ready; median.

Prints "skipped: ..." and exits 0 when JAX sees no GPU. The GPU machine's python3 has jax, jaxlib with CUDA and flax.

Usage: jax_gpu_peers.py [--quick] [--csv] [--runs N] [--warmup N] [--only mlp|cnn|train] [--tf32]
"""
import argparse
import os
import sys


def split_args():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
                                 add_help=False)
    ap.add_argument("--tf32", action="store_true", help="keep JAX's default matmul precision (TF32 allowed)")
    ap.add_argument("-h", "--help", action="store_true")
    mine, rest = ap.parse_known_args()
    if mine.help:
        print(__doc__)
        sys.exit(0)
    sys.argv = [sys.argv[0]] + rest  # the rest is for jax_peers' own parser
    return mine


MINE = split_args()
os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")  # leave GPU memory to the other benchmarks

import jax  # noqa: E402

if not MINE.tf32:
    jax.config.update("jax_default_matmul_precision", "highest")
try:
    # EVOC_JAX_PEERS_CPU=1: a dry run of this script on JAX's CPU (checks it before device time is spent on it)
    GPU = jax.devices("cpu" if os.environ.get("EVOC_JAX_PEERS_CPU") == "1" else "gpu")[0]
except RuntimeError as e:
    print(f"skipped: JAX sees no GPU ({e})")
    sys.exit(0)
jax.config.update("jax_default_device", GPU)

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import jax_peers as peers  # noqa: E402  (parses --quick/--csv/--runs/--warmup/--only)


def main():
    only = peers.ARGS.only or ["mlp", "cnn", "train"]
    if not peers.ARGS.csv:
        precision = "default (TF32 allowed)" if MINE.tf32 else "highest (fp32, no TF32)"
        print(f"JAX {jax.__version__} on {GPU.device_kind} (matmul precision {precision})")
        print(f"{'workload':<14} {'config':<34} {'MFLOP/call':>12} {'median ms':>10} {'min ms':>10} {'GFLOP/s':>9}")
    if "mlp" in only:
        peers.bench_mlp()
    if "cnn" in only:
        peers.bench_cnn()
    if "train" in only:
        peers.bench_train()
    return 0


if __name__ == "__main__":
    sys.exit(main())
