# A reader that hammers target files while syncs run (tests/func: sync_reader,
# smb_replace, ssh_sftp_auto, and engine_check.py's "reader"): whole-file
# reads, over and over, of every file under the roots (a root's .distsync
# skipped) until the STOP file exists. Each read's sha256 must be one of the
# versions ever generated for that path (KNOWN, "path sha256" lines, from
# mkstore.py --known; re-read when a version is not found, so a test may add
# versions as it goes): a mixed or short read counts as bad. A path that is
# absent is skipped. Writes "READS BAD" and up to 5 messages to OUT.
# usage: reader.py KNOWN STOP OUT ROOT...
import hashlib
import os
import sys
import time


def load_known(path):
    return set(tuple(l.split()) for l in open(path) if l.strip())


def read_pass(roots, known, ok, msgs):
    """One pass over every root; returns (reads, bad, ok)."""
    reads = bad = 0
    for root in roots:
        for r, ds, fs in os.walk(root):
            ds[:] = [d for d in ds if not (r == root and d == ".distsync")]
            for f in fs:
                p = os.path.join(r, f)
                try:
                    with open(p, "rb") as fh:
                        data = fh.read()
                except FileNotFoundError:
                    continue
                reads += 1
                rel = os.path.relpath(p, root)
                h = hashlib.sha256(data).hexdigest()
                if (rel, h) not in ok:
                    ok = load_known(known)
                if (rel, h) not in ok:
                    bad += 1
                    if len(msgs) < 5:
                        msgs.append(f"{root}: {rel}: read {len(data)} bytes, sha256 {h} is no known version")
    return reads, bad, ok


def run(known, stop, out, roots, pause=0.0):
    """Reads until STOP exists, sleeping PAUSE seconds between passes."""
    ok, reads, bad, msgs = load_known(known), 0, 0, []
    while not os.path.exists(stop):
        n, b, ok = read_pass(roots, known, ok, msgs)
        reads, bad = reads + n, bad + b
        if pause:
            time.sleep(pause)
    with open(out, "w") as o:
        o.write(f"{reads} {bad}\n" + "\n".join(msgs) + "\n")


if __name__ == "__main__":
    run(sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:])
