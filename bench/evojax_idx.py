"""EvoJAX's MNIST task fed from IDX files (shared by bench/evojax_peers.py and bench/evojax_train.py).

EvoJAX's own task downloads MNIST through torchvision; the benchmarks must run offline on the Debian package
dataset-fashion-mnist, so the same reset/step functions are fed from the IDX files instead (same shapes, same work).
Imported only from a throwaway venv that has evojax; never a project dependency.
"""
import gzip
import os

import jax
import jax.numpy as jnp
import numpy as np
from evojax.task.base import VectorizedTask
from evojax.task.mnist import State as MnistState, accuracy, loss, sample_batch


def read_idx(path):
    with (gzip.open(path, "rb") if path.endswith(".gz") else open(path, "rb")) as f:
        raw = f.read()
    ndim = raw[3]
    dims = [int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def find_idx(data_dir, base):
    for name in (base, base + ".gz"):
        p = os.path.join(data_dir, name)
        if os.path.exists(p):
            return p
    return None


def load_split(data_dir):
    """(train_images, train_labels, test_images, test_labels) or None when a file is missing."""
    paths = [find_idx(data_dir, b) for b in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
                                              "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")]
    if not all(paths):
        return None
    return tuple(read_idx(p) for p in paths)


class IdxMNIST(VectorizedTask):
    """evojax.task.mnist.MNIST with the data read from IDX files instead of torchvision's download; reset_fn and
    step_fn are EvoJAX's own code, line for line."""

    def __init__(self, images, labels, batch_size=1024, test=False):
        self.max_steps = 1
        self.obs_shape = tuple([28, 28, 1])
        self.act_shape = tuple([10, ])
        data = np.expand_dims(images / 255., axis=-1)

        def reset_fn(key):
            if test:
                batch_data, batch_labels = data, labels
            else:
                batch_data, batch_labels = sample_batch(key, data, labels, batch_size)
            return MnistState(obs=batch_data, labels=batch_labels)
        self._reset_fn = jax.jit(jax.vmap(reset_fn))

        def step_fn(state, action):
            if test:
                reward = accuracy(action, state.labels)
            else:
                reward = -loss(action, state.labels)
            return state, reward, jnp.ones(())
        self._step_fn = jax.jit(jax.vmap(step_fn))

    def reset(self, key):
        return self._reset_fn(key)

    def step(self, state, action):
        return self._step_fn(state, action)
