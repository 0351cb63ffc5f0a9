#!/usr/bin/env python3
"""Writes a synthetic MNIST-style IDX dataset (the four files evoc's mnist task and bench/train_epoch_peers.py
read): 28 x 28 uint8 images and labels 0..9 from a seeded generator, each class a blurred blob at its own place plus
noise, so a network can learn it. For timing where the real dataset is not installed (the GPU machine); the
accuracies it gives say nothing about Fashion-MNIST.

Usage: synth_idx.py DIR [--train N] [--test N] [--seed S]
"""
import argparse
import os
import random
import struct


VARIANTS = 64  # noisy images drawn per class, reused (writing 70,000 drawn images would take Python a minute)


def class_images(rng):
    """VARIANTS images of each class: a bright disc at the class's place plus uniform noise."""
    out = []
    for c in range(10):
        cy, cx = 6 + 4 * (c // 4), 6 + 5 * (c % 4)
        row = []
        for _ in range(VARIANTS):
            px = bytearray(784)
            for y in range(28):
                for x in range(28):
                    v = (220 if (y - cy) ** 2 + (x - cx) ** 2 < 16 else 0) + rng.randrange(36)
                    px[28 * y + x] = min(v, 255)
            row.append(bytes(px))
        out.append(row)
    return out


def images(rng, n, labels, pool):
    head = struct.pack(">IIII", 0x00000803, n, 28, 28)
    return head + b"".join(pool[labels[k]][rng.randrange(VARIANTS)] for k in range(n))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("dir")
    ap.add_argument("--train", type=int, default=60000)
    ap.add_argument("--test", type=int, default=10000)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    os.makedirs(a.dir, exist_ok=True)
    rng = random.Random(a.seed)
    pool = class_images(rng)
    for prefix, n in (("train", a.train), ("t10k", a.test)):
        labels = [rng.randrange(10) for _ in range(n)]
        with open(os.path.join(a.dir, prefix + "-labels-idx1-ubyte"), "wb") as f:
            f.write(struct.pack(">II", 0x00000801, n) + bytes(labels))
        with open(os.path.join(a.dir, prefix + "-images-idx3-ubyte"), "wb") as f:
            f.write(images(rng, n, labels, pool))
    print(f"{a.dir}: {a.train} training and {a.test} test images (synthetic)")


if __name__ == "__main__":
    main()
