#!/usr/bin/env python3
"""EvoJAX's own strategies against the same rows of bench/bench_cmaes.c (ask + tell per generation, one thread
each): CMA_ES_JAX (n = 100 and 1,000, and against evoc's Cholesky-CMA-ES at 1,000), CRFMNES (n = 1,000), SimpleGA
and ARS_native (n = 10,000), each with evoc's default population for that row. EvoJAX's PGPE and MAPElites have
their own scripts (es_peers.py, map_elites_peers.py); its OpenES, ARS and Sep_CMA_ES wrap evosax, which
bench/cma_peers.py times directly.

Workload as bench_cmaes.c: sphere (EvoJAX maximises, so it is told -f), x0 = 0.5, sigma0 = 0.5 where the strategy
takes one (SimpleGA and ARS_native keep their own mutation scales: the time does not depend on them), the
objective evaluated outside the timed region; `warmup` untimed generations (at least two: the first calls
compile), then `gens` timed ones ending with jax.block_until_ready on the strategy's best parameters. Each row runs
BUILD_DIR/bench/bench_cmaes --threads 1 --csv --case ALGO:N first (as cma_peers.py does).

Usage: OMP_NUM_THREADS=1 /tmp/venv-es/bin/python bench/evojax_algos_peers.py --evoc BUILD_DIR [--quick]
"""
import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cma_peers import TIME_CASES, run_evoc_time  # noqa: E402  (sets the one-thread limits first)

import numpy as np  # noqa: E402

ROWS = [("cmaes", 100), ("cmaes", 1000), ("cholesky_cmaes", 1000), ("crfmnes", 1000), ("simple_ga", 10000),
        ("ars", 10000)]


def make(algo, n, lam):
    import jax.numpy as jnp
    from evojax import algo as A

    x0 = jnp.full(n, 0.5)
    if algo in ("cmaes", "cholesky_cmaes"):  # EvoJAX's full-covariance CMA-ES is the peer of both
        return A.CMA_ES_JAX(param_size=n, pop_size=lam, mean=x0, init_stdev=0.5, seed=1)
    if algo == "crfmnes":
        return A.CRFMNES(param_size=n, pop_size=lam, init_params=x0, init_stdev=0.5, seed=1)
    if algo == "simple_ga":
        return A.SimpleGA(param_size=n, pop_size=lam, seed=1)
    return A.ARS_native(param_size=n, pop_size=lam, elite_ratio=1.0, seed=1)  # evoc's top_b default: all


def time_evojax(algo, n, lam, warmup, gens):
    import jax
    import jax.numpy as jnp

    s = make(algo, n, lam)
    f = jax.jit(lambda X: -jnp.sum(X * X, axis=1))
    t = []
    for g in range(-max(warmup, 2), gens):
        t0 = time.perf_counter()
        X = s.ask()
        jax.block_until_ready(X)
        t1 = time.perf_counter()
        fit = f(X).block_until_ready()
        t2 = time.perf_counter()
        s.tell(fit)
        jax.block_until_ready(s.best_params)
        t3 = time.perf_counter()
        if g >= 0:
            t.append((t1 - t0) + (t3 - t2))
    return 1e3 * np.mean(t), 1e3 * np.median(t)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--evoc", required=True, metavar="BUILD_DIR")
    ap.add_argument("--quick", action="store_true")
    a = ap.parse_args()
    import jax
    from importlib.metadata import version

    print(f"# jax {jax.__version__}, evojax {version('evojax')}; one thread each")
    print("| algo | n | lambda | evoc mean ms | EvoJAX strategy | EvoJAX mean ms | EvoJAX median ms | EvoJAX / evoc |")
    print("|---|---:|---:|---:|---|---:|---:|---:|")
    names = {"cmaes": "CMA_ES_JAX", "cholesky_cmaes": "CMA_ES_JAX", "crfmnes": "CRFMNES", "simple_ga": "SimpleGA",
             "ars": "ARS_native"}
    for algo, n in ROWS:
        warm, gens, qgens = next((w, g, q) for (al, nn, w, g, q, _) in TIME_CASES if (al, nn) == (algo, n))
        g = qgens if a.quick else gens
        lam, _, em, _ = run_evoc_time(a.evoc, a.quick, algo, n)
        try:
            jm, jmed = time_evojax(algo, n, lam, warm, g)
            ratio = f"{jm / em:.2f}x"
        except Exception as e:  # a peer failure keeps evoc's row
            jm = jmed = float("nan")
            ratio = f"failed: {type(e).__name__}: {e}"[:80]
        print(f"| {algo} | {n} | {lam} | {em:.3f} | {names[algo]} | {jm:.3f} | {jmed:.3f} | {ratio} |", flush=True)


if __name__ == "__main__":
    main()
