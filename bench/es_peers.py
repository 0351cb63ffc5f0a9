#!/usr/bin/env python3
"""EvoJAX's PGPE, ask + tell per generation, on the shapes of bench/bench_es_device.c: P = 64, 1024, 4096 with
n = 4,609 (EvoJAX's CartPole MLP) and P = 256 with n = 11,274 (its MNIST ConvNet). A fixed fitness (the same ramp
as the C program), so only the strategy is timed. Runs on JAX's default device: the CPU in a throwaway venv, the
GPU on the GPU machine. Uses evojax.algo.PGPE when evojax is importable; otherwise the same computation written
inline (EvoJAX's pgpe.py formulas: Gaussian noise, symmetric pairs, centered ranks, the two gradient sums, ClipUp),
and says so.

Timing: untimed warm-up generations (the first compiles), then generations timed alone, each ending with
jax.block_until_ready on the centre; median and min in ms.

Usage: es_peers.py [--quick] [--runs N] [--warmup N] [--inline]
"""
import argparse
import statistics
import time

import jax
import jax.numpy as jnp

SHAPES = [(64, 4609), (1024, 4609), (4096, 4609), (256, 11274)]


def inline_pgpe(pop, n):
    """EvoJAX's PGPE update (evojax/algo/pgpe.py), ClipUp defaults, for machines without evojax."""
    lr, slr, max_change, max_speed, momentum = 0.15, 0.1, 0.2, 0.15, 0.9
    half = pop // 2

    @jax.jit
    def ask(state):
        center, stdev, vel, key = state
        key, sub = jax.random.split(key)
        noise = jax.random.normal(sub, (half, n)) * stdev
        members = jnp.stack([center + noise, center - noise], axis=1).reshape(pop, n)
        return members, (center, stdev, vel, key), noise

    @jax.jit
    def tell(state, noise, fitness):
        center, stdev, vel, key = state
        ranks = jnp.argsort(jnp.argsort(fitness)).astype(jnp.float32) / (pop - 1) - 0.5
        r = ranks.reshape(half, 2)
        g_center = ((r[:, 0] - r[:, 1]) / 2) @ noise / half
        base = ranks.mean()
        g_stdev = ((r[:, 0] + r[:, 1]) / 2 - base) @ ((noise ** 2 - stdev ** 2) / stdev) / half
        step = lr * g_center / jnp.linalg.norm(g_center)
        vel = momentum * vel + step
        speed = jnp.linalg.norm(vel)
        vel = jnp.where(speed > max_speed, vel * max_speed / speed, vel)
        allowed = jnp.abs(stdev) * max_change
        stdev = jnp.clip(stdev + slr * g_stdev, stdev - allowed, stdev + allowed)
        return (center + vel, stdev, vel, key)

    state = [(jnp.zeros(n), jnp.full(n, 0.1), jnp.zeros(n), jax.random.PRNGKey(0))]
    last = {}

    def do_ask():
        members, state[0], last["noise"] = ask(state[0])
        return members

    def do_tell(fitness):
        state[0] = tell(state[0], last["noise"], fitness)

    return do_ask, do_tell, lambda: state[0][0]


def evojax_pgpe(pop, n):
    from evojax.algo import PGPE
    s = PGPE(pop_size=pop, param_size=n, seed=0)
    return s.ask, s.tell, lambda: s.best_params


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--runs", type=int, default=0)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--inline", action="store_true", help="time the inline PGPE even where evojax is installed")
    a = ap.parse_args()
    runs = a.runs or (3 if a.quick else 11)
    try:
        if a.inline:
            raise ImportError
        from importlib.metadata import version
        import evojax  # noqa: F401
        make, which = evojax_pgpe, f"evojax {version('evojax')} PGPE"
    except ImportError:
        make, which = inline_pgpe, "inline JAX PGPE (EvoJAX's formulas; evojax not used)"
    print(f"JAX {jax.__version__} on {jax.devices()[0].device_kind}; {which}")
    print(f"{'workload':<34} {'median ms':>10} {'min ms':>10}")
    for pop, n in SHAPES[:2] if a.quick else SHAPES:
        ask, tell, centre = make(pop, n)
        fitness = jnp.asarray([float((i * 37) % pop) for i in range(pop)], dtype=jnp.float32)
        times = []
        for r in range(-a.warmup, runs):
            t0 = time.perf_counter()
            ask()
            tell(fitness)
            jax.block_until_ready(centre())
            if r >= 0:
                times.append(time.perf_counter() - t0)
        med = statistics.median(times)
        print(f"{f'es_pgpe_jax_P{pop}_n{n}':<34} {med * 1e3:10.3f} {min(times) * 1e3:10.3f}", flush=True)


if __name__ == "__main__":
    main()
