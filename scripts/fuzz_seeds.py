#!/usr/bin/python3
"""Writes the generated seed inputs of the fuzz targets of tests/fuzz into
OUT/<target>/ (standard library only): small valid files of every format
the targets read, so that the fuzzer starts from inputs that get past the
first checks. They are kept in tests/fuzz/inputs (with the inputs fuzzing
found to fail); rerun this when a format changes:
    scripts/fuzz_seeds.py tests/fuzz/inputs build/attnc
(the IR test files of tests/data and the Lua specs of models/ and
tests/data/specs are seeds too, read where they are)."""
import gzip
import json
import os
import struct
import subprocess
import sys
import tempfile
import zlib

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


# A one-channel spec small enough for a seed checkpoint of a few KiB.
NET = """local nn = require "nn"
local opt = options { in_channels = 1, classes = 10 }
input_shape { 1, 28, 28 }
local Net = nn.Module "Net"
function Net:init(o)
  self.conv = nn.Conv2d(o.in_channels, 4, 3, { padding = 1 })
  self.bn = nn.BatchNorm2d(4)
  self.fc = nn.Linear(4, o.classes)
end
function Net:forward(x)
  return self.fc(self.bn(self.conv(x)):relu():mean { 2, 3 })
end
return Net(opt)
"""


def put(out, target, name, data):
    """Writes one seed file."""
    d = os.path.join(out, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def safetensors(tensors, meta=None):
    """Returns a safetensors file of (name, dtype, shape, raw bytes) tuples."""
    header, data = {}, b""
    for name, dtype, shape, raw in tensors:
        header[name] = {"dtype": dtype, "shape": shape,
                        "data_offsets": [len(data), len(data) + len(raw)]}
        data += raw
    if meta is not None:
        header["__metadata__"] = meta
    h = json.dumps(header).encode()
    h += b" " * (-len(h) % 8)
    return struct.pack("<Q", len(h)) + h + data


def idx(dims, payload, code=0x08):
    """Returns an IDX file: magic, big-endian dims, bytes."""
    return struct.pack(">HBB", 0, code, len(dims)) + b"".join(struct.pack(">I", d) for d in dims) + payload


def png(w, h, rgb):
    """Returns an 8-bit RGB PNG file of w x h pixels (rgb: rows of bytes)."""
    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    rows = b"".join(b"\0" + rgb[y * w * 3:(y + 1) * w * 3] for y in range(h))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


# A 4x4 RGB JPEG (libjpeg, quality 75, optimized Huffman tables).
TINY_JPEG = bytes.fromhex(
    "ffd8ffe000104a46494600010100000100010000ffdb004300080606070605080707070909080a0c140d0c0b0b0c1912130f141d1a"
    "1f1e1d1a1c1c20242e2720222c231c1c2837292c30313434341f27393d38323c2e333432ffdb0043010909090c0b0c180d0d1832211c"
    "213232323232323232323232323232323232323232323232323232323232323232323232323232323232323232323232323232ffc000"
    "11080004000403012200021101031101ffc4001500010100000000000000000000000000000006ffc4001d1000010207000000000000"
    "0000000000000001020506071424a1d1ffc40014010100000000000000000000000000000002ffc40014110100000000000000000000"
    "000000000000ffda000c03010002110311003f00ad86d36966c9983b4e00060fffd9")


def data_seed(kind, first, second=b""):
    """Returns a fuzz_data input: kind byte, first file's length, files."""
    return bytes([kind]) + struct.pack("<H", len(first)) + first + second


def main():
    out, attnc = sys.argv[1], sys.argv[2]
    # IR text: a small model at every text stage.
    tiny = os.path.join(ROOT, "tests/data/specs/tiny.lua")
    for stage, extra in (("ir", []), ("ir", ["--train"]), ("grad", ["--train"])):
        r = subprocess.run([attnc, "dump", tiny, "--batch", "2", "--stage", stage] + extra,
                           capture_output=True, check=True)
        put(out, "ir_text", "tiny_%s%s.ir" % (stage, "_train" if extra else ""), r.stdout)
    # safetensors: every dtype the reader takes, metadata, an empty tensor.
    f32 = struct.pack("<4f", 1.0, -2.0, 0.5, 3.0)
    put(out, "safetensors", "dtypes.safetensors", safetensors([
        ("a", "F32", [2, 2], f32), ("b", "F64", [1], struct.pack("<d", 2.5)),
        ("c", "I64", [2], struct.pack("<2q", -1, 7)), ("d", "F16", [2], struct.pack("<2H", 0x3c00, 0xc000)),
        ("e", "BF16", [2], struct.pack("<2H", 0x3f80, 0x4000)), ("f", "I32", [1], struct.pack("<i", 5)),
        ("g", "U8", [3], b"\x01\x02\x03"), ("h", "BOOL", [2], b"\x00\x01"), ("i", "I8", [1], b"\xff"),
        ("j", "I16", [1], struct.pack("<h", -3)), ("k", "F32", [0, 3], b""), ("s", "F32", [], struct.pack("<f", 4.0))],
        {"format": "pt"}))
    put(out, "safetensors", "one.safetensors", safetensors([("x", "F32", [4], f32)]))
    # Checkpoints: one written by attnc train, and a bare state_dict.
    with tempfile.TemporaryDirectory() as tmp:
        n = 8
        pixels = bytes((i * 37) % 256 for i in range(n * 28 * 28))
        labels = bytes(i % 10 for i in range(n))
        for split in ("train", "t10k"):
            with gzip.open(os.path.join(tmp, split + "-images-idx3-ubyte.gz"), "wb") as f:
                f.write(idx([n, 28, 28], pixels))
            with gzip.open(os.path.join(tmp, split + "-labels-idx1-ubyte.gz"), "wb") as f:
                f.write(idx([n], labels))
        spec = os.path.join(tmp, "net.lua")
        with open(spec, "w") as f:
            f.write(NET)
        ck = os.path.join(tmp, "net.safetensors")
        subprocess.run([attnc, "train", spec, "--data", "mnist:" + tmp, "--batch", "4", "--epochs", "1",
                        "--threads", "1", "--save", ck], capture_output=True, check=True)
        put(out, "ckpt", "net.safetensors", open(ck, "rb").read())
    put(out, "ckpt", "state_dict.safetensors", safetensors([("fc.weight", "F32", [2, 2], f32)], {"format": "pt"}))
    # Data sets: a few samples of each format (fuzz_data's layout).
    n = 3
    put(out, "data", "idx", data_seed(0, idx([n, 4, 4], bytes(range(n * 16))), idx([n], bytes([1, 2, 9]))))
    put(out, "data", "idx_gz", data_seed(1, gzip.compress(idx([n, 4, 4], bytes(range(n * 16)))),
                                          gzip.compress(idx([n], bytes([0, 5, 9])))))
    put(out, "data", "cifar10", data_seed(2, b"".join(bytes([i]) + bytes(3072) for i in range(n))))
    put(out, "data", "cifar100", data_seed(3, b"".join(bytes([i, 50 + i]) + bytes(3072) for i in range(n))))
    put(out, "data", "stl10", data_seed(4, bytes(3 * 96 * 96), bytes([10])))
    put(out, "data", "folder_png", data_seed(5, png(6, 4, bytes(range(72)))))
    put(out, "data", "folder_jpeg_resized", data_seed(6, TINY_JPEG))
    put(out, "data", "folder_jpeg_files", data_seed(7, TINY_JPEG))


if __name__ == "__main__":
    main()
