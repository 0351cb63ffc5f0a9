#!/usr/bin/env python3
"""CEM ask + tell per generation: evoc (bench/bench_cmaes --case cem:N) against EvoTorch's functional CEM
(evotorch.algorithms.functional cem / cem_ask / cem_tell), one thread each, same shapes.

Setup (a throwaway venv; not a project dependency):  python3 -m venv /tmp/venv-et && /tmp/venv-et/bin/pip install evotorch
Run:  /tmp/venv-et/bin/python bench/cem_peers.py --evoc BUILD_DIR [--quick]

Workload (as bench_cmaes.c's CEM rows): n = 10,000 and 1,000,000, population 4 (4 + floor(3 ln n)) (124 and 180),
parenthood (elite) ratio 0.5, center 0.5, stdev 0.5, sphere evaluated outside the timed region; warm-up
generations untimed, then the mean of ask + tell over the timed ones. EvoTorch's CEM takes the elites' mean and
torch.std (Bessel), as evoc's does; it draws float32 normals with torch, evoc regenerates counter-based normals
(Philox) in tell instead of keeping the population.
"""
import argparse
import math
import os
import subprocess
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")
import torch  # noqa: E402

CASES = [(10000, 2, 100, 20), (1000000, 1, 10, 3)]  # (n, warmup, gens, quick_gens): keep in sync with bench_cmaes.c


def evotorch_row(n, warmup, gens):
    from evotorch.algorithms.functional import cem, cem_ask, cem_tell

    pop = 4 * (4 + int(math.floor(3 * math.log(n))))
    state = cem(center_init=torch.full((n,), 0.5), parenthood_ratio=0.5, objective_sense="min", stdev_init=0.5)
    times = []
    for g in range(warmup + gens):
        t0 = time.perf_counter()
        x = cem_ask(state, popsize=pop)
        t1 = time.perf_counter()
        f = (x * x).sum(dim=-1)
        t2 = time.perf_counter()
        state = cem_tell(state, x, f)
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
    print("| n | pop | evoc ms | EvoTorch ms | EvoTorch / evoc |")
    print("|---:|---:|---:|---:|---:|")
    for n, warmup, gens, quick_gens in CASES:
        g = quick_gens if a.quick else gens
        cmd = [os.path.join(a.evoc, "bench", "bench_cmaes"), "--threads", "1", "--csv", "--case", f"cem:{n}"]
        if a.quick:
            cmd.append("--quick")
        row = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1]
        f = row.split(",")  # evoc,algo,n,pop,gens,eigens,mean,median,ask,tell,threads
        pop, et = evotorch_row(n, warmup, g)
        assert int(f[3]) == pop, (f[3], pop)
        print(f"| {n:,} | {pop} | {float(f[6]):.3f} | {et:.3f} | {et / float(f[6]):.2f}x |")


if __name__ == "__main__":
    main()
