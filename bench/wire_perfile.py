#!/usr/bin/env python3
"""bench/wire_perfile.py OLD NEW WORK: per-file delta tools on one update.

A sender that knows both versions and handles one file at a time. The plan:
walk NEW (regular files only); a file whose content is already in OLD (same
path or another path) or was already counted in NEW costs nothing; a file
with a same-path OLD version is "changed"; the rest is "added". Then, for
each tool, every changed file goes through the tool against its OLD version
and every added file is compressed with `zstd -19` (no basis):

  zstd -19              every changed and added file whole (no basis)
  bsdiff                bsdiff OLD NEW PATCH
  xdelta3               xdelta3 -9 -S djw -D -R -e -s OLD NEW PATCH
  zstd --patch-from     zstd -19 --long=27 --patch-from=OLD NEW

Prints tab-separated lines to stdout:
  plan  CHANGED_FILES  ADDED_FILES  NEW_CONTENT_BYTES  SKIPPED_FILES
  TOOL  BYTES  CPU_SECONDS  PEAK_RSS_KIB
CPU is user+sys of the tool processes (os.wait4), the peak RSS the largest
of one tool process. Output files go to WORK and are removed.
"""
import hashlib
import os
import subprocess
import sys


def files(root):
    for r, ds, fs in os.walk(root):
        ds.sort()
        for f in sorted(fs):
            p = os.path.join(r, f)
            if os.path.isfile(p) and not os.path.islink(p):
                yield os.path.relpath(p, root)


def digest(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for b in iter(lambda: f.read(1 << 20), b""):
            h.update(b)
    return h.digest()


def plan(old, new):
    known = {digest(os.path.join(old, rel)) for rel in files(old)}
    changed, added, skipped, size = [], [], 0, 0
    for rel in files(new):
        h = digest(os.path.join(new, rel))
        if h in known:
            skipped += 1
            continue
        known.add(h)
        size += os.path.getsize(os.path.join(new, rel))
        (changed if os.path.isfile(os.path.join(old, rel)) else added).append(rel)
    return changed, added, skipped, size


def run(cmd, out):
    """Runs cmd; returns (size of out, cpu seconds, maxrss KiB)."""
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    err = p.stderr.read()
    _, status, ru = os.wait4(p.pid, 0)
    p.returncode = os.waitstatus_to_exitcode(status)
    if p.returncode != 0:
        sys.exit("wire_perfile: %s failed (%d): %s" % (" ".join(cmd), p.returncode,
                                                       err.decode(errors="replace").strip()))
    size = os.path.getsize(out)
    os.unlink(out)
    return size, ru.ru_utime + ru.ru_stime, ru.ru_maxrss


def long_bits(*paths):
    n = max(os.path.getsize(p) for p in paths)
    return max(27, min(31, (n * 2).bit_length()))


TOOLS = {
    "bsdiff": lambda o, n, out: ["bsdiff", o, n, out],
    "xdelta3 -9 -S djw": lambda o, n, out: ["xdelta3", "-9", "-S", "djw", "-D", "-R", "-e", "-f", "-s", o,
                                            n, out],
    "zstd -19 --long=27 --patch-from": lambda o, n, out: ["zstd", "-q", "-f", "-19",
                                                          "--long=%d" % long_bits(o, n),
                                                          "--patch-from=" + o, n, "-o", out],
}


def main():
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    old, new, work = sys.argv[1:]
    out = os.path.join(work, "perfile.out")
    changed, added, skipped, size = plan(old, new)
    print("plan\t%d\t%d\t%d\t%d" % (len(changed), len(added), size, skipped), flush=True)
    whole = {}
    for rel in changed + added:
        whole[rel] = run(["zstd", "-q", "-f", "-19", os.path.join(new, rel), "-o", out], out)
    print("zstd -19, no basis\t%d\t%.3f\t%d" % (sum(w[0] for w in whole.values()), sum(w[1] for w in whole.values()),
                                      max([w[2] for w in whole.values()] or [0])), flush=True)
    base = [whole[rel] for rel in added]
    for name, cmd in TOOLS.items():
        res = base + [run(cmd(os.path.join(old, rel), os.path.join(new, rel), out), out) for rel in changed]
        print("%s\t%d\t%.3f\t%d" % (name, sum(r[0] for r in res), sum(r[1] for r in res),
                                    max([r[2] for r in res] or [0])), flush=True)


if __name__ == "__main__":
    main()
