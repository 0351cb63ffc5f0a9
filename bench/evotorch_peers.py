"""Peers of bench/bench_mujoco.c on the same machine, in one run (bench/run_mujoco_peers.sh):

- mj_step: MuJoCo 3.x's bare step loop (PyPI `mujoco`) on Gymnasium's Hopper-v5 model, same action formula as
  bench_mujoco's loop (0.8 sin(0.37 t + 1.3 j)), frame skip 4: physics steps/s, so that the engine versions
  (evoc links Debian's MuJoCo 2.2.2) can be compared apart from the loop around them.
- gymnasium: Hopper-v5's env.step loop, same actions, termination off: physics steps/s.
- evotorch: one generation of EvoTorch's GymNE on Hopper-v5: 64 solutions x 1 episode x 1000 steps, termination off,
  no observation normalisation, a linear policy and a 64-64 tanh MLP, evaluated in-process (num_actors=0, one
  thread), and with --actors N also on N Ray actors (num_actors=N, one thread each; needs `pip install ray`).
  Env steps/s = interactions / seconds (median of --runs).
Run in a throwaway venv: python -m venv /tmp/venv-evotorch; pip install evotorch gymnasium mujoco [ray].
Prints rows `peer,workload,config,steps,median_ms,min_ms,rate`.
"""
import argparse
import math
import statistics
import time

import gymnasium as gym
import mujoco
import numpy as np
import torch


def actions(t, nu):
    return np.array([0.8 * math.sin(0.37 * t + 1.3 * j) for j in range(nu)])


def bare_and_gym(T):
    env = gym.make("Hopper-v5", terminate_when_unhealthy=False, max_episode_steps=10**9, reset_noise_scale=0.0)
    env.reset(seed=0)
    u = env.unwrapped
    m, d = u.model, u.data
    mujoco.mj_resetData(m, d)
    mujoco.mj_forward(m, d)
    t0 = time.perf_counter()
    for t in range(T):
        d.ctrl[:] = actions(t, m.nu)
        for _ in range(4):
            mujoco.mj_step(m, d)
    bare = T * 4 / (time.perf_counter() - t0)
    env.reset(seed=0)
    t0 = time.perf_counter()
    for t in range(T):
        env.step(actions(t, m.nu))
    gym_rate = T * 4 / (time.perf_counter() - t0)
    print(f"mujoco-{mujoco.__version__},mujoco_loop_hopper_bare,{T} steps one thread,{T * 4},,,{bare:.6g}")
    print(f"gymnasium-{gym.__version__},mujoco_loop_hopper,{T} steps one thread,{T * 4},,,{gym_rate:.6g}")


def evotorch_generation(network, label, runs, actors=0):
    from evotorch.neuroevolution import GymNE

    problem = GymNE(env="Hopper-v5", network=network, env_config={"terminate_when_unhealthy": False},
                    episode_length=1000, num_episodes=1, observation_normalization=False, num_actors=actors)
    times = []
    for r in range(runs + 1):
        batch = problem.generate_batch(64)
        before = problem.status.get("total_interaction_count", 0)
        t0 = time.perf_counter()
        problem.evaluate(batch)
        dt = time.perf_counter() - t0
        steps = problem.status.get("total_interaction_count", 0) - before
        if r > 0:  # the first generation warms up
            times.append(dt)
    med = statistics.median(times)
    import evotorch
    print(f"evotorch-{evotorch.__version__},mujoco_pop_hopper_{label}_t{max(actors, 1)},P=64x1000 steps,{steps},"
          f"{1e3 * med:.4f},"
          f"{1e3 * min(times):.4f},{steps / med:.6g}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--actors", type=int, default=0, help="also time GymNE on this many Ray actors")
    ap.add_argument("--only-actors", action="store_true", help="skip the one-thread rows")
    a = ap.parse_args()
    torch.set_num_threads(1)
    runs = 1 if a.quick else a.runs
    nets = [("Linear(obs_length, act_length)", "linear"),
            ("Linear(obs_length, 64) >> Tanh() >> Linear(64, 64) >> Tanh() >> Linear(64, act_length) >> Tanh()",
             "mlp64x64")]
    if not a.only_actors:
        bare_and_gym(300 if a.quick else 3000)
        for net, label in nets:
            evotorch_generation(net, label, runs)
    if a.actors > 0:
        for net, label in nets:
            evotorch_generation(net, label, runs, a.actors)


if __name__ == "__main__":
    main()
