#!/usr/bin/env python3
"""engine_check: observers and checkers for the engine's functional tests.

usage:
  engine_check.py manifest ROOT [--store DIR] WHAT
      Decodes ROOT/.distsync/manifest (src/PROTOCOL.md section 6: magic,
      version, flags, count, sorted unique safe paths, SHA-256 trailer).
      With --store, the entries must be exactly the store's files (size and
      sha256) and every target file must match its entry.
  engine_check.py watch STOP OUT ROOT...
      Creates OUT.ready, then until the file STOP exists samples every 20 ms which ROOTs hold a
      lease file (.distsync/lease) and its expiry. Writes a JSON summary to
      OUT: samples, max_leases (most roots leased at once), seen (roots
      ever leased), stale (samples where a lease's expiry had passed) and
      expiries (distinct expiry values per root).
  engine_check.py reader KNOWN STOP OUT ROOT...
      Until STOP exists, reads every content file of every ROOT whole, over
      and over; a read whose sha256 is not a known version of its path (a
      "path sha256" line of KNOWN, re-read when a version is not found, so
      a test may add versions as it goes) is bad. Writes "READS BAD" then up to 5
      messages to OUT.
  engine_check.py runs HIST SERVER...
      Reads `history --json` output HIST; prints, for the newest run of each
      SERVER, "server status started_unix ended_unix bytes_wire".
Python stdlib only.
"""
import hashlib
import json
import os
import struct
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import reader  # noqa: E402

MAGIC = b"DSMANIF\n"


def die(msg):
    print("FAIL: " + msg, file=sys.stderr)
    sys.exit(1)


def safe_path(p):
    if not p or p.startswith("/") or p.endswith("/") or "\\" in p or p.startswith(".distsync"):
        return False
    if any(ord(c) < 0x20 or c == "\x7f" for c in p):
        return False
    return all(c not in ("", ".", "..") and len(c.encode()) <= 255 for c in p.split("/"))


def decode_manifest(path, what):
    try:
        data = open(path, "rb").read()
    except OSError as e:
        die(f"{what}: cannot read {path}: {e.strerror}")
    if len(data) < 24 + 32 or data[:8] != MAGIC:
        die(f"{what}: {path}: bad magic or too short ({len(data)} bytes)")
    if hashlib.sha256(data[:-32]).digest() != data[-32:]:
        die(f"{what}: {path}: SHA-256 trailer does not match")
    version, flags, count = struct.unpack(">IIQ", data[8:24])
    if version != 1 or flags != 0:
        die(f"{what}: {path}: version {version} flags {flags}, want 1 and 0")
    off, end, entries, prev = 24, len(data) - 32, {}, None
    for i in range(count):
        if off + 2 > end:
            die(f"{what}: {path}: truncated at entry {i} of {count}")
        (plen,) = struct.unpack(">H", data[off:off + 2])
        off += 2
        if off + plen + 8 + 8 + 32 > end:
            die(f"{what}: {path}: truncated at entry {i} of {count}")
        raw = data[off:off + plen]
        off += plen
        size, mtime = struct.unpack(">Qq", data[off:off + 16])
        off += 16
        sha = data[off:off + 32].hex()
        off += 32
        p = raw.decode("utf-8", "replace")
        if not safe_path(p):
            die(f"{what}: {path}: unsafe path {p!r}")
        if prev is not None and raw <= prev:
            die(f"{what}: {path}: paths not sorted or not unique at {p!r}")
        prev = raw
        entries[p] = (size, sha)
    if off != end:
        die(f"{what}: {path}: {end - off} trailing bytes after {count} entries")
    return entries


def tree(root):
    out = {}
    for r, ds, fs in os.walk(root):
        ds[:] = [d for d in ds if not (r == root and d == ".distsync")]
        for f in fs:
            p = os.path.join(r, f)
            data = open(p, "rb").read()
            out[os.path.relpath(p, root)] = (len(data), hashlib.sha256(data).hexdigest())
    return out


def cmd_manifest(args):
    store = None
    if len(args) >= 2 and args[1] == "--store":
        store = args[2]
        args = args[:1] + args[3:]
    root, what = args
    ent = decode_manifest(os.path.join(root, ".distsync", "manifest"), what)
    if store is None:
        return
    want, have = tree(store), tree(root)
    if ent != want:
        miss = sorted(set(want) - set(ent))[:3]
        extra = sorted(set(ent) - set(want))[:3]
        diff = sorted(p for p in set(ent) & set(want) if ent[p] != want[p])[:3]
        die(f"{what}: manifest differs from the store: missing {miss} extra {extra} wrong {diff}")
    wrong = sorted(p for p in have if ent.get(p) != have[p])[:3]
    if wrong or set(have) != set(ent):
        die(f"{what}: target files differ from the manifest: {wrong or sorted(set(have) ^ set(ent))[:3]}")


def read_lease(root):
    try:
        txt = open(os.path.join(root, ".distsync", "lease")).read()
    except OSError:
        return None
    for line in txt.splitlines():
        if line.startswith("expiry "):
            try:
                return int(line.split()[1])
            except ValueError:
                return None
    return None  # being rewritten: no expiry line yet


def cmd_watch(args):
    stop, out, roots = args[0], args[1], args[2:]
    samples = maxn = 0
    seen, stale, exp = set(), [], {}
    open(out + ".ready", "w").close()
    while not os.path.exists(stop):
        now, n = time.time(), 0
        for root in roots:
            if not os.path.exists(os.path.join(root, ".distsync", "lease")):
                continue
            n += 1
            seen.add(root)
            e = read_lease(root)
            if e is None:
                continue
            exp.setdefault(root, set()).add(e)
            if now > e + 0.5 and len(stale) < 20:
                stale.append(f"{root}: lease expiry {e} passed {now - e:.1f} s ago")
        maxn, samples = max(maxn, n), samples + 1
        time.sleep(0.02)
    json.dump({"samples": samples, "max_leases": maxn, "seen": sorted(seen), "stale": stale,
               "expiries": {r: len(v) for r, v in exp.items()}}, open(out, "w"))


def cmd_reader(args):
    # a loaded 2-core machine: leave the sync some CPU between passes
    reader.run(args[0], args[1], args[2], args[3:], pause=0.05)


def cmd_runs(args):
    runs = json.load(open(args[0]))
    runs = runs if isinstance(runs, list) else runs["runs"]
    for srv in args[1:]:
        mine = [r for r in runs if r["server"] == srv]
        if not mine:
            print(f"{srv} none 0 0 0")
            continue
        r = max(mine, key=lambda r: r["id"])
        end = r["started_at_unix"] + r["duration_s"] if r["duration_s"] is not None else 0
        print(f"{srv} {r['status']} {r['started_at_unix']} {end} {r['bytes_wire']}")


if __name__ == "__main__":
    if len(sys.argv) < 2:
        die(__doc__)
    {"manifest": cmd_manifest, "watch": cmd_watch, "reader": cmd_reader, "runs": cmd_runs}[sys.argv[1]](sys.argv[2:])
