#!/usr/bin/env python3
"""CMA-ES peers for bench/bench_cmaes.c (ask + tell time per generation) and bench/bench_cmaes_evals.c
(evaluations to target): pycma and evosax, one BLAS / XLA thread each, on the same workloads.

Setup (a throwaway venv; neither package is a project dependency):
    python3 -m venv /tmp/venv-cma && /tmp/venv-cma/bin/pip install cma evosax
Run (the thread limits below are also set by this script when unset):
    OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 /tmp/venv-cma/bin/python bench/cma_peers.py \
        [--only time|evals]... [--quick] [--seeds 21] [--no-evosax] [--evoc BUILD_DIR] [--case ALGO:N]...
With --evoc BUILD_DIR the evoc programs run too and the tables are side by side: each timing row runs
BUILD_DIR/bench/bench_cmaes --threads 1 --csv --case ALGO:N just before the peers of that row (on a shared machine a
change of load then hits both sides alike), and BUILD_DIR/bench/bench_cmaes_evals --csv runs before the
evaluation counts.

Timing workloads (same as bench_cmaes.c): sphere, x0 = 0.5, sigma0 = 0.5, default lambda = 4 + floor(3 ln n) (PGPE: 2
(4 + floor(3 ln n))); full CMA at n = 100 and 1,000, sep-CMA at n = 10,000 (pycma: CMA_diagonal=True; evosax:
Sep_CMA_ES), LM-MA-ES at n = 10,000 and 1,000,000 and PGPE at 1,000,000 (evosax LM_MA_ES, PGPE with its default
ClipUp; pycma has neither). `warmup` untimed generations, then `gens` timed ones; a generation is ask + tell, the
objective evaluated outside the timed region. pycma decomposes C every ceil(1/(10 n (c1+cmu))) tells (9 at n = 1000),
evoc every floor(...) (8); the mean includes these. evosax decomposes C in every ask, so it runs fewer generations at
n = 1000 (the mean is the same). evosax runs jit-compiled, in float32 (JAX's default), after its compile warmup.

Evaluation counts (same as bench_cmaes_evals.c): pycma with its defaults and termination criteria off (only the
target ends a run), evaluations counted in whole generations when the best f <= target, median over seeds
1..K (a run that fails within max_evals counts as +inf).
"""
import argparse
import math
import os
import subprocess
import sys
import time

for _v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_v, "1")
os.environ.setdefault("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1")

import numpy as np  # noqa: E402  (after the thread limits)

# (algo, n, warmup, gens, quick_gens, evosax_gens) -- keep in sync with bench/bench_cmaes.c
TIME_CASES = [
    ("cmaes", 100, 1, 400, 100, 40),
    ("cmaes", 1000, 8, 96, 32, 6),
    ("cholesky_cmaes", 100, 1, 400, 100, 40),  # full-covariance peers: pycma's and evosax's CMA-ES
    ("cholesky_cmaes", 1000, 8, 96, 32, 6),
    ("sep_cmaes", 10000, 1, 200, 50, 200),
    ("lmmaes", 10000, 32, 100, 20, 100),
    ("lmmaes", 1000000, 1, 10, 3, 10),
    ("pgpe", 1000000, 1, 10, 3, 10),
    # evosax only, each with evoc's default population (evosax gets evoc's lambda): the rest of evoc's strategies
    ("snes", 10000, 2, 100, 20, 100),
    ("xnes", 100, 2, 200, 50, 200),
    ("openes", 10000, 2, 100, 20, 100),
    ("ars", 10000, 2, 100, 20, 100),
    ("crfmnes", 1000, 2, 100, 20, 100),
    ("simple_ga", 10000, 2, 100, 20, 100),
]
PYCMA_ALGOS = ("cmaes", "sep_cmaes", "cholesky_cmaes")  # pycma has no LM-MA-ES or PGPE: evosax is the only peer there

# (f, n, x0, sigma0, target, max_evals) -- keep in sync with bench/bench_cmaes_evals.c
PROBLEMS = [
    ("sphere", 10, 1.0, 1.0, 1e-10, 100000),
    ("sphere", 20, 1.0, 1.0, 1e-10, 200000),
    ("elli", 7, 0.1, 1.0, 1e-9, 100000),
    ("elli", 10, 0.1, 1.0, 1e-9, 200000),
    ("elli", 20, 0.1, 1.0, 1e-9, 400000),
    ("rosen", 10, 0.1, 0.3, 1e-12, 200000),
    ("rosen", 5, 0.1, 0.3, 1e-10, 100000),
]


def lam_default(n):
    return 4 + int(math.floor(3 * math.log(n)))


def sphere_rows(X):
    X = np.asarray(X)
    return (X * X).sum(axis=1)


def time_pycma(algo, n, warmup, gens):
    import cma

    opts = {"verbose": -9, "seed": 1}
    if algo == "sep_cmaes":
        opts["CMA_diagonal"] = True
    es = cma.CMAEvolutionStrategy(n * [0.5], 0.5, opts)
    t = []
    eig0 = None
    for g in range(-warmup, gens):
        if g == 0:
            eig0 = getattr(es.sm, "count_eigen", 0)
        t0 = time.perf_counter()
        X = es.ask()
        t1 = time.perf_counter()
        f = list(sphere_rows(X))
        t2 = time.perf_counter()
        es.tell(X, f)
        t3 = time.perf_counter()
        if g >= 0:
            t.append((t1 - t0) + (t3 - t2))
    eig = getattr(es.sm, "count_eigen", 0) - (eig0 or 0)
    return es.popsize, eig, 1e3 * np.mean(t), 1e3 * np.median(t)


def time_evosax(algo, n, warmup, gens, lam=None):
    import jax
    import jax.numpy as jnp
    import evosax.algorithms as A

    cls = {"cmaes": A.CMA_ES, "cholesky_cmaes": A.CMA_ES, "sep_cmaes": A.Sep_CMA_ES, "lmmaes": A.LM_MA_ES,
           "pgpe": A.PGPE, "snes": A.SNES, "xnes": A.xNES, "openes": A.Open_ES, "ars": A.ARS,
           "crfmnes": A.CR_FM_NES, "simple_ga": A.SimpleGA}[algo]
    lam = lam or lam_default(n) * (2 if algo == "pgpe" else 1)
    es = cls(population_size=lam, solution=jnp.zeros(n))
    params = es.default_params
    try:
        params = params.replace(std_init=0.5)
    except (TypeError, ValueError, AttributeError):  # a strategy without std_init keeps its default
        pass
    key = jax.random.key(1)
    if algo == "simple_ga":
        pop0 = 0.5 + 0.5 * jax.random.normal(key, (lam, n))  # a GA starts from a population and its fitness
        state = es.init(key, pop0, jnp.sum(pop0 * pop0, axis=1), params)
    else:
        state = es.init(key, jnp.full(n, 0.5), params)
    f = jax.jit(lambda X: jnp.sum(X * X, axis=1))
    t = []
    for g in range(-max(warmup, 2), gens):  # the first two calls compile
        key, ka, kt = jax.random.split(key, 3)
        t0 = time.perf_counter()
        X, state = es.ask(ka, state, params)
        X.block_until_ready()
        t1 = time.perf_counter()
        fit = f(X).block_until_ready()
        t2 = time.perf_counter()
        state, _ = es.tell(kt, X, fit, state, params)
        jax.block_until_ready(state)
        t3 = time.perf_counter()
        if g >= 0:
            t.append((t1 - t0) + (t3 - t2))
    return lam, gens if algo in ("cmaes", "cholesky_cmaes") else 0, 1e3 * np.mean(t), 1e3 * np.median(t)


def fn_py(name):
    import cma

    return {"sphere": cma.ff.sphere, "elli": cma.ff.elli, "rosen": cma.ff.rosen}[name]


def evals_pycma(name, n, x0, s0, target, max_evals, seed):
    import cma

    fn = fn_py(name)
    es = cma.CMAEvolutionStrategy(n * [x0], s0, {"verbose": -9, "seed": seed})
    while es.countevals < max_evals:
        X = es.ask()
        f = [fn(x) for x in X]
        es.tell(X, f)  # no es.stop(): only the target ends the run
        if min(f) <= target:
            return es.countevals
    return math.inf


def run_evoc_time(build, quick, algo, n):
    """One row of bench_cmaes (run just before the peers of that row): (lambda, gens, mean ms, median ms)."""
    if not build:
        return None
    tb = os.path.join(build, "bench", "bench_cmaes")
    args = [tb, "--threads", "1", "--csv", "--case", f"{algo}:{n}"] + (["--quick"] if quick else [])
    out = subprocess.run(args, check=True, capture_output=True, text=True).stdout
    for line in out.splitlines():
        p = line.split(",")
        if p[0] == "evoc" and (p[1], int(p[2])) == (algo, n):
            return int(p[3]), int(p[5]), float(p[6]), float(p[7])
    return None


def run_evoc_evals(build, quick):
    rows_e = {}
    if not build:
        return rows_e
    eb = os.path.join(build, "bench", "bench_cmaes_evals")
    q = ["--quick"] if quick else []
    out = subprocess.run([eb, "--csv"] + q, check=True, capture_output=True, text=True).stdout
    for line in out.splitlines():
        p = line.split(",")
        if p[0] == "evoc":
            rows_e[(p[1], int(p[2]), p[6])] = (int(p[7]), int(p[10]), int(p[11]))
    return rows_e


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--only", action="append", choices=["time", "evals"])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--seeds", type=int, default=21)
    ap.add_argument("--no-evosax", action="store_true")
    ap.add_argument("--evoc", metavar="BUILD_DIR", help="run evoc's bench_cmaes / bench_cmaes_evals from this build")
    ap.add_argument("--case", action="append", metavar="ALGO:N", help="only these timing rows (repeatable)")
    a = ap.parse_args()
    only = a.only or ["time", "evals"]
    seeds = 5 if a.quick else a.seeds
    import cma

    print(f"# pycma {cma.__version__}, numpy {np.__version__}; OMP/OPENBLAS threads "
          f"{os.environ['OMP_NUM_THREADS']}/{os.environ['OPENBLAS_NUM_THREADS']}")
    ev_e = run_evoc_evals(a.evoc, a.quick) if "evals" in only else {}
    if "time" in only:
        print("\n## ask + tell per generation (ms), one thread")
        print("| algo | n | lambda | evoc mean | evoc median | pycma mean | pycma median | evosax mean | "
              "pycma / evoc (mean) | evosax / evoc (mean) |")
        print("|---|---|---|---|---|---|---|---|---|---|")
        for algo, n, warm, gens, qgens, egens in TIME_CASES:
            if a.case and f"{algo}:{n}" not in a.case:
                continue
            g = qgens if a.quick else gens
            e = run_evoc_time(a.evoc, a.quick, algo, n)  # first, then its peers: same load conditions
            lam, pm, pmed = e[0] if e else lam_default(n) * (2 if algo == "pgpe" else 1), float("nan"), float("nan")
            if algo in PYCMA_ALGOS:
                lam, _, pm, pmed = time_pycma(algo, n, warm, g)
            xm = float("nan")
            if not a.no_evosax:
                try:
                    _, _, xm, _ = time_evosax(algo, n, warm, min(g, egens), e[0] if e else None)
                except Exception as err:  # a peer failing must not hide the others
                    print(f"<!-- evosax {algo} n={n} failed: {err} -->")
            em, emed = (e[2], e[3]) if e else (float("nan"), float("nan"))
            ratio = pm / em if e else float("nan")
            xratio = xm / em if e else float("nan")
            print(f"| {algo} | {n} | {lam} | {em:.3f} | {emed:.3f} | {pm:.3f} | {pmed:.3f} | {xm:.3f} | "
                  f"{ratio:.2f} | {xratio:.2f} |", flush=True)
    if "evals" in only:
        print(f"\n## evaluations to target, median over {seeds} seeds (failures count as inf)")
        print("| f | n | x0 | sigma0 | target | pycma median | solved | evoc median | evoc / pycma | "
              "evoc (pycma_cmu) | evoc / pycma | evoc cholesky_cmaes | evoc / pycma | cholesky_cmaes (passive) | "
              "evoc / pycma |")
        print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
        for name, n, x0, s0, target, mx in PROBLEMS:
            ev = sorted(evals_pycma(name, n, x0, s0, target, mx, s + 1) for s in range(seeds))
            med = ev[seeds // 2]
            solved = sum(1 for v in ev if v < math.inf)
            cells = []
            for variant in ("tutorial", "pycma_cmu", "cholesky", "chol_passive"):
                r = ev_e.get((name, n, variant))
                if r and r[0] > 0:
                    cells += [f"{r[0]} ({r[1]}/{r[2]})", f"{100.0 * (r[0] / med - 1):+.1f}%"]
                else:
                    cells += ["-", "-"]
            print(f"| {name} | {n} | {x0} | {s0} | {target:g} | {med} | {solved}/{seeds} | " + " | ".join(cells)
                  + " |", flush=True)


if __name__ == "__main__":
    sys.exit(main())
