#!/usr/bin/env python3
"""EvoJAX's saved parameters (Trainer's best.npz / final.npz) as an evoc safetensors file, so that `evoc eval` can
score EvoJAX's and evoc's trained policies on the same test episodes (the same physics, one simulator).

Only the MLP of the CartPole recipes is mapped: EvoJAX's MLPPolicy is a flax module whose flat vector is
ravel_pytree of {Dense_0, Dense_1, Dense_2} x {bias, kernel}; it is unflattened with the policy's own
_format_params_fn and written as evoc's dense{1,2,3}.kernel [in, out] / .bias entries (policies/mlp: the same
x W + b convention). EvoJAX's observation normaliser is not mapped (its CartPole recipes do not use one).

Not a project dependency: run it from a throwaway venv with evojax.

Usage: evojax_params.py PARAMS.npz OUT.safetensors [--hidden 64,64] [--obs 5] [--act 1]
Then:  evoc eval OUT.safetensors --config configs/cartpole_swingup_hard_pgpe.yaml --episodes 10000
"""
import argparse
import json
import logging
import struct

import numpy as np


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("npz")
    ap.add_argument("out")
    ap.add_argument("--hidden", default="64,64", help="hidden sizes, comma separated")
    ap.add_argument("--obs", type=int, default=5, help="observation size")
    ap.add_argument("--act", type=int, default=1, help="action size")
    a = ap.parse_args()
    import jax  # after argparse so --help works without jax
    from evojax.policy import MLPPolicy
    hidden = [int(h) for h in a.hidden.split(",")]
    pol = MLPPolicy(input_dim=a.obs, hidden_dims=hidden, output_dim=a.act, logger=logging.getLogger("evojax_params"))
    flat = np.load(a.npz)["params"]
    if flat.size != pol.num_params:
        raise SystemExit(f"{a.npz}: {flat.size} parameters, the MLP {a.obs}-{a.hidden}-{a.act} has {pol.num_params}")
    layers = pol._format_params_fn(jax.numpy.asarray(flat)[None, :])["params"]  # batched unravel, batch of one
    entries = {}
    for i in range(len(hidden) + 1):
        d = layers[f"Dense_{i}"]
        entries[f"dense{i + 1}.kernel"] = np.asarray(d["kernel"][0], dtype="<f4")
        entries[f"dense{i + 1}.bias"] = np.asarray(d["bias"][0], dtype="<f4")
    header, blobs, off = {"__metadata__": {"format": "evoc", "source": f"evojax {a.npz}"}}, [], 0
    for name, v in entries.items():
        b = np.ascontiguousarray(v).tobytes()
        header[name] = {"dtype": "F32", "shape": list(v.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(header).encode()
    h += b" " * (-len(h) % 8)  # safetensors: the data starts 8-byte aligned
    with open(a.out, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))
    print(f"{a.out}: " + ", ".join(f"{k} {list(v.shape)}" for k, v in entries.items()))


if __name__ == "__main__":
    main()
