#!/usr/bin/env python3
"""Writes tests/data/numpy_params.safetensors, an independent check of evoc's safetensors reader.

The format is written by hand (numpy + struct + json, no safetensors package) so the C reader is tested against a
second implementation of the spec: u64 little-endian header length, JSON header, raw little-endian data.
On purpose the data section stores the tensors in a different order than the header lists them, and the header
is padded with spaces to a multiple of 8, as the reference writer does. Values (checked by tests/test_ptree.c):
  dense1.kernel  F32 [3, 4]  np.arange(12) * 0.5 - 1
  dense1.bias    F32 [4]     np.arange(4) * 0.25 + 2
  step           I32 [2]     [-7, 123456789]
  mask           U8  [3]     [0, 1, 255]
metadata: {"source": "numpy"}
Usage: python3 scripts/make_safetensors_testdata.py [out_path]
"""
import json
import os
import struct
import sys

import numpy as np

DTYPES = {np.dtype("<f4"): "F32", np.dtype("<i4"): "I32", np.dtype("u1"): "U8"}


def tensors():
    return {
        "dense1.kernel": (np.arange(12, dtype=np.float32) * 0.5 - 1).reshape(3, 4),
        "dense1.bias": np.arange(4, dtype=np.float32) * 0.25 + 2,
        "step": np.array([-7, 123456789], dtype="<i4"),
        "mask": np.array([0, 1, 255], dtype=np.uint8),
    }


def write(path):
    ts = tensors()
    data_order = ["mask", "dense1.bias", "step", "dense1.kernel"]  # differs from the header order below
    offsets, blobs, pos = {}, [], 0
    for name in data_order:
        raw = np.ascontiguousarray(ts[name]).astype(ts[name].dtype.newbyteorder("<")).tobytes()
        offsets[name] = [pos, pos + len(raw)]
        blobs.append(raw)
        pos += len(raw)
    header = {"__metadata__": {"source": "numpy"}}
    for name, arr in ts.items():
        header[name] = {"dtype": DTYPES[arr.dtype], "shape": list(arr.shape), "data_offsets": offsets[name]}
    hj = json.dumps(header, separators=(",", ":")).encode("utf-8")
    hj += b" " * (-len(hj) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(hj)))
        f.write(hj)
        for b in blobs:
            f.write(b)


if __name__ == "__main__":
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(root, "tests", "data", "numpy_params.safetensors")
    write(out)
    print(out)
