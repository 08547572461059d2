#!/usr/bin/env python3
"""mkstore: a small deterministic content store for the sync functional tests.

usage: mkstore.py DIR GEN [--files N] [--max KIB] [--seed S] [--known FILE]

Writes generation GEN of the store in place: files under patches/,
engines/ and definitions/. Generation 0 creates N files of 1..MAX KiB;
each later generation overwrites a few ranges in about half the files
(same size or grown), inserts bytes in some, creates one new definitions
file and deletes the oldest one (a daily rename). With --known, appends
"path sha256" for every file of this generation to FILE (the set of
versions a target may legally show).  Python stdlib only.
"""
import argparse
import hashlib
import os
import random

ap = argparse.ArgumentParser()
ap.add_argument("dir")
ap.add_argument("gen", type=int)
ap.add_argument("--files", type=int, default=24)
ap.add_argument("--max", type=int, default=1024, help="largest file in KiB")
ap.add_argument("--seed", type=int, default=7)
ap.add_argument("--known")
a = ap.parse_args()


def rbytes(rng, n):
    return rng.getrandbits(8 * n).to_bytes(n, "little") if n else b""


def write(path, data):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = path + ".mkstore-tmp"
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


classes = ["patches", "engines", "definitions"]
if a.gen == 0:
    rng = random.Random(a.seed)
    for i in range(a.files):
        cls = classes[i % 3]
        size = rng.randint(1, a.max) * 1024 + rng.randint(0, 1023)
        name = f"defs-{i:03d}-day0000.dat" if cls == "definitions" else f"f{i:03d}.bin"
        write(os.path.join(a.dir, cls, name), rbytes(rng, size))
else:
    rng = random.Random(a.seed * 1000003 + a.gen)
    files = sorted(
        os.path.join(r, f) for r, _, fs in os.walk(a.dir) for f in fs
        if "/.distsync" not in r and not f.endswith(".mkstore-tmp"))
    for p in files:
        if rng.random() < 0.5:
            continue
        data = bytearray(open(p, "rb").read())
        for _ in range(2):
            off = rng.randrange(0, max(1, len(data)))
            n = min(4096, len(data) - off)
            data[off:off + n] = rbytes(rng, n)
        if rng.random() < 0.3:
            off = rng.randrange(0, max(1, len(data)))
            data[off:off] = rbytes(rng, 1024)
        write(p, bytes(data))
    defs = sorted(p for p in files if "/definitions/" in p)
    if defs:
        old = defs[0]
        data = bytearray(open(old, "rb").read())
        off = rng.randrange(0, max(1, len(data)))
        data[off:off + 2048] = rbytes(rng, 2048)
        base = os.path.basename(old).split("-day")[0]
        write(os.path.join(a.dir, "definitions", f"{base}-day{a.gen:04d}.dat"), bytes(data))
        os.unlink(old)

if a.known:
    with open(a.known, "a") as k:
        for r, _, fs in os.walk(a.dir):
            for f in fs:
                p = os.path.join(r, f)
                rel = os.path.relpath(p, a.dir)
                h = hashlib.sha256(open(p, "rb").read()).hexdigest()
                k.write(f"{rel} {h}\n")
