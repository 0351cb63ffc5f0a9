#!/usr/bin/env python3
"""EvoJAX (JAX on CPU) peers of bench/bench_sim_cartpole.c and bench/bench_sim_mnist.c: the simulation manager's
evaluation of one generation, timed as SimManager.eval_params(params, test=False).

  sim_cartpole  CartPoleSwingUp(max_steps=1000) easy, MLPPolicy(5, [64, 64], 1, 'tanh'), PGPE(pop_size=64) ask(),
                SimManager(n_repeats=16): 64 * 16 = 1024 episodes x 1000 steps (EvoJAX's default jax.lax.scan
                rollout always runs max_steps). Rate = env steps/s = 64 * 16 * 1000 / time.
  sim_mnist     EvoJAX's MNIST task (evojax.task.mnist.MNIST: batch 1024, one step, reward = mean log-likelihood)
                with ConvNetPolicy (11,274 params), PGPE(pop_size=64) ask(), SimManager(n_repeats=1). EvoJAX's task
                downloads MNIST through torchvision; here the same reset/step functions run on the Fashion-MNIST IDX
                files of the Debian package dataset-fashion-mnist (same shapes, so the same work). Rate = images/s
                = 64 * 1024 / time.

Timing (as bench/bench_util.h): `warmup` untimed generations (the first compiles), then `runs` generations, each
timed alone with time.perf_counter() around eval_params and jax.block_until_ready(scores); median and min in ms.

Not a project dependency: run it from a throwaway venv:
    python3 -m venv /tmp/venv-evojax && /tmp/venv-evojax/bin/pip install evojax

Usage: evojax_peers.py [--quick] [--csv] [--runs N] [--warmup N] [--only cartpole|mnist]... [--data-dir DIR]
"""
import argparse
import logging
import os
import statistics
import sys
import time


def parse():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="fewer timed generations")
    ap.add_argument("--csv", action="store_true", help="rows as evojax,workload,config,work,median_ms,min_ms,rate")
    ap.add_argument("--runs", type=int, default=0, help="timed generations (0 = per-workload default)")
    ap.add_argument("--warmup", type=int, default=-1, help="untimed generations (-1 = per-workload default)")
    ap.add_argument("--only", choices=["cartpole", "mnist"], action="append", help="run only these workloads")
    ap.add_argument("--data-dir", default="/usr/share/datasets/fashion-mnist", help="folder with the IDX files")
    return ap.parse_args()


ARGS = parse()

import jax  # noqa: E402  (after argparse so --help works without jax)
import jax.numpy as jnp  # noqa: E402
from evojax.algo import PGPE  # noqa: E402
from evojax.policy import MLPPolicy  # noqa: E402
from evojax.policy.convnet import ConvNetPolicy  # noqa: E402
from evojax.sim_mgr import SimManager  # noqa: E402
from evojax.task.cartpole import CartPoleSwingUp  # noqa: E402
from evojax_idx import IdxMNIST, load_split  # noqa: E402  (bench/evojax_idx.py, next to this file)

QUIET = logging.getLogger("evojax_peers")
QUIET.setLevel(logging.ERROR)


def n_runs(full, quick):
    return ARGS.runs if ARGS.runs > 0 else (quick if ARGS.quick else full)


def n_warmup(default):
    return ARGS.warmup if ARGS.warmup >= 0 else default


def time_generations(sim, params, warmup, runs):
    for _ in range(warmup):
        scores, _ = sim.eval_params(params, test=False)
        jax.block_until_ready(scores)
    t = []
    for _ in range(runs):
        t0 = time.perf_counter()
        scores, _ = sim.eval_params(params, test=False)
        jax.block_until_ready(scores)
        t.append(time.perf_counter() - t0)
    return 1e3 * statistics.median(t), 1e3 * min(t), float(jnp.mean(scores))


def row(workload, config, work, med, mn, unit, extra=""):
    rate = work / (med * 1e-3)
    if ARGS.csv:
        print(f"evojax,{workload},{config},{work:.0f},{med:.4f},{mn:.4f},{rate:.6g}", flush=True)
    else:
        print(f"{workload:<14} {config:<44} median {med:10.1f} ms  min {mn:10.1f} ms  {rate:.3g} {unit}/s {extra}",
              flush=True)


def bench_cartpole():
    pop, reps, steps = 64, 16, 1000
    policy = MLPPolicy(input_dim=5, hidden_dims=[64, 64], output_dim=1, output_act_fn="tanh", logger=QUIET)
    train = CartPoleSwingUp(max_steps=steps, harder=False, test=False)
    test = CartPoleSwingUp(max_steps=steps, harder=False, test=True)
    solver = PGPE(pop_size=pop, param_size=policy.num_params, seed=0, logger=QUIET)
    sim = SimManager(n_repeats=reps, test_n_repeats=1, pop_size=pop, n_evaluations=100, policy_net=policy,
                     train_vec_task=train, valid_vec_task=test, seed=0, logger=QUIET)
    params = solver.ask()
    med, mn, fit = time_generations(sim, params, n_warmup(2), n_runs(10, 3))
    row("sim_cartpole", "P=64x16 reps x 1000 steps MLP 5-64-64-1", pop * reps * steps, med, mn, "env steps",
        f"(mean fitness {fit:.1f})")


def bench_mnist():
    split = load_split(ARGS.data_dir)
    if split is None:
        print(f"evojax_peers: skipping sim_mnist: no IDX files in {ARGS.data_dir} "
              "(install the Debian package dataset-fashion-mnist or pass --data-dir)", file=sys.stderr)
        return
    pop, batch = 64, 1024
    policy = ConvNetPolicy(logger=QUIET)
    train = IdxMNIST(split[0], split[1], batch_size=batch, test=False)
    test = IdxMNIST(split[2], split[3], batch_size=batch, test=True)
    solver = PGPE(pop_size=pop, param_size=policy.num_params, init_stdev=0.039, seed=0, logger=QUIET)
    sim = SimManager(n_repeats=1, test_n_repeats=1, pop_size=pop, n_evaluations=1, policy_net=policy,
                     train_vec_task=train, valid_vec_task=test, seed=0, logger=QUIET)
    params = solver.ask()
    med, mn, fit = time_generations(sim, params, n_warmup(2), n_runs(5, 2))
    row("sim_mnist", "P=64 x 1024 images EvoJAX ConvNet", pop * batch, med, mn, "images",
        f"(mean fitness {fit:.3f})")


def main():
    only = ARGS.only or ["cartpole", "mnist"]
    if not ARGS.csv:
        print(f"EvoJAX SimManager.eval_params on {jax.devices()[0].platform} "
              f"(jax {jax.__version__}, {os.cpu_count()} CPUs)")
    if "cartpole" in only:
        bench_cartpole()
    if "mnist" in only:
        bench_mnist()


if __name__ == "__main__":
    main()
