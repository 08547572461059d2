#!/usr/bin/env python3
"""Builds distsync backup archives (tar + zstd) for the restore tests,
hostile ones included, from a good archive's members.

usage: mkbackup.py GOOD.tar.zst OUT.tar.zst CASE

CASE: good (rebuilt as is), dotdot, absolute, symlink, hardlink,
size-lie (a member longer than its MANIFEST size), hash (a changed byte),
bomb (a 256 MiB member of zeros, MANIFEST consistent), outside (a
known_hosts member whose destination the config does not name),
truncated (the compressed archive cut in half), old-schema (the catalog
taken back to schema 4: the tables of migrations 5 to 8 dropped)."""
import hashlib, io, os, sqlite3, subprocess, sys, tarfile, tempfile

good, out, case = sys.argv[1:4]
raw = subprocess.run(["zstd", "-dc", good], check=True, capture_output=True).stdout
members = []
with tarfile.open(fileobj=io.BytesIO(raw)) as t:
    for m in t.getmembers():
        members.append((m.name, t.extractfile(m).read()))
manifest = members[0][1].decode()
files = dict(members[1:])


def man_set(name, data=None, dest=None, size=None):
    """Rewrites NAME's MANIFEST record for new data (and dest, size)."""
    global manifest
    lines = []
    for l in manifest.splitlines():
        f = l.split(" ", 6)
        if f[0] == "file" and f[1] == name:
            if data is not None:
                f[3] = hashlib.sha256(data).hexdigest()
                f[4] = str(len(data))
            if size is not None:
                f[4] = str(size)
            if dest is not None:
                f[6] = dest
            l = " ".join(f)
        lines.append(l)
    manifest = "\n".join(lines) + "\n"


def entry(name, size, **kw):
    ti = tarfile.TarInfo(name)
    ti.size = size
    ti.mode = 0o600
    for k, v in kw.items():
        setattr(ti, k, v)
    return ti


extra = []  # (TarInfo, fileobj or None)
if case == "dotdot":
    extra.append((entry("../evil", 4), io.BytesIO(b"evil")))
elif case == "absolute":
    extra.append((entry("/tmp/distsync-evil", 4), io.BytesIO(b"evil")))
elif case == "symlink":
    del files["config.0"]
    extra.append((entry("config.0", 0, type=tarfile.SYMTYPE, linkname="/etc/passwd"), None))
elif case == "hardlink":
    del files["config.0"]
    extra.append((entry("config.0", 0, type=tarfile.LNKTYPE, linkname="catalog.db"), None))
elif case == "size-lie":
    files["config.0"] = files["config.0"] + b"# grown\n"  # MANIFEST keeps the old size and hash
elif case == "hash":
    c = bytearray(files["config.0"])
    c[0] ^= 1
    files["config.0"] = bytes(c)
elif case == "bomb":
    n = 256 << 20
    h = hashlib.sha256()
    z = bytes(1 << 20)
    for _ in range(n >> 20):
        h.update(z)
    manifest += "file known_hosts.9 known_hosts %s %d 0644 /nonexistent/kh\n" % (h.hexdigest(), n)

    class Zeros(io.RawIOBase):
        def __init__(self, n):
            self.left = n

        def readable(self):
            return True

        def readinto(self, b):
            k = min(len(b), self.left)
            b[:k] = bytes(k)
            self.left -= k
            return k

    extra.append((entry("known_hosts.9", n), io.BufferedReader(Zeros(n))))
elif case == "outside":
    name = [n for n in files if n.startswith("known_hosts.")][0]
    man_set(name, dest=os.environ["OUTSIDE_DEST"])
elif case == "old-schema":
    with tempfile.TemporaryDirectory() as d:
        p = os.path.join(d, "c.db")
        open(p, "wb").write(files["catalog.db"])
        db = sqlite3.connect(p)
        db.execute("PRAGMA journal_mode=DELETE")
        db.execute("DROP TABLE schedule_fire")
        db.execute("DROP TABLE freeze")
        for t in ("gate_client", "gate_outcome", "gate_rollout",  # migration 6
                  "daemon_run_server", "daemon_run"):  # migration 8
            db.execute("DROP TABLE IF EXISTS " + t)
        for t in ("insert", "change", "touch", "delete"):  # migration 7
            db.execute("DROP TRIGGER IF EXISTS file_version_" + t)
        for t in ("file_version", "scan_gen", "schedule_pin"):
            db.execute("DROP TABLE IF EXISTS " + t)
        db.execute("PRAGMA user_version=4")
        db.commit()
        db.execute("VACUUM")
        db.close()
        files["catalog.db"] = open(p, "rb").read()
    man_set("catalog.db", data=files["catalog.db"])
elif case not in ("good", "truncated"):
    sys.exit("unknown case " + case)

buf = io.BytesIO()
with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as t:
    mb = manifest.encode()
    t.addfile(entry("MANIFEST", len(mb)), io.BytesIO(mb))
    for name, data in files.items():
        t.addfile(entry(name, len(data)), io.BytesIO(data))
    for ti, fo in extra:
        t.addfile(ti, fo)
z = subprocess.run(["zstd", "-q", "-c", "-3"], input=buf.getvalue(), check=True,
                   capture_output=True).stdout
if case == "truncated":
    z = z[: len(z) // 2]
open(out, "wb").write(z)
