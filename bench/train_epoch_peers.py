#!/usr/bin/env python3
"""Seconds per epoch of the seed CNN's gradient training in JAX/Flax/Optax or PyTorch on the CPU: the peers of
`evoc train configs/fashion_mnist_cnn_adam.yaml` (bench/run_train_peers.sh runs all three and prints the table).

Same model, data and recipe as the evoc config:
  model   conv 16@5x5 SAME -> relu -> maxpool 2x2 -> flatten -> dense 1024 -> relu -> dense 10 (3,222,954 params)
  loss    mean softmax cross-entropy; Adam lr 1e-3 (b1 0.9, b2 0.999, eps 1e-8)
  data    Fashion-MNIST IDX files (train 60k / test 10k), pixels / 255; batch 128; a new permutation each epoch;
          the last partial batch is dropped (468 steps), as in the Flax tutorial and the evoc config
  init    each framework's default (Flax: LeCun normal kernels, zero biases, as evoc; PyTorch: Kaiming uniform)
Timing: one untimed warm-up step on a throwaway copy of the state (JAX compiles there; evoc compiles its plans
before training too), then each epoch timed alone with time.perf_counter() around the training loop (batch
slicing and host->framework copies included, evaluation excluded); the test set (10k, chunks of 1000) is evaluated
after every epoch and timed separately.

Not a project dependency: run it from a throwaway venv (JAX: python3 -m venv /tmp/venv-jax &&
/tmp/venv-jax/bin/pip install jax flax optax; PyTorch: python3 -m venv /tmp/venv-torch &&
/tmp/venv-torch/bin/pip install torch).

Usage: train_epoch_peers.py --framework jax|torch [--epochs N] [--batch B] [--data-dir D] [--seed S] [--threads N]
                            [--csv]
Prints one row per epoch: framework, epoch, seconds for the epoch's training, test accuracy, test loss, eval seconds
(--csv: framework,epoch,train_s,test_acc,test_loss,eval_s,threads).
"""
import argparse
import gzip
import os
import struct
import sys
import time


def parse():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--framework", choices=["jax", "torch"], required=True)
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--data-dir", default="/usr/share/datasets/fashion-mnist")
    ap.add_argument("--threads", type=int, default=0,
                    help="0: each framework's default (every core); 1: one thread (JAX through XLA_FLAGS, PyTorch "
                         "through torch.set_num_threads); N > 1: PyTorch only")
    ap.add_argument("--csv", action="store_true")
    return ap.parse_args()


ARGS = parse()

import numpy as np  # noqa: E402  (after argparse so --help works without the venv)


def read_idx(data_dir, base):
    for name in (base, base + ".gz"):
        path = os.path.join(data_dir, name)
        if os.path.exists(path):
            with (gzip.open if name.endswith(".gz") else open)(path, "rb") as f:
                raw = f.read()
            magic, = struct.unpack(">I", raw[:4])
            ndim = magic & 0xFF
            dims = struct.unpack(">" + "I" * ndim, raw[4:4 + 4 * ndim])
            return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)
    sys.exit(f"train_epoch_peers.py: {os.path.join(data_dir, base)}[.gz] not found (install dataset-fashion-mnist "
             f"or pass --data-dir)")


def load():
    d = ARGS.data_dir
    xtr = read_idx(d, "train-images-idx3-ubyte").astype(np.float32)[..., None] / 255.0
    ytr = read_idx(d, "train-labels-idx1-ubyte").astype(np.int32)
    xte = read_idx(d, "t10k-images-idx3-ubyte").astype(np.float32)[..., None] / 255.0
    yte = read_idx(d, "t10k-labels-idx1-ubyte").astype(np.int32)
    return xtr, ytr, xte, yte


def batches(n, epoch):
    """The batches of one epoch: a permutation from (seed, epoch), the last partial batch dropped."""
    perm = np.random.default_rng([ARGS.seed, epoch]).permutation(n)
    steps = n // ARGS.batch
    return perm[: steps * ARGS.batch].reshape(steps, ARGS.batch)


def report(name, epoch, train_s, acc, loss, eval_s, threads):
    if ARGS.csv:
        print(f"{name},{epoch},{train_s:.3f},{acc:.4f},{loss:.4f},{eval_s:.3f},{threads}", flush=True)
    else:
        print(f"{name:6s} epoch {epoch}: train {train_s:7.2f} s  test acc {acc:.4f}  test loss {loss:.4f}  "
              f"eval {eval_s:.2f} s  ({threads} threads)", flush=True)


def run_jax(data):
    if ARGS.threads == 1:  # before jax is imported: XLA reads its flags once
        os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") +
                                   " --xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1").strip()
    import jax
    import jax.numpy as jnp
    import flax.linen as nn
    import optax

    class CNN(nn.Module):
        @nn.compact
        def __call__(self, x):
            x = nn.relu(nn.Conv(16, (5, 5), padding="SAME")(x))
            x = nn.max_pool(x, (2, 2), strides=(2, 2))
            x = x.reshape((x.shape[0], -1))
            x = nn.relu(nn.Dense(1024)(x))
            return nn.Dense(10)(x)

    xtr, ytr, xte, yte = data
    model = CNN()
    params = model.init(jax.random.PRNGKey(ARGS.seed), jnp.zeros((1, 28, 28, 1)))["params"]
    tx = optax.adam(ARGS.lr)
    opt_state = tx.init(params)

    def loss_fn(p, x, y):
        logits = model.apply({"params": p}, x)
        return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()

    @jax.jit
    def train_step(p, s, x, y):
        loss, g = jax.value_and_grad(loss_fn)(p, x, y)
        upd, s = tx.update(g, s, p)
        return optax.apply_updates(p, upd), s, loss

    @jax.jit
    def eval_step(p, x, y):
        logits = model.apply({"params": p}, x)
        ce = optax.softmax_cross_entropy_with_integer_labels(logits, y).sum()
        return ce, (jnp.argmax(logits, -1) == y).sum()

    b0 = np.arange(ARGS.batch)
    jax.block_until_ready(train_step(params, opt_state, xtr[b0], ytr[b0]))  # compile on a throwaway result
    jax.block_until_ready(eval_step(params, xte[:1000], yte[:1000]))
    for epoch in range(1, ARGS.epochs + 1):
        t0 = time.perf_counter()
        for idx in batches(len(xtr), epoch):
            params, opt_state, loss = train_step(params, opt_state, xtr[idx], ytr[idx])
        jax.block_until_ready(params)
        train_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        ce, hits = 0.0, 0
        for s in range(0, len(xte), 1000):
            c, h = eval_step(params, xte[s:s + 1000], yte[s:s + 1000])
            ce, hits = ce + float(c), hits + int(h)
        report("jax", epoch, train_s, hits / len(xte), ce / len(xte), time.perf_counter() - t0,
               1 if ARGS.threads == 1 else os.cpu_count())


def run_torch(data):
    import torch
    from torch import nn

    if ARGS.threads > 0:
        torch.set_num_threads(ARGS.threads)
    torch.manual_seed(ARGS.seed)
    xtr, ytr, xte, yte = data
    # NCHW, as PyTorch's conv wants
    xtr_t = torch.from_numpy(np.ascontiguousarray(xtr.transpose(0, 3, 1, 2)))
    xte_t = torch.from_numpy(np.ascontiguousarray(xte.transpose(0, 3, 1, 2)))
    ytr_t, yte_t = torch.from_numpy(ytr.astype(np.int64)), torch.from_numpy(yte.astype(np.int64))
    model = nn.Sequential(nn.Conv2d(1, 16, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                          nn.Linear(16 * 14 * 14, 1024), nn.ReLU(), nn.Linear(1024, 10))
    # the flatten order differs from NHWC (C, H, W vs H, W, C), which only permutes dense1's rows
    opt = torch.optim.Adam(model.parameters(), lr=ARGS.lr)
    lossf = nn.CrossEntropyLoss()

    def step(x, y):
        opt.zero_grad(set_to_none=True)
        loss = lossf(model(x), y)
        loss.backward()
        opt.step()
        return loss

    # warm-up on a throwaway copy of the state
    saved_m, saved_o = {k: v.clone() for k, v in model.state_dict().items()}, opt.state_dict()
    step(xtr_t[: ARGS.batch], ytr_t[: ARGS.batch])
    model.load_state_dict(saved_m)
    opt = torch.optim.Adam(model.parameters(), lr=ARGS.lr)
    opt.load_state_dict(saved_o)
    for epoch in range(1, ARGS.epochs + 1):
        model.train()
        t0 = time.perf_counter()
        for idx in batches(len(xtr), epoch):
            it = torch.from_numpy(idx)
            step(xtr_t[it], ytr_t[it])
        train_s = time.perf_counter() - t0
        model.eval()
        t0 = time.perf_counter()
        ce, hits = 0.0, 0
        with torch.no_grad():
            for s in range(0, len(xte_t), 1000):
                logits = model(xte_t[s:s + 1000])
                ce += float(nn.functional.cross_entropy(logits, yte_t[s:s + 1000], reduction="sum"))
                hits += int((logits.argmax(-1) == yte_t[s:s + 1000]).sum())
        report("torch", epoch, train_s, hits / len(xte), ce / len(xte), time.perf_counter() - t0,
               torch.get_num_threads())


if __name__ == "__main__":
    data = load()
    (run_jax if ARGS.framework == "jax" else run_torch)(data)
