#!/usr/bin/env python3
"""EvoJAX's MAPElites, ask + tell per generation, on the shapes of bench/bench_map_elites.c: P = 64 and 1,024
members of n = 4,609 parameters, a 32 x 32 grid over two descriptors, iso_sigma 0.05, line_sigma 0.5, from x = 0.

Member i's fitness is -sum x^2 and its descriptors sigmoid(20 x_0), sigmoid(20 x_1), binned into 32 cells each as
EvoJAX's observe_bd would (clipped); both are computed outside the timed region and the bins are handed to the
strategy (its bin_idx, which observe_bd sets from a task state). A generation times ask() + tell(fitness) and
ends with jax.block_until_ready on the lattice; untimed warm-up generations (the first compiles) fill the archive.
Prints median and min ms and the filled cells at the end.

Usage: map_elites_peers.py [--quick] [--runs N] [--warmup N]
"""
import argparse
import statistics
import time

import jax
import jax.numpy as jnp
import numpy as np

N, BINS = 4609, 32


class Spec:
    """The part of a BDExtractor MAPElites reads: the descriptors' names and bin counts."""
    bd_spec = [("bd0", BINS), ("bd1", BINS)]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--runs", type=int, default=0)
    ap.add_argument("--warmup", type=int, default=10)
    a = ap.parse_args()
    runs = a.runs or (5 if a.quick else 51)
    from importlib.metadata import version
    from evojax.algo import MAPElites
    print(f"JAX {jax.__version__} on {jax.devices()[0].device_kind}; evojax {version('evojax')} MAPElites")
    print(f"{'workload':<28} {'median ms':>10} {'min ms':>10} {'cells':>8}")
    for pop in (64, 1024):
        me = MAPElites(pop_size=pop, param_size=N, bd_extractor=Spec(), iso_sigma=0.05, line_sigma=0.5, seed=1)
        times = []
        for r in range(-a.warmup, runs):
            t0 = time.perf_counter()
            x = me.ask()
            jax.block_until_ready(x)
            t1 = time.perf_counter()
            xh = np.asarray(x, dtype=np.float64)
            fitness = jnp.asarray(-(xh * xh).sum(axis=1), dtype=jnp.float32)
            bd = 1 / (1 + np.exp(-20.0 * xh[:, :2]))
            cells = np.clip((bd * BINS).astype(np.int64), 0, BINS - 1)
            me.bin_idx = jnp.asarray(cells[:, 0] * BINS + cells[:, 1], dtype=jnp.int32)
            jax.block_until_ready((fitness, me.bin_idx))
            t2 = time.perf_counter()
            me.tell(fitness)
            jax.block_until_ready(me.params_lattice)
            t3 = time.perf_counter()
            if r >= 0:
                times.append((t1 - t0) + (t3 - t2))
        filled = int(np.asarray(me.occupancy_lattice).sum())
        print(f"{f'me_jax_P{pop}_n{N}':<28} {statistics.median(times) * 1e3:10.3f} {min(times) * 1e3:10.3f} "
              f"{filled:8d}", flush=True)


if __name__ == "__main__":
    main()
