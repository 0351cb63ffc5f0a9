#!/usr/bin/env python3
"""ES ask + tell per generation against EvoTorch, one thread each, same shapes: evoc's rows of bench/bench_cmaes
(--case ALGO:N) against EvoTorch's functional API (cem / cem_ask / cem_tell, pgpe / pgpe_ask / pgpe_tell) and its
searcher classes SNES, XNES and CMAES (one `step()`: ask, a vectorised sphere, tell). evoc's cholesky_cmaes row has
EvoTorch's CMAES as its peer. (Named cem_peers.py until the PGPE rows came.)

Setup (a throwaway venv; not a project dependency):
    python3 -m venv /tmp/venv-et && /tmp/venv-et/bin/pip install evotorch
Run:  /tmp/venv-et/bin/python bench/evotorch_es_peers.py --evoc BUILD_DIR [--quick]

Workloads (as bench_cmaes.c's rows): center 0.5, stdev 0.5, sphere evaluated outside the timed region; warm-up
generations untimed, then the mean of ask + tell over the timed ones.
- CEM, n = 10,000 and 1,000,000, population 4 (4 + floor(3 ln n)) (124 and 180), parenthood (elite) ratio 0.5.
  EvoTorch's CEM takes the elites' mean and torch.std (Bessel), as evoc's does.
- PGPE, n = 10,000 and 1,000,000, population 2 (4 + floor(3 ln n)) (62 and 90), antithetic, centered ranks, ClipUp
  on the center and the stdev's own learning rate (both sides' defaults: the work per generation is the same).
- SNES (n = 10,000), xNES (n = 100), CMA-ES (n = 100 and 1,000) and Cholesky-CMA-ES (n = 1,000), population
  4 + floor(3 ln n); EvoTorch's step() also evaluates the sphere (n x pop multiply-adds: noise at these sizes) and
  builds its SolutionBatch, which is part of its ask.
EvoTorch draws float32 normals with torch and keeps the population; evoc regenerates counter-based normals (Philox)
in tell instead.
"""
import argparse
import math
import os
import subprocess
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")
import torch  # noqa: E402

# (algo, n, warmup, gens, quick_gens): keep in sync with bench_cmaes.c
CASES = [("cem", 10000, 2, 100, 20), ("cem", 1000000, 1, 10, 3), ("pgpe", 10000, 2, 100, 20),
         ("pgpe", 1000000, 1, 10, 3), ("snes", 10000, 2, 100, 20), ("xnes", 100, 2, 200, 50),
         ("cmaes", 100, 1, 400, 100), ("cmaes", 1000, 8, 96, 32), ("cholesky_cmaes", 1000, 8, 96, 32)]
SEARCHERS = {"snes": "SNES", "xnes": "XNES", "cmaes": "CMAES", "cholesky_cmaes": "CMAES"}


def searcher_row(algo, n, warmup, gens):
    """One EvoTorch searcher step per generation (ask, the vectorised sphere, tell)."""
    import logging

    import evotorch.algorithms as A
    from evotorch import Problem

    logging.getLogger("evotorch").setLevel(logging.WARNING)
    pop = 4 + int(math.floor(3 * math.log(n)))
    prob = Problem("min", lambda x: (x * x).sum(-1), solution_length=n, initial_bounds=(0.5, 0.5), vectorized=True)
    s = getattr(A, SEARCHERS[algo])(prob, stdev_init=0.5, popsize=pop)
    times = []
    for g in range(warmup + gens):
        t0 = time.perf_counter()
        s.step()
        if g >= warmup:
            times.append(time.perf_counter() - t0)
    return pop, 1e3 * sum(times) / len(times)


def evotorch_row(algo, n, warmup, gens):
    from evotorch.algorithms import functional as F

    lam = 4 + int(math.floor(3 * math.log(n)))
    center = torch.full((n,), 0.5)
    if algo == "cem":
        pop, ask, tell = 4 * lam, F.cem_ask, F.cem_tell
        state = F.cem(center_init=center, parenthood_ratio=0.5, objective_sense="min", stdev_init=0.5)
    else:
        pop, ask, tell = 2 * lam, F.pgpe_ask, F.pgpe_tell
        state = F.pgpe(center_init=center, center_learning_rate=0.15, stdev_learning_rate=0.1, objective_sense="min",
                       stdev_init=0.5)
    times = []
    for g in range(warmup + gens):
        t0 = time.perf_counter()
        x = ask(state, popsize=pop)
        t1 = time.perf_counter()
        f = (x * x).sum(dim=-1)
        t2 = time.perf_counter()
        state = tell(state, x, f)
        t3 = time.perf_counter()
        if g >= warmup:
            times.append((t1 - t0) + (t3 - t2))
    return pop, 1e3 * sum(times) / len(times)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--evoc", metavar="BUILD_DIR", required=True)
    ap.add_argument("--quick", action="store_true")
    a = ap.parse_args()
    torch.set_num_threads(1)
    import evotorch

    print(f"# torch {torch.__version__}, evotorch {evotorch.__version__}; one thread each")
    print("| algo | n | pop | evoc ms | EvoTorch ms | EvoTorch / evoc |")
    print("|---|---:|---:|---:|---:|---:|")
    for algo, n, warmup, gens, quick_gens in CASES:
        g = quick_gens if a.quick else gens
        cmd = [os.path.join(a.evoc, "bench", "bench_cmaes"), "--threads", "1", "--csv", "--case", f"{algo}:{n}"]
        if a.quick:
            cmd.append("--quick")
        row = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1]
        f = row.split(",")  # evoc,algo,n,pop,gens,eigens,mean,median,ask,tell,threads
        pop, et = (searcher_row if algo in SEARCHERS else evotorch_row)(algo, n, warmup, g)
        assert int(f[3]) == pop, (f[3], pop)
        print(f"| {algo} | {n:,} | {pop} | {float(f[6]):.3f} | {et:.3f} | {et / float(f[6]):.2f}x |", flush=True)


if __name__ == "__main__":
    main()
