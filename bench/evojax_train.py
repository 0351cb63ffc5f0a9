#!/usr/bin/env python3
"""EvoJAX's own training runs on JAX CPU, for the side-by-side with `evoc run` (bench/run_train_evojax.sh).

The recipes are EvoJAX's examples with their defaults, the same hyperparameters as evoc's configs:
  cartpole_easy / cartpole_hard   examples/train_cartpole.py: CartPoleSwingUp(harder=...), MLPPolicy(5, [64, 64], 1),
                                  PGPE(pop 64, Adam, center_lr 0.05, init_std 0.1, std_lr 0.1), Trainer(n_repeats 16,
                                  n_evaluations 100, log 20, test 100)  <->  configs/cartpole_swingup_{easy,hard}_pgpe.yaml
  mnist                           examples/train_mnist.py: MNIST(batch 1024) on the Fashion-MNIST IDX files
                                  (bench/evojax_idx.py), ConvNetPolicy, PGPE(pop 64, Adam, center_lr 0.006,
                                  init_std 0.039, std_lr 0.089), Trainer(n_repeats 1, n_evaluations 1)
                                  <->  configs/fashion_mnist_pgpe.yaml
EvoJAX's Trainer runs unchanged; its log_scores_fn hook records, for every logged/tested iteration, the wall time since
the start of Trainer.run (which includes JAX's compilation, as evoc's wall time includes its jit). One JSON object per
line goes to --out: {"iter", "stage": "train"|"test", "wall_s", "mean", "max"}; the last line is the summary
{"stage": "summary", "iterations", "wall_s", "best_test", "final_test", "tests", "model_dir"}. Trainer's .npz models
(best.npz, final.npz) go to --model-dir; bench/evojax_params.py turns them into evoc safetensors.

Not a project dependency: run it from a throwaway venv (python3 -m venv /tmp/venv-evojax && .../pip install evojax).

Usage: evojax_train.py {cartpole_easy|cartpole_hard|mnist} [--max-iter N] [--seed S] [--test-interval N]
                       [--out FILE] [--data-dir DIR] [--model-dir DIR]
"""
import argparse
import json
import logging
import os
import sys
import tempfile
import time

RECIPES = {
    "cartpole_easy": dict(max_iter=1000, log=20, test=100, pop=64, center_lr=0.05, init_std=0.1, std_lr=0.1,
                          n_repeats=16, n_evaluations=100),
    "cartpole_hard": dict(max_iter=1000, log=20, test=100, pop=64, center_lr=0.05, init_std=0.1, std_lr=0.1,
                          n_repeats=16, n_evaluations=100),
    "mnist": dict(max_iter=5000, log=50, test=250, pop=64, center_lr=0.006, init_std=0.039, std_lr=0.089,
                  n_repeats=1, n_evaluations=1),
}


def parse():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("recipe", choices=sorted(RECIPES))
    ap.add_argument("--max-iter", type=int, default=0, help="iterations (0 = the recipe's)")
    ap.add_argument("--test-interval", type=int, default=0, help="iterations between tests (0 = the recipe's)")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--out", default="-", help="JSON lines file ('-' = stdout)")
    ap.add_argument("--data-dir", default="/usr/share/datasets/fashion-mnist", help="folder with the IDX files")
    ap.add_argument("--model-dir", default="", help="where Trainer saves its .npz models (default: a temporary folder)")
    return ap.parse_args()


ARGS = parse()

import jax  # noqa: E402  (after argparse so --help works without jax)
from evojax.algo import PGPE  # noqa: E402
from evojax.policy import MLPPolicy  # noqa: E402
from evojax.policy.convnet import ConvNetPolicy  # noqa: E402
from evojax.task.cartpole import CartPoleSwingUp  # noqa: E402
from evojax.trainer import Trainer  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from evojax_idx import IdxMNIST, load_split  # noqa: E402


class FinalTest(logging.Handler):
    """Trainer's last test (after max_iter) is only logged, not passed to log_scores_fn: read its average."""

    def __init__(self, max_iter):
        super().__init__(logging.INFO)
        self.prefix = f"[TEST] Iter={max_iter}, "
        self.avg = None

    def emit(self, record):
        msg = record.getMessage()
        if msg.startswith(self.prefix):
            self.avg = float(msg.split("avg=")[1].split(",")[0])


def main():
    r = dict(RECIPES[ARGS.recipe])
    if ARGS.max_iter > 0:
        r["max_iter"] = ARGS.max_iter
    if ARGS.test_interval > 0:
        r["test"] = ARGS.test_interval
    log = logging.getLogger("evojax_train")
    log.setLevel(logging.INFO)
    log.propagate = False
    final = FinalTest(r["max_iter"])
    log.addHandler(final)
    if ARGS.recipe.startswith("cartpole"):
        hard = ARGS.recipe == "cartpole_hard"
        train = CartPoleSwingUp(test=False, harder=hard)
        test = CartPoleSwingUp(test=True, harder=hard)
        policy = MLPPolicy(input_dim=train.obs_shape[0], hidden_dims=[64, 64], output_dim=train.act_shape[0],
                           logger=log)
    else:
        split = load_split(ARGS.data_dir)
        if split is None:
            sys.exit(f"evojax_train: no IDX files in {ARGS.data_dir} (install dataset-fashion-mnist or pass --data-dir)")
        train = IdxMNIST(split[0], split[1], batch_size=1024, test=False)
        test = IdxMNIST(split[2], split[3], batch_size=1024, test=True)
        policy = ConvNetPolicy(logger=log)
    solver = PGPE(pop_size=r["pop"], param_size=policy.num_params, optimizer="adam",
                  center_learning_rate=r["center_lr"], stdev_learning_rate=r["std_lr"], init_stdev=r["init_std"],
                  logger=log, seed=ARGS.seed)
    model_dir = ARGS.model_dir or tempfile.mkdtemp(prefix="evojax_train_")  # Trainer's .npz models (best, final)
    os.makedirs(model_dir, exist_ok=True)
    out = sys.stdout if ARGS.out == "-" else open(ARGS.out, "w")
    t0 = [0.0]
    tests = []

    def record(i, scores, stage):
        scores = jax.numpy.asarray(scores)
        row = {"iter": int(i), "stage": stage, "wall_s": round(time.perf_counter() - t0[0], 3),
               "mean": float(scores.mean()), "max": float(scores.max())}
        if stage == "test":
            tests.append(row["mean"])
        out.write(json.dumps(row) + "\n")
        out.flush()

    trainer = Trainer(policy=policy, solver=solver, train_task=train, test_task=test, max_iter=r["max_iter"],
                      log_interval=r["log"], test_interval=r["test"], n_repeats=r["n_repeats"],
                      n_evaluations=r["n_evaluations"], seed=ARGS.seed, log_dir=model_dir, logger=log,
                      log_scores_fn=record)
    t0[0] = time.perf_counter()
    best = trainer.run(demo_mode=False)
    wall = time.perf_counter() - t0[0]
    out.write(json.dumps({"stage": "summary", "recipe": ARGS.recipe, "seed": ARGS.seed, "iterations": r["max_iter"],
                          "wall_s": round(wall, 3), "best_test": float(best), "final_test": final.avg, "tests": tests,
                          "jax": jax.__version__, "platform": jax.devices()[0].platform,
                          "model_dir": model_dir}) + "\n")
    out.flush()


if __name__ == "__main__":
    main()
