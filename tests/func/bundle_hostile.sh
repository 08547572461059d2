#!/usr/bin/env bash
# Hostile bundles, crafted from a real one (Python's tarfile and the zstd
# CLI), given to `distsync agent --import`: each is refused with exit 1 and
# a message naming the bundle and the entry, and the server is left exactly
# as it was (every file's bytes, inode and mtime, and its manifest), with
# nothing written outside its root. Cases: an entry named with '..', an
# absolute name, a symbolic link entry, a hard link entry, a data entry
# shorter than the index declares, data whose SHA-256 is not the index's, a
# tar header claiming more bytes than follow, a truncated archive, a
# decompression bomb (200 MB of zeros, consistent header, index and
# manifest: refused by the expansion ratio cap), an entry after the last
# data entry, an uncompressed tar.
set -uo pipefail
. "$(dirname "$0")/lib/sync.bash"
. "$(dirname "$0")/lib/bundle.bash"
st_init bundle_hostile
export DISTSYNC_TEST_NO_FSYNC=1
store=$tmp/store
bundle_conf "$tmp/c.conf" "$store" "$tmp/state"
ds() { "$DISTSYNC" -c "$tmp/c.conf" "$@"; }
command -v zstd >/dev/null || { echo "SKIP: no zstd CLI"; exit 77; }

bundle_store "$store" 0
ds sync off >/dev/null 2>"$tmp/err" || bad "sync off: $(head -c 300 "$tmp/err")"
bundle_store "$store" 1
ds export off --out "$tmp/good.dsb" >/dev/null 2>"$tmp/err" || bad "export: $(head -c 300 "$tmp/err")"
mkdir -p "$tmp/h"

python3 - "$tmp/good.dsb" "$tmp/h" "$tmp" <<'PY' || bad "crafting the hostile bundles"
import hashlib, io, os, struct, subprocess, sys, tarfile
good, out, tmp = sys.argv[1:]
raw = subprocess.run(["zstd", "-dc", good], capture_output=True, check=True).stdout
src = tarfile.open(fileobj=io.BytesIO(raw))
ents = [(m, src.extractfile(m).read()) for m in src.getmembers()]
names = [m.name for m, _ in ents]
first_data = names.index(next(n for n in names if n.startswith("data/")))

def info(name, data, **kw):
    t = tarfile.TarInfo(name)
    t.size = len(data)
    t.mode = 0o644
    for k, v in kw.items():
        setattr(t, k, v)
    return t

def write(case, entries, compress=True):
    b = io.BytesIO()
    with tarfile.open(fileobj=b, mode="w", format=tarfile.PAX_FORMAT) as t:
        for ti, data in entries:
            t.addfile(ti, io.BytesIO(data) if ti.isreg() else None)
    data = b.getvalue()
    if compress:
        data = subprocess.run(["zstd", "-q", "-c"], input=data, capture_output=True, check=True).stdout
    open(os.path.join(out, case + ".dsb"), "wb").write(data)

def replace(i, ti, data):
    e = [(info(m.name, d), d) for m, d in ents]
    e[i] = (ti, data)
    return e

d0 = ents[first_data][1]
dn = names[first_data]
write("dotdot", replace(first_data, info("../evil", d0), d0))
write("absolute", replace(first_data, info("/ds-bundle-hostile-evil", d0), d0))
write("symlink", replace(first_data, info(dn, b"", type=tarfile.SYMTYPE, linkname="/etc/passwd"), b""))
write("hardlink", replace(first_data, info(dn, b"", type=tarfile.LNKTYPE, linkname="index"), b""))
write("short", replace(first_data, info(dn, d0[:-10]), d0[:-10]))
flip = bytes([d0[0] ^ 1]) + d0[1:]
write("sha", replace(first_data, info(dn, flip), flip))
write("extra", [(info(m.name, d), d) for m, d in ents] + [(info("data/99999999", b"x"), b"x")])
write("plain", [(info(m.name, d), d) for m, d in ents], compress=False)

# A tar header that claims more bytes than the archive holds.
b = io.BytesIO()
with tarfile.open(fileobj=b, mode="w", format=tarfile.USTAR_FORMAT) as t:
    for m, d in ents[:first_data + 1]:
        t.addfile(info(m.name, d), io.BytesIO(d))
tar = bytearray(b.getvalue())
hdr = tar.rfind(dn.encode(), 0, len(tar) - len(d0))  # the last header
size_field = hdr + 124
tar[size_field:size_field + 12] = b"%011o\0" % (len(d0) + 1000000)
chk = hdr + 148
tar[chk:chk + 8] = b" " * 8
tar[chk:chk + 8] = b"%06o\0 " % sum(tar[hdr:hdr + 512])
tar = bytes(tar[:hdr + 512 + len(d0)])  # the data, then nothing
open(os.path.join(out, "sizelie.dsb"), "wb").write(
    subprocess.run(["zstd", "-q", "-c"], input=tar, capture_output=True, check=True).stdout)
# A header with the right size whose data stops half way.
tar = b.getvalue()[:hdr + 512 + len(d0) // 2]
open(os.path.join(out, "shortdata.dsb"), "wb").write(
    subprocess.run(["zstd", "-q", "-c"], input=tar, capture_output=True, check=True).stdout)

# Truncated: the first 60% of the real bundle.
g = open(good, "rb").read()
open(os.path.join(out, "truncated.dsb"), "wb").write(g[:len(g) * 6 // 10])

# A decompression bomb: 200 MB of zeros as one more file, with a header,
# index and manifest that agree, so only the expansion caps stop it.
N = 200 << 20
zsha = hashlib.sha256()
chunk = bytes(1 << 20)
for _ in range(N >> 20):
    zsha.update(chunk)
zsha = zsha.digest()
man = [d for m, d in ents if m.name == "manifest"][0]
count = struct.unpack(">Q", man[16:24])[0]
p, entries = 24, []
for _ in range(count):
    (n,) = struct.unpack(">H", man[p:p + 2])
    entries.append(man[p:p + 2 + n + 48])
    p += 2 + n + 48
newent = struct.pack(">H", len(b"engines/zero.img")) + b"engines/zero.img" + struct.pack(">Qq", N, 0) + zsha
entries.append(newent)
entries.sort(key=lambda e: e[2:2 + struct.unpack(">H", e[:2])[0]])
body = man[:16] + struct.pack(">Q", count + 1) + b"".join(entries)
man2 = body + hashlib.sha256(body).digest()
index = [d for m, d in ents if m.name == "index"][0]
nitems = index.count(b"\n")
index2 = index + ("put\tengines/zero.img\t%d\t644\t0\t%s\tlit\t-\t-\t%d\t%s\n" % (N, zsha.hex(), N, zsha.hex())).encode()
hdr = [d for m, d in ents if m.name == "distsync-bundle"][0].decode().splitlines()
data_bytes = int([l for l in hdr if l.startswith("data ")][0].split()[1]) + N
hdr2 = []
for l in hdr:
    k = l.split()[0]
    if k == "items": l = "items %d" % (nitems + 1)
    if k == "data": l = "data %d" % data_bytes
    if k == "result": l = "result " + hashlib.sha256(man2).hexdigest()
    hdr2.append(l)
hdr2 = ("\n".join(hdr2) + "\n").encode()

class Zeros(io.RawIOBase):
    def __init__(self, n): self.left = n
    def readable(self): return True
    def readinto(self, b):
        k = min(len(b), self.left); b[:k] = bytes(k); self.left -= k; return k

with open(os.path.join(out, "bomb.dsb"), "wb") as f:
    z = subprocess.Popen(["zstd", "-q", "-c"], stdin=subprocess.PIPE, stdout=f)
    with tarfile.open(fileobj=z.stdin, mode="w|", format=tarfile.PAX_FORMAT) as t:
        for m, d in ents:
            d = {"distsync-bundle": hdr2, "manifest": man2, "index": index2}.get(m.name, d)
            t.addfile(info(m.name, d), io.BytesIO(d))
        t.addfile(info("data/%08d" % nitems, b"", size=N), io.BufferedReader(Zeros(N)))
    z.stdin.close()
    z.wait()
PY

# case EXPECTED-MESSAGE-PART: imports $tmp/h/CASE.dsb and checks the refusal.
check() {
  local case=$1 want=$2 rc=0
  tree_sig "$tmp/off" >"$tmp/sig1"
  "$DISTSYNC" agent --root "$tmp/off" --import "$tmp/h/$case.dsb" >"$tmp/out" 2>"$tmp/err" || rc=$?
  [ "$rc" = 1 ] || bad "$case: import exited $rc (want 1): $(head -c 300 "$tmp/err")"
  grep -qF "bundle $tmp/h/$case.dsb: " "$tmp/err" || bad "$case: the message does not name the bundle: $(head -c 300 "$tmp/err")"
  grep -qF -- "$want" "$tmp/err" || bad "$case: want '$want' in: $(head -c 400 "$tmp/err")"
  tree_sig "$tmp/off" >"$tmp/sig2"
  cmp -s "$tmp/sig1" "$tmp/sig2" || bad "$case: the refused bundle changed the server: $(diff "$tmp/sig1" "$tmp/sig2" | head -3)"
  [ ! -e "$tmp/evil" ] && [ ! -e /ds-bundle-hostile-evil ] || bad "$case: a file was written outside the root"
}
check dotdot "entry ../evil: a '..' component"
check absolute "entry /ds-bundle-hostile-evil: an absolute name"
check symlink "entry data/00000000: a symbolic link entry"
check hardlink "entry data/00000000: a hard link entry"
check short "entry data/00000000: size"
check sha "entry data/00000000: its SHA-256 is not the one the index declares"
check sizelie "entry data/00000000: size $(( $(tar --zstd -xOf "$tmp/good.dsb" data/00000000 | wc -c) + 1000000 )) is not the size the index declares"
check shortdata "entry data/00000000: truncated"
check truncated "truncated"
check bomb "expands over 1000 times its compressed size"
check extra "entry data/99999999: unexpected (want the end of the archive)"
check plain "not zstd-compressed"

# The genuine bundle still applies.
"$DISTSYNC" agent --root "$tmp/off" --import "$tmp/good.dsb" >/dev/null 2>"$tmp/err" || bad "the real bundle: $(head -c 300 "$tmp/err")"
st_check_converged "$store" "$tmp/off" "after the real bundle"
st_exit bundle_hostile
