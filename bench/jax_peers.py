#!/usr/bin/env python3
"""JAX (CPU) peers of the evoc benchmarks in bench/: the same three workloads, shapes, FLOP formulas and timing.

  mlp_pop_P   population MLP forward 5-64-64-1 tanh, P members x 16 observations:
              jax.jit(jax.vmap(mlp, in_axes=(0, None)))   flop = 2 * P * 16 * (5*64 + 64*64 + 64*1)
  cnn_pop     EvoJAX ConvNet (flax.linen, 11,274 params), 64 members x the same 1024 images:
              jax.jit(jax.vmap(apply, in_axes=(0, None)))  flop = 64 * 1024 * (313,600 + 1,254,400 + 15,680)
  train_step  seed CNN conv16@5x5 -> relu -> maxpool 2 -> dense 1024 -> relu -> dense 10, mean softmax CE,
              batch 128: jax.jit(jax.value_and_grad(loss))  (optimizer update excluded)
              flop = 128 * (2*627,200 + 3*6,422,528 + 3*20,480)

Timing (as bench/bench_util.h): `warmup` untimed calls (the first one compiles), then `runs` calls each timed alone
with time.perf_counter() (CLOCK_MONOTONIC on Linux) around fn(...) and jax.block_until_ready; median and min in ms;
GFLOP/s = flop / median.

Not a project dependency: run it from a throwaway venv (python3 -m venv /tmp/venv-jax &&
/tmp/venv-jax/bin/pip install jax flax).

Usage: jax_peers.py [--quick] [--csv] [--runs N] [--warmup N] [--only mlp|cnn|train]
"""
import argparse
import os
import statistics
import sys
import time


def parse():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="fewer runs, main sizes only")
    ap.add_argument("--csv", action="store_true", help="rows as jax,workload,config,flop,median_ms,min_ms,gflops")
    ap.add_argument("--runs", type=int, default=0, help="timed runs (0 = per-workload default)")
    ap.add_argument("--warmup", type=int, default=-1, help="untimed runs (-1 = per-workload default)")
    ap.add_argument("--only", choices=["mlp", "cnn", "train"], action="append", help="run only these workloads")
    return ap.parse_args()


ARGS = parse()

import numpy as np  # noqa: E402  (after argparse so --help works without the venv)
import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import flax.linen as nn  # noqa: E402


def time_fn(fn, args, warmup, runs):
    for _ in range(warmup):
        jax.block_until_ready(fn(*args))
    t = []
    for _ in range(runs):
        t0 = time.perf_counter()
        jax.block_until_ready(fn(*args))
        t.append(time.perf_counter() - t0)
    return 1e3 * statistics.median(t), 1e3 * min(t)


def row(workload, config, flop, med, mn):
    gf = flop / (med * 1e-3) / 1e9
    if ARGS.csv:
        print(f"jax,{workload},{config},{flop:.0f},{med:.4f},{mn:.4f},{gf:.4f}", flush=True)
    else:
        print(f"{workload:<14} {config:<34} {flop / 1e6:12.1f} {med:10.3f} {mn:10.3f} {gf:9.2f}", flush=True)


def n_runs(default_full, default_quick):
    return ARGS.runs if ARGS.runs > 0 else (default_quick if ARGS.quick else default_full)


def n_warmup(default_full, default_quick):
    return ARGS.warmup if ARGS.warmup >= 0 else (default_quick if ARGS.quick else default_full)


def uniform(rng, shape, lo, hi):
    return jnp.asarray(rng.uniform(lo, hi, size=shape).astype(np.float32))


# ---------------------------------------------------------------- (a) population MLP forward
def mlp(params, obs):
    h = jnp.tanh(obs @ params["w1"] + params["b1"])
    h = jnp.tanh(h @ params["w2"] + params["b2"])
    return jnp.tanh(h @ params["w3"] + params["b3"])


def bench_mlp():
    rng = np.random.default_rng(1)
    f = jax.jit(jax.vmap(mlp, in_axes=(0, None)))
    for pop in ([1024] if ARGS.quick else [1024, 4096, 16384]):
        a = [1 / np.sqrt(5), 1 / 8, 1 / 8]
        params = {
            "w1": uniform(rng, (pop, 5, 64), -a[0], a[0]), "b1": uniform(rng, (pop, 64), -a[0], a[0]),
            "w2": uniform(rng, (pop, 64, 64), -a[1], a[1]), "b2": uniform(rng, (pop, 64), -a[1], a[1]),
            "w3": uniform(rng, (pop, 64, 1), -a[2], a[2]), "b3": uniform(rng, (pop, 1), -a[2], a[2]),
        }
        obs = uniform(rng, (16, 5), -1, 1)
        flop = 2.0 * pop * 16 * (5 * 64 + 64 * 64 + 64 * 1)
        runs = n_runs(200 if pop <= 1024 else 100 if pop <= 4096 else 40, 20)
        med, mn = time_fn(f, (params, obs), n_warmup(10, 3), runs)
        row(f"mlp_pop_{pop}", f"P={pop} x 16 obs; 5-64-64-1", flop, med, mn)


# ---------------------------------------------------------------- (b) population CNN forward (EvoJAX ConvNet)
class ConvNet(nn.Module):
    """EvoJAX examples/train_mnist.py CNN: 11,274 parameters."""

    @nn.compact
    def __call__(self, x):
        x = nn.Conv(features=8, kernel_size=(5, 5), padding="SAME")(x)
        x = nn.relu(x)
        x = nn.max_pool(x, window_shape=(2, 2), strides=(2, 2))
        x = nn.Conv(features=16, kernel_size=(5, 5), padding="SAME")(x)
        x = nn.relu(x)
        x = nn.max_pool(x, window_shape=(2, 2), strides=(2, 2))
        x = x.reshape((x.shape[0], -1))
        x = nn.Dense(features=10)(x)
        return jax.nn.log_softmax(x)


def bench_cnn():
    pop, batch = 64, 1024
    model = ConvNet()
    rng = np.random.default_rng(2)
    x = uniform(rng, (batch, 28, 28, 1), 0, 1)
    p0 = model.init(jax.random.PRNGKey(0), x[:1])
    n_params = sum(v.size for v in jax.tree_util.tree_leaves(p0))
    assert n_params == 11274, n_params
    # Population: each leaf gets a leading P axis, values ~ U(-a, a), a = 1/sqrt(fan_in) as in the C benchmark.
    def pop_leaf(v):
        fan_in = int(np.prod(v.shape[:-1])) if v.ndim > 1 else {8: 25, 16: 200, 10: 784}[v.shape[0]]
        a = 1 / np.sqrt(fan_in)
        return uniform(rng, (pop,) + v.shape, -a, a)
    params = jax.tree_util.tree_map(pop_leaf, p0)
    f = jax.jit(jax.vmap(model.apply, in_axes=(0, None)))
    flop = float(pop) * batch * (2 * 28 * 28 * 8 * 25 + 2 * 14 * 14 * 16 * 200 + 2 * 784 * 10)
    med, mn = time_fn(f, (params, x), n_warmup(2, 1), n_runs(10, 3))
    row("cnn_pop", "P=64 x 1024 img; conv8-conv16-d10", flop, med, mn)


# ---------------------------------------------------------------- (c) seed CNN training step
class SeedCNN(nn.Module):
    @nn.compact
    def __call__(self, x):
        x = nn.Conv(features=16, kernel_size=(5, 5), padding="SAME")(x)
        x = nn.relu(x)
        x = nn.max_pool(x, window_shape=(2, 2), strides=(2, 2))
        x = x.reshape((x.shape[0], -1))
        x = nn.relu(nn.Dense(features=1024)(x))
        return nn.Dense(features=10)(x)


def bench_train():
    batch = 128
    model = SeedCNN()
    rng = np.random.default_rng(3)
    x = uniform(rng, (batch, 28, 28, 1), 0, 1)
    y = jnp.asarray((np.arange(batch) * 7 + 3) % 10, dtype=jnp.int32)
    params = model.init(jax.random.PRNGKey(0), x[:1])

    def loss_fn(params, x, y):
        logp = jax.nn.log_softmax(model.apply(params, x))
        return -jnp.mean(jnp.take_along_axis(logp, y[:, None], axis=1))

    f = jax.jit(jax.value_and_grad(loss_fn))
    conv, d1, d2 = 2 * 28 * 28 * 16 * 25, 2 * 3136 * 1024, 2 * 1024 * 10
    flop = float(batch) * (2 * conv + 3 * d1 + 3 * d2)
    med, mn = time_fn(f, (params, x, y), n_warmup(3, 1), n_runs(30, 5))
    row("train_step", "B=128; conv16-d1024-d10; fwd+grad", flop, med, mn)


def main():
    only = ARGS.only or ["mlp", "cnn", "train"]
    if not ARGS.csv:
        print(f"JAX {jax.__version__} on {jax.devices()[0].platform} "
              f"(XLA_FLAGS={os.environ.get('XLA_FLAGS', '')!r}, {os.cpu_count()} CPUs)")
        print(f"{'workload':<14} {'config':<34} {'MFLOP/call':>12} {'median ms':>10} {'min ms':>10} {'GFLOP/s':>9}")
    if "mlp" in only:
        bench_mlp()
    if "cnn" in only:
        bench_cnn()
    if "train" in only:
        bench_train()
    return 0


if __name__ == "__main__":
    sys.exit(main())
