#!/usr/bin/env python3
"""Writes the tensors of the eca_tiny.ir example: its input, its weights and the
expected logits, computed here in float64 with plain Python (an implementation
independent of attnc), stored as float32. Standard library only.

usage: python3 make_eca_tiny.py [OUTDIR]   (default: this script's directory)
"""
import json
import math
import os
import random
import struct
import sys


def write_safetensors(path, tensors, meta):
    """tensors: list of (name, shape, flat float list) stored as F32."""
    header, data = {"__metadata__": meta}, b""
    for name, shape, vals in tensors:
        blob = struct.pack("<%df" % len(vals), *vals)
        header[name] = {"dtype": "F32", "shape": shape,
                        "data_offsets": [len(data), len(data) + len(blob)]}
        data += blob
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + data)


def f32(v):
    return struct.unpack("<f", struct.pack("<f", v))[0]


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.dirname(os.path.abspath(__file__))
    rng = random.Random(20240)
    N, C, H, W, O, K = 2, 2, 4, 4, 4, 3
    x = [f32(rng.uniform(-1, 1)) for _ in range(N * C * H * W)]
    cw = [f32(rng.uniform(-0.5, 0.5)) for _ in range(O * C * 9)]
    kw = [f32(rng.uniform(-1, 1)) for _ in range(3)]
    fw = [f32(rng.uniform(-1, 1)) for _ in range(K * O)]
    fb = [f32(rng.uniform(-0.1, 0.1)) for _ in range(K)]

    def X(n, c, i, j):
        return x[((n * C + c) * H + i) * W + j] if 0 <= i < H and 0 <= j < W else 0.0

    logits = []
    for n in range(N):
        r = [[[max(0.0, sum(cw[((o * C + c) * 3 + di) * 3 + dj] * X(n, c, i + di - 1, j + dj - 1)
                            for c in range(C) for di in range(3) for dj in range(3)))
               for j in range(W)] for i in range(H)] for o in range(O)]
        s = [sum(map(sum, r[o])) / (H * W) for o in range(O)]
        m = [sum(kw[t] * (s[o + t - 1] if 0 <= o + t - 1 < O else 0.0) for t in range(3))
             for o in range(O)]
        g = [1 / (1 + math.exp(-v)) for v in m]
        p = [s[o] * g[o] for o in range(O)]  # mean(r * g) = mean(r) * g
        logits += [sum(p[o] * fw[k * O + o] for o in range(O)) + fb[k] for k in range(K)]

    meta = {"example": "eca_tiny", "generator": "docs/examples/make_eca_tiny.py"}
    write_safetensors(os.path.join(out, "eca_tiny.input.safetensors"),
                      [("input", [N, C, H, W], x)], meta)
    write_safetensors(os.path.join(out, "eca_tiny.weights.safetensors"),
                      [("conv.weight", [O, C, 3, 3], cw), ("att.conv1d.weight", [1, 1, 3], kw),
                       ("fc.weight", [K, O], fw), ("fc.bias", [K], fb)], meta)
    write_safetensors(os.path.join(out, "eca_tiny.expected.safetensors"),
                      [("logits", [N, K], logits)], meta)


if __name__ == "__main__":
    main()
