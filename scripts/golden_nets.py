#!/usr/bin/env python3
"""Golden values for tests/test_golden.c from an independent implementation (JAX, float64).

Writes tests/data/golden_mlp.bin and tests/data/golden_cnn.bin. Run it from a throwaway venv, never as a project
dependency:
    python3 -m venv /tmp/venv-jax && /tmp/venv-jax/bin/pip install jax flax
    /tmp/venv-jax/bin/python scripts/golden_nets.py            # writes tests/data/golden_*.bin
    /tmp/venv-jax/bin/python scripts/golden_nets.py --check    # recomputes and compares with the committed files

File format (read by tests/test_golden.c): an ASCII header, then raw little-endian data.
    evoc-golden 1\\n
    <name> <f32|i32|f64> <ndim> <d0> ... <d(ndim-1)>\\n       one line per tensor, in data order
    end\\n
    <data of tensor 0><data of tensor 1>...                  C order, no padding

Parameters come from a tiny counter-based generator that tests/test_golden.c reimplements bit-exactly (so the
12.8 MB dense1 kernel of the CNN does not have to be stored; its sum and sum of squares are stored as a check):
    x = seed * 0x9E3779B97F4A7C15 + (i + 1) * 0xBF58476D1CE4E5B9          (mod 2^64)
    x ^= x >> 30; x *= 0xBF58476D1CE4E5B9; x ^= x >> 27; x *= 0x94D049BB133111EB; x ^= x >> 31
    value_i = float32((x >> 40) - 2^23) * 2^-23 * float32(scale)          (exact in float32, then one f32 multiply)
All other tensors (params too, except dense1.kernel) are stored.

Nets (tanh/relu as written; the same graphs are built with evoc's builders in tests/test_golden.c):
  MLP  5 -> 16 -> 16 -> 3, tanh after every layer, obs [8, 5]; loss = mean((y - target)^2) over [8, 3].
       Stored: params, obs, target, y, loss, d loss / d (each param and obs); and a population of 4 members
       (params with a leading axis 4): y_pop [4, 8, 3], loss_pop [4], per-member gradients (vmap of value_and_grad).
  CNN  the seed CNN of the JAX/Flax MNIST tutorial: x [2, 28, 28, 1] -> conv 16@5x5 SAME (+b) -> relu ->
       maxpool 2x2/2 -> flatten (h, w, c order) [2, 3136] -> dense 1024 (+b) -> relu -> dense 10 (+b) = logits;
       loss = mean softmax cross-entropy with labels [3, 7]. Stored: x, labels, params (but dense1.kernel), logits,
       loss, gradients of every parameter; for dense1.kernel [3136, 1024] the gradient's row sums [3136], column
       sums [1024], 4096 sampled entries (flat indices + values) and its squared Frobenius norm.
"""
import argparse
import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.path.join(os.path.dirname(HERE), "tests", "data")

M64 = (1 << 64) - 1


def gen_params(seed, shape, scale):
    """The counter-based generator described in the module docstring (vectorised, uint64 wrap-around)."""
    n = int(np.prod(shape)) if len(shape) else 1
    i = np.arange(1, n + 1, dtype=np.uint64)
    with np.errstate(over="ignore"):
        x = np.uint64((seed * 0x9E3779B97F4A7C15) & M64) + i * np.uint64(0xBF58476D1CE4E5B9)
        x ^= x >> np.uint64(30)
        x *= np.uint64(0xBF58476D1CE4E5B9)
        x ^= x >> np.uint64(27)
        x *= np.uint64(0x94D049BB133111EB)
        x ^= x >> np.uint64(31)
    u = (x >> np.uint64(40)).astype(np.int64) - (1 << 23)
    v = u.astype(np.float32) * np.float32(2.0 ** -23)
    v = v * np.float32(scale)
    return v.astype(np.float32).reshape(shape)


def write_golden(path, tensors):
    lines = ["evoc-golden 1"]
    blobs = []
    for name, arr in tensors:
        arr = np.asarray(arr)
        if arr.dtype == np.float32:
            tag = "f32"
        elif arr.dtype == np.float64:
            tag = "f64"
        elif arr.dtype == np.int32:
            tag = "i32"
        else:
            raise TypeError(f"{name}: dtype {arr.dtype}")
        lines.append(" ".join([name, tag, str(arr.ndim)] + [str(d) for d in arr.shape]))
        blobs.append(np.ascontiguousarray(arr).astype(arr.dtype.newbyteorder("<")).tobytes())
    lines.append("end")
    data = ("\n".join(lines) + "\n").encode("ascii") + b"".join(blobs)
    return data


def read_golden(path):
    with open(path, "rb") as f:
        raw = f.read()
    end = raw.index(b"\nend\n") + 5
    header = raw[:end].decode("ascii").split("\n")
    assert header[0] == "evoc-golden 1"
    out, off = {}, end
    for line in header[1:]:
        if line in ("end", ""):
            continue
        parts = line.split()
        name, tag, ndim = parts[0], parts[1], int(parts[2])
        shape = tuple(int(d) for d in parts[3:3 + ndim])
        dt = {"f32": "<f4", "f64": "<f8", "i32": "<i4"}[tag]
        n = int(np.prod(shape)) if ndim else 1
        arr = np.frombuffer(raw, dtype=dt, count=n, offset=off).reshape(shape)
        off += arr.nbytes
        out[name] = arr
    assert off == len(raw), "trailing bytes"
    return out


# ------------------------------------------------------------------------------------------------ nets (JAX f64)
def build():
    import jax
    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp
    from jax import lax

    f64 = lambda a: jnp.asarray(np.asarray(a, dtype=np.float64))  # noqa: E731

    # ---------------- MLP
    mlp_names = ["w1", "b1", "w2", "b2", "w3", "b3"]
    mlp_shapes = {"w1": (5, 16), "b1": (16,), "w2": (16, 16), "b2": (16,), "w3": (16, 3), "b3": (3,)}
    mlp_scale = {"w1": 0.8, "b1": 0.2, "w2": 0.5, "b2": 0.2, "w3": 0.5, "b3": 0.2}

    def mlp(p, obs):
        h = jnp.tanh(obs @ p["w1"] + p["b1"])
        h = jnp.tanh(h @ p["w2"] + p["b2"])
        return jnp.tanh(h @ p["w3"] + p["b3"])

    def mlp_loss(p, obs, target):
        return jnp.mean((mlp(p, obs) - target) ** 2)

    rng = np.random.default_rng(0)
    obs = rng.uniform(-1, 1, size=(8, 5)).astype(np.float32)
    target = rng.uniform(-0.5, 0.5, size=(8, 3)).astype(np.float32)
    p32 = {k: gen_params(10 + j, mlp_shapes[k], mlp_scale[k]) for j, k in enumerate(mlp_names)}
    p = {k: f64(v) for k, v in p32.items()}
    y = mlp(p, f64(obs))
    loss, (g_p, g_obs) = jax.value_and_grad(mlp_loss, argnums=(0, 1))(p, f64(obs), f64(target))
    P = 4
    pp32 = {k: gen_params(20 + j, (P,) + mlp_shapes[k], mlp_scale[k]) for j, k in enumerate(mlp_names)}
    pp = {k: f64(v) for k, v in pp32.items()}
    y_pop = jax.vmap(mlp, in_axes=(0, None))(pp, f64(obs))
    loss_pop, g_pop = jax.vmap(jax.value_and_grad(mlp_loss), in_axes=(0, None, None))(pp, f64(obs), f64(target))

    f32 = lambda a: np.asarray(a, dtype=np.float32)  # noqa: E731
    mlp_tensors = [("obs", obs), ("target", target)]
    mlp_tensors += [(k, p32[k]) for k in mlp_names]
    mlp_tensors += [("y", f32(y)), ("loss", f32(loss))]
    mlp_tensors += [("grad." + k, f32(g_p[k])) for k in mlp_names]
    mlp_tensors += [("grad.obs", f32(g_obs))]
    mlp_tensors += [("pop." + k, pp32[k]) for k in mlp_names]
    mlp_tensors += [("pop.y", f32(y_pop)), ("pop.loss", f32(loss_pop))]
    mlp_tensors += [("pop.grad." + k, f32(g_pop[k])) for k in mlp_names]

    # ---------------- seed CNN
    cnn_names = ["conv.kernel", "conv.bias", "dense1.kernel", "dense1.bias", "dense2.kernel", "dense2.bias"]
    cnn_shapes = {"conv.kernel": (5, 5, 1, 16), "conv.bias": (16,), "dense1.kernel": (3136, 1024),
                  "dense1.bias": (1024,), "dense2.kernel": (1024, 10), "dense2.bias": (10,)}
    cnn_scale = {"conv.kernel": 0.3, "conv.bias": 0.1, "dense1.kernel": 0.04, "dense1.bias": 0.05,
                 "dense2.kernel": 0.15, "dense2.bias": 0.05}

    def cnn_logits(p, x):
        h = lax.conv_general_dilated(x, p["conv.kernel"], window_strides=(1, 1), padding="SAME",
                                     dimension_numbers=("NHWC", "HWIO", "NHWC"),
                                     precision=lax.Precision.HIGHEST)
        h = jax.nn.relu(h + p["conv.bias"])
        h = lax.reduce_window(h, -jnp.inf, lax.max, (1, 2, 2, 1), (1, 2, 2, 1), "VALID")
        h = h.reshape((h.shape[0], -1))
        h = jax.nn.relu(h @ p["dense1.kernel"] + p["dense1.bias"])
        return h @ p["dense2.kernel"] + p["dense2.bias"]

    def cnn_loss(p, x, labels):
        logp = jax.nn.log_softmax(cnn_logits(p, x))
        return -jnp.mean(jnp.take_along_axis(logp, labels[:, None], axis=1))

    labels = np.array([3, 7], dtype=np.int32)
    c32 = {k: gen_params(30 + j, cnn_shapes[k], cnn_scale[k]) for j, k in enumerate(cnn_names)}
    c = {k: f64(v) for k, v in c32.items()}

    def margins_of(x):
        """How far the data is from a relu or max-pool decision flip (a flip under float32 rounding in the
        implementation under test would change the gradient's routing, not just its rounding)."""
        pre = lax.conv_general_dilated(f64(x), c["conv.kernel"], (1, 1), "SAME",
                                       dimension_numbers=("NHWC", "HWIO", "NHWC")) + c["conv.bias"]
        win = np.asarray(jax.nn.relu(pre)).reshape(2, 14, 2, 14, 2, 16).transpose(0, 1, 3, 5, 2, 4).reshape(-1, 4)
        win = np.sort(win, axis=1)
        gap = (win[:, 3] - win[:, 2])[win[:, 3] > 0]
        pooled = win[:, 3].reshape(2, 14, 14, 16).reshape(2, -1)
        pre1 = pooled @ np.asarray(c["dense1.kernel"]) + np.asarray(c["dense1.bias"])
        return {"conv pre-activation": float(np.min(np.abs(np.asarray(pre)))), "max-pool gap": float(gap.min()),
                "dense1 pre-activation": float(np.min(np.abs(pre1)))}

    # Images: the first seed (100, 101, ...) whose margins exceed 1e-5 (conv, pool: the float32 error of a 25-term
    # conv sum is < 1e-6 here) and 1e-4 (dense1: a 3136-term dot, float32 error ~1e-5 at worst here).
    need = {"conv pre-activation": 1e-5, "max-pool gap": 1e-5, "dense1 pre-activation": 1e-4}
    for img_seed in range(100, 200):
        x = np.random.default_rng(img_seed).uniform(0, 1, size=(2, 28, 28, 1)).astype(np.float32)
        margins = margins_of(x)
        if all(margins[k] > need[k] for k in need):
            break
    else:
        raise SystemExit(f"no image seed with safe decision margins (last: {margins})")
    print(f"cnn images from default_rng({img_seed}); decision margins:", {k: f"{v:.1e}" for k, v in margins.items()})
    logits = cnn_logits(c, f64(x))
    closs, g = jax.value_and_grad(cnn_loss)(c, f64(x), jnp.asarray(labels))
    g = {k: np.asarray(v) for k, v in g.items()}
    gd1 = g["dense1.kernel"]
    sample_idx = np.sort(rng.choice(gd1.size, size=4096, replace=False)).astype(np.int32)
    d1 = c32["dense1.kernel"].astype(np.float64)

    cnn_tensors = [("x", x), ("labels", labels)]
    cnn_tensors += [(k, c32[k]) for k in cnn_names if k != "dense1.kernel"]
    cnn_tensors += [("dense1.kernel.sum", np.array(d1.sum())), ("dense1.kernel.sumsq", np.array((d1 * d1).sum()))]
    cnn_tensors += [("logits", f32(logits)), ("loss", f32(closs))]
    cnn_tensors += [("grad." + k, f32(g[k])) for k in cnn_names if k != "dense1.kernel"]
    cnn_tensors += [("grad.dense1.kernel.rowsum", f32(gd1.sum(axis=1))),
                    ("grad.dense1.kernel.colsum", f32(gd1.sum(axis=0))),
                    ("grad.dense1.kernel.sample_idx", sample_idx),
                    ("grad.dense1.kernel.sample", f32(gd1.reshape(-1)[sample_idx])),
                    ("grad.dense1.kernel.sumsq", np.array((gd1 * gd1).sum()))]
    return {"golden_mlp.bin": mlp_tensors, "golden_cnn.bin": cnn_tensors}


def self_check():
    """The generator's first values, for cross-checking the C port by eye."""
    v = gen_params(1, (4,), 1.0)
    return v


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--check", action="store_true", help="recompute and compare with the files in tests/data")
    ap.add_argument("--out", default=DATA, help="output folder (default tests/data)")
    args = ap.parse_args()
    files = build()
    total = 0
    status = 0
    for fname, tensors in files.items():
        path = os.path.join(args.out, fname)
        data = write_golden(path, tensors)
        total += len(data)
        if args.check:
            old = read_golden(path)
            new_names = [n for n, _ in tensors]
            for n, a in tensors:
                if n not in old or old[n].shape != np.asarray(a).shape:
                    print(f"{fname}: {n} missing or reshaped"); status = 1; continue
                err = np.max(np.abs(old[n].astype(np.float64) - np.asarray(a, dtype=np.float64)), initial=0)
                if err > 1e-6 * max(1.0, np.max(np.abs(np.asarray(a, dtype=np.float64)), initial=0)):
                    print(f"{fname}: {n} differs by {err:g}"); status = 1
            extra = set(old) - set(new_names)
            if extra:
                print(f"{fname}: stale tensors {sorted(extra)}"); status = 1
        else:
            os.makedirs(args.out, exist_ok=True)
            tmp = path + ".tmp"
            with open(tmp, "wb") as f:
                f.write(data)
            os.replace(tmp, path)
            back = read_golden(path)
            assert len(back) == len(tensors)
            print(f"wrote {path} ({len(data)} bytes, {len(tensors)} tensors)")
    print(f"total {total} bytes; generator check gen_params(1, (4,), 1.0) = {self_check().tolist()}")
    if args.check:
        print("check: " + ("OK" if status == 0 else "MISMATCH"))
    return status


if __name__ == "__main__":
    sys.exit(main())
