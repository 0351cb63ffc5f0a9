#!/usr/bin/env python3
"""Golden values for tests/test_policies.c: evoc's policies computed independently with NumPy in float64.

    /usr/bin/python3 scripts/golden_policies.py            # writes tests/data/golden_policies.bin
    /usr/bin/python3 scripts/golden_policies.py --check    # recomputes and compares with the committed file

Only NumPy is needed. File format: as scripts/golden_nets.py (ASCII header "evoc-golden 1", one line per tensor
"<name> <f32|i32|f64> <ndim> <dims...>", "end", then raw little-endian data in header order).

Each net is described here from policy.h's documented layout, not from evoc's code: the flat parameter vector is
the concatenation of its entries in order, each C-order. Entry k of net `<net>` is generated with the counter-based
generator of scripts/golden_nets.py, gen_params(seed0 + k, shape, scale_k), which the test reimplements bit-exactly,
so no parameters are stored. Per net the file holds:
    <net>:<entry name>   i32 [ndim]   the entry's shape, one tensor per entry in flat order (the layout)
    <net>.seed0          i32 [1]
    <net>.scales         f32 [entries]
    <net>.params.sum     f64 []       sum of the flat vector (checks the generator and the concatenation)
    <net>.obs            f32 [N, obs...]
    <net>.y              f32 [N, act...] (or i32 [N] for an argmax head)
The LSTM additionally has obs2, y2 and the states h1, c1, h2, c2 (two steps from zero state).

Nets (obs shape per observation -> action shape):
  mlp_tanh       [6] -> [3]: dense 8, tanh, dense 8, tanh, dense 3, tanh
  mlp_relu_sm    [2, 3] (flattened to 6) -> [4]: dense 5, relu, dense 4, softmax
  mlp_argmax     same net and parameters as mlp_relu_sm, discrete with 4 actions: argmax -> i32 [N]
  evojax_convnet [28, 28, 1] -> [10]: conv 8@5x5 SAME, relu, maxpool 2, conv 16@5x5 SAME, relu, maxpool 2,
                 dense 10, log_softmax
  seed_cnn       [28, 28, 1] -> [10]: conv 16@5x5 SAME, relu, maxpool 2, flatten, dense 1024, relu, dense 10
  cnn_misc       [12, 10, 3] -> [5]: conv 4@3x3 stride 2 VALID, tanh, avgpool 3x3 stride 1 SAME (divides by the
                 number of non-padding elements), maxpool 2x2 stride 1 SAME (pads with -inf), dense 5, softmax
  lstm           [4] -> [2], H = 5: z = x wi + h wh + b (gates i, f, g, o), c' = s(f) c + s(i) tanh(g),
                 h' = s(o) tanh(c'), y = tanh(h' out.kernel + out.bias)
"""
import argparse
import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from golden_nets import gen_params, read_golden, write_golden  # noqa: E402  (NumPy-only helpers)

OUT = os.path.join(os.path.dirname(HERE), "tests", "data", "golden_policies.bin")


# ------------------------------------------------------------------------------------------------ layers (f64)
def same_pads(n, k, s):
    out = -(-n // s)
    total = max((out - 1) * s + k - n, 0)
    return out, total // 2, total - total // 2


def windows(x, kh, kw, sh, sw, padding, fill):
    """Yields (i, j, patch [N, OH, OW, C]) for every window offset, padding with `fill`."""
    n, h, w, c = x.shape
    if padding == "SAME":
        oh, pt, pb = same_pads(h, kh, sh)
        ow, pl, pr = same_pads(w, kw, sw)
        x = np.pad(x, ((0, 0), (pt, pb), (pl, pr), (0, 0)), constant_values=fill)
    else:
        oh, ow = (h - kh) // sh + 1, (w - kw) // sw + 1
    for i in range(kh):
        for j in range(kw):
            yield i, j, x[:, i:i + sh * (oh - 1) + 1:sh, j:j + sw * (ow - 1) + 1:sw, :]


def conv2d(x, w, b, stride, padding):
    out = 0
    for i, j, patch in windows(x, w.shape[0], w.shape[1], stride, stride, padding, 0.0):
        out = out + patch @ w[i, j]
    return out + b


def max_pool(x, k, s, padding):
    out = None
    for _, _, patch in windows(x, k, k, s, s, padding, -np.inf):
        out = patch if out is None else np.maximum(out, patch)
    return out


def avg_pool(x, k, s, padding):
    total = sum(p for _, _, p in windows(x, k, k, s, s, padding, 0.0))
    count = sum(p for _, _, p in windows(np.ones_like(x), k, k, s, s, padding, 0.0))
    return total / count


def softmax(z):
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def log_softmax(z):
    m = z.max(axis=-1, keepdims=True)
    return z - m - np.log(np.exp(z - m).sum(axis=-1, keepdims=True))


def sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


# ------------------------------------------------------------------------------------------------ parameters
def kernel(name, shape):
    fan_in = int(np.prod(shape[:-1]))
    return (name, tuple(shape), np.float32(1.0 / np.sqrt(fan_in)))


def bias(name, n):
    return (name, (n,), np.float32(0.1))


def make_params(entries, seed0):
    """Flat f32 vector and a dict of f64 arrays by entry name."""
    flat, p = [], {}
    for k, (name, shape, scale) in enumerate(entries):
        v = gen_params(seed0 + k, shape, scale)
        flat.append(v.ravel())
        p[name] = v.astype(np.float64)
    return np.concatenate(flat), p


def layout_tensors(net, entries, seed0, flat):
    t = [(f"{net}:{name}", np.array(shape, dtype=np.int32)) for name, shape, _ in entries]
    t += [(f"{net}.seed0", np.array([seed0], dtype=np.int32)),
          (f"{net}.scales", np.array([s for _, _, s in entries], dtype=np.float32)),
          (f"{net}.params.sum", np.float64(flat.astype(np.float64).sum()))]
    return t


def obs_of(seed, shape):
    return np.random.default_rng(seed).uniform(-1, 1, size=shape).astype(np.float32)


# ------------------------------------------------------------------------------------------------ nets
def mlp_nets():
    out = []
    # mlp_tanh
    e = [kernel("dense1.kernel", (6, 8)), bias("dense1.bias", 8), kernel("dense2.kernel", (8, 8)),
         bias("dense2.bias", 8), kernel("dense3.kernel", (8, 3)), bias("dense3.bias", 3)]
    flat, p = make_params(e, 100)
    obs = obs_of(1, (4, 6))
    h = obs.astype(np.float64)
    for l in (1, 2, 3):
        h = np.tanh(h @ p[f"dense{l}.kernel"] + p[f"dense{l}.bias"])
    out += layout_tensors("mlp_tanh", e, 100, flat) + [("mlp_tanh.obs", obs), ("mlp_tanh.y", h.astype(np.float32))]
    # mlp_relu_sm and mlp_argmax (same parameters)
    e = [kernel("dense1.kernel", (6, 5)), bias("dense1.bias", 5), kernel("dense2.kernel", (5, 4)),
         bias("dense2.bias", 4)]
    flat, p = make_params(e, 200)
    obs = obs_of(11, (5, 2, 3))
    x = obs.reshape(5, 6).astype(np.float64)
    z = np.maximum(x @ p["dense1.kernel"] + p["dense1.bias"], 0) @ p["dense2.kernel"] + p["dense2.bias"]
    srt = np.sort(z, axis=-1)
    assert (srt[:, -1] - srt[:, -2]).min() > 1e-3, "argmax too close to a tie for a float32 comparison"
    for net in ("mlp_relu_sm", "mlp_argmax"):
        out += layout_tensors(net, e, 200, flat) + [(f"{net}.obs", obs)]
    out += [("mlp_relu_sm.y", softmax(z).astype(np.float32)),
            ("mlp_argmax.y", np.argmax(z, axis=-1).astype(np.int32))]
    return out


def cnn_nets():
    out = []
    e = [kernel("conv1.kernel", (5, 5, 1, 8)), bias("conv1.bias", 8), kernel("conv2.kernel", (5, 5, 8, 16)),
         bias("conv2.bias", 16), kernel("dense1.kernel", (784, 10)), bias("dense1.bias", 10)]
    flat, p = make_params(e, 300)
    assert flat.size == 11274
    obs = obs_of(3, (2, 28, 28, 1))
    h = obs.astype(np.float64)
    h = max_pool(np.maximum(conv2d(h, p["conv1.kernel"], p["conv1.bias"], 1, "SAME"), 0), 2, 2, "VALID")
    h = max_pool(np.maximum(conv2d(h, p["conv2.kernel"], p["conv2.bias"], 1, "SAME"), 0), 2, 2, "VALID")
    y = log_softmax(h.reshape(2, -1) @ p["dense1.kernel"] + p["dense1.bias"])
    out += layout_tensors("evojax_convnet", e, 300, flat)
    out += [("evojax_convnet.obs", obs), ("evojax_convnet.y", y.astype(np.float32))]

    e = [kernel("conv1.kernel", (5, 5, 1, 16)), bias("conv1.bias", 16), kernel("dense1.kernel", (3136, 1024)),
         bias("dense1.bias", 1024), kernel("dense2.kernel", (1024, 10)), bias("dense2.bias", 10)]
    flat, p = make_params(e, 400)
    obs = obs_of(4, (2, 28, 28, 1))
    h = max_pool(np.maximum(conv2d(obs.astype(np.float64), p["conv1.kernel"], p["conv1.bias"], 1, "SAME"), 0), 2, 2,
                 "VALID")
    h = np.maximum(h.reshape(2, -1) @ p["dense1.kernel"] + p["dense1.bias"], 0)
    y = h @ p["dense2.kernel"] + p["dense2.bias"]
    out += layout_tensors("seed_cnn", e, 400, flat) + [("seed_cnn.obs", obs), ("seed_cnn.y", y.astype(np.float32))]

    e = [kernel("conv1.kernel", (3, 3, 3, 4)), bias("conv1.bias", 4), kernel("dense1.kernel", (80, 5)),
         bias("dense1.bias", 5)]
    flat, p = make_params(e, 500)
    obs = obs_of(5, (3, 12, 10, 3))
    h = np.tanh(conv2d(obs.astype(np.float64), p["conv1.kernel"], p["conv1.bias"], 2, "VALID"))  # [3, 5, 4, 4]
    h = max_pool(avg_pool(h, 3, 1, "SAME"), 2, 1, "SAME")
    y = softmax(h.reshape(3, -1) @ p["dense1.kernel"] + p["dense1.bias"])
    out += layout_tensors("cnn_misc", e, 500, flat) + [("cnn_misc.obs", obs), ("cnn_misc.y", y.astype(np.float32))]
    return out


def lstm_net():
    H = 5
    e = [kernel("lstm.wi", (4, 4 * H)), kernel("lstm.wh", (H, 4 * H)), bias("lstm.bias", 4 * H),
         kernel("out.kernel", (H, 2)), bias("out.bias", 2)]
    flat, p = make_params(e, 600)
    obs1, obs2 = obs_of(6, (3, 4)), obs_of(7, (3, 4))

    def step(x, h, c):
        z = x.astype(np.float64) @ p["lstm.wi"] + h @ p["lstm.wh"] + p["lstm.bias"]
        i, f, g, o = (z[:, k * H:(k + 1) * H] for k in range(4))
        c = sigmoid(f) * c + sigmoid(i) * np.tanh(g)
        h = sigmoid(o) * np.tanh(c)
        return np.tanh(h @ p["out.kernel"] + p["out.bias"]), h, c

    z = np.zeros((3, H))
    y1, h1, c1 = step(obs1, z, z)
    y2, h2, c2 = step(obs2, h1, c1)
    f32 = lambda a: a.astype(np.float32)  # noqa: E731
    return layout_tensors("lstm", e, 600, flat) + [
        ("lstm.obs", obs1), ("lstm.y", f32(y1)), ("lstm.h1", f32(h1)), ("lstm.c1", f32(c1)),
        ("lstm.obs2", obs2), ("lstm.y2", f32(y2)), ("lstm.h2", f32(h2)), ("lstm.c2", f32(c2))]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--check", action="store_true", help="compare with the committed file instead of writing it")
    args = ap.parse_args()
    tensors = mlp_nets() + cnn_nets() + lstm_net()
    data = write_golden(OUT, tensors)
    if args.check:
        old = read_golden(OUT)
        new = {name: np.asarray(a) for name, a in tensors}
        bad = [k for k in new if k not in old or old[k].shape != new[k].shape
               or not np.allclose(old[k], new[k], rtol=1e-6, atol=1e-7)]
        if bad or len(old) != len(new):
            sys.exit(f"golden_policies.bin differs from the recomputed values: {bad or 'tensor count'}")
        print(f"{OUT}: {len(new)} tensors match")
        return
    with open(OUT, "wb") as f:
        f.write(data)
    print(f"wrote {OUT} ({len(data)} bytes, {len(tensors)} tensors)")


if __name__ == "__main__":
    main()
