#!/usr/bin/env bash
# distsync agent over a pipe, driven by an independent encoder written from
# src/PROTOCOL.md (python3 below): a real session, garbage, a truncated
# stream, hostile paths, and a full disk (tmpfs, when we may mount one).
set -euo pipefail
: "${DISTSYNC:?}" "${DS_TEST_TMP:=/tmp}"
work="$DS_TEST_TMP/agent_pipe.$$"
rm -rf "$work"
mkdir -p "$work/root" "$work/outside"
mnt=""
cleanup() {
  [ -n "$mnt" ] && umount "$mnt" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
fail() { echo "agent_pipe: FAIL: $*" >&2; exit 1; }

# proto.py encode OUT SCRIPT | proto.py decode IN
cat >"$work/proto.py" <<'EOF'
import hashlib, struct, sys
T = dict(HELLO=1, LEASE=2, MANIFEST_GET=3, LIST=4, HASH=5, FILE_BEGIN=0x10, COPY=0x11,
         LITERAL=0x12, DELTA=0x13, DELTA_END=0x14, FILE_COMMIT=0x15, FILE_ABORT=0x16,
         DELETE=0x20, MANIFEST_COMMIT=0x21, BYE=0x3f)
R = {0x81: "HELLO_OK", 0x82: "LEASE_OK", 0x83: "BUSY", 0x84: "MANIFEST_DATA", 0x85: "LIST_DATA",
     0x86: "HASH_OK", 0x87: "FILE_OK", 0x88: "FILE_ERR", 0x89: "OK", 0x8a: "ERR"}
def s(x): x = x.encode(); return struct.pack(">H", len(x)) + x
out, nid = bytearray(), 0
def frame(t, payload):
    global nid
    nid += 1
    out.extend(struct.pack(">IBBHI", len(payload), T[t], 0, 0, nid) + payload)
def hello(c): frame("HELLO", struct.pack(">IHH", 0x44534150, 1, 1) + s(c) + s("sh"))
def lease(c, op=1, ttl=60): frame("LEASE", bytes([op]) + s(c) + struct.pack(">I", 99) + s("sh-host") + struct.pack(">I", ttl))
def whole(fid, path, data, sha=None):
    frame("FILE_BEGIN", struct.pack(">I", fid) + s(path) + struct.pack(">QIq", len(data), 0o644, -2**63))
    for i in range(0, len(data), 1 << 20):
        chunk = data[i:i + (1 << 20)]
        frame("LITERAL", struct.pack(">IBI", fid, 0, len(chunk)) + chunk)
    frame("FILE_COMMIT", struct.pack(">IQ", fid, len(data)) + (sha or hashlib.sha256(data).digest()))
def path_msg(t, p): frame(t, s(p))
def empty(t): frame(t, b"")
if sys.argv[1] == "encode":
    exec(open(sys.argv[3]).read())
    open(sys.argv[2], "wb").write(out)
else:
    b, o = open(sys.argv[2], "rb").read(), 0
    while o + 12 <= len(b):
        n, t, fl, _, i = struct.unpack(">IBBHI", b[o:o + 12])
        p = b[o + 12:o + 12 + n]
        code = ""
        if t == 0x88: code = struct.unpack(">i", p[4:8])[0]
        if t == 0x8a: code = struct.unpack(">i", p[0:4])[0]
        if t == 0x89: code = struct.unpack(">Q", p[0:8])[0]
        print(i, R.get(t, hex(t)), code, "FATAL" if fl & 2 else "")
        o += 12 + n
EOF
enc() { python3 "$work/proto.py" encode "$1" "$2"; }
dec() { python3 "$work/proto.py" decode "$1"; }
reply() { awk -v id="$2" '$1 == id { print $2, $3; exit }' "$1"; }
tmp_empty() { [ -z "$(ls -A "$1/.distsync/tmp" 2>/dev/null)" ]; }

# 1. a real session: two files, a delete, manifest commit, BYE.
root="$work/root"
printf 'old' >"$root/gone.txt"
cat >"$work/s1.py" <<'EOF'
hello("sh-console"); lease("sh-console")
whole(1, "defs/a.txt", b"alpha\n")
whole(2, "engines/b.bin", bytes(range(256)) * 5000)
path_msg("DELETE", "gone.txt")
empty("MANIFEST_COMMIT"); empty("BYE")
EOF
enc "$work/s1.bin" "$work/s1.py"
"$DISTSYNC" agent --root "$root" <"$work/s1.bin" >"$work/r1.bin" || fail "good session exit $?"
dec "$work/r1.bin" >"$work/r1.txt"
[ "$(reply "$work/r1.txt" 5)" = "FILE_OK " ] || fail "a.txt not committed: $(cat "$work/r1.txt")"
[ "$(printf 'alpha\n')" = "$(cat "$root/defs/a.txt")" ] || fail "a.txt content"
python3 -c 'import sys; sys.exit(open(sys.argv[1],"rb").read() != bytes(range(256))*5000)' \
  "$root/engines/b.bin" || fail "b.bin content"
[ ! -e "$root/gone.txt" ] || fail "gone.txt not deleted"
[ -s "$root/.distsync/manifest" ] || fail "no manifest"
tmp_empty "$root" || fail "tmp not empty after session 1"

# 2. garbage and a truncated stream: exit 1, nothing written.
head -c 4096 /dev/urandom >"$work/garbage.bin"
if "$DISTSYNC" agent --root "$root" <"$work/garbage.bin" >/dev/null 2>&1; then fail "garbage accepted"; fi
head -c 200 "$work/s1.bin" >"$work/trunc.bin"
if "$DISTSYNC" agent --root "$root" <"$work/trunc.bin" >/dev/null 2>&1; then fail "truncated stream accepted"; fi
tmp_empty "$root" || fail "tmp not empty after truncation"

# 3. hostile paths refused one by one; the session goes on; nothing outside.
ln -s "$work/outside" "$root/link"
cat >"$work/s3.py" <<'EOF'
hello("sh-console"); lease("sh-console")
whole(1, "../../outside/x", b"x")
whole(2, "link/x", b"x")
whole(3, "/tmp/x", b"x")
whole(4, ".distsync/manifest", b"x")
whole(5, "ok.txt", b"fine")
whole(6, "bad-hash.txt", b"data", sha=b"\0" * 32)
empty("BYE")
EOF
enc "$work/s3.bin" "$work/s3.py"
"$DISTSYNC" agent --root "$root" <"$work/s3.bin" >"$work/r3.bin" 2>/dev/null || fail "hostile session exit $?"
dec "$work/r3.bin" >"$work/r3.txt"
for id in 5 8 11 14; do
  reply "$work/r3.txt" "$id" | grep -q '^FILE_ERR' || fail "commit $id not refused: $(cat "$work/r3.txt")"
done
[ "$(reply "$work/r3.txt" 17)" = "FILE_OK " ] || fail "ok.txt after hostile ones"
[ "$(reply "$work/r3.txt" 20)" = "FILE_ERR -10013" ] || fail "bad hash not DS_EHASH"
[ ! -e "$root/bad-hash.txt" ] || fail "bad-hash.txt published"
[ -z "$(ls -A "$work/outside")" ] || fail "wrote outside the root"
tmp_empty "$root" || fail "tmp not empty after hostile session"

# 4. full disk: a 256 KiB tmpfs; a 1 MiB file fails with ENOSPC, the old
# version stays, the next file still lands.
mnt="$work/small"
mkdir -p "$mnt"
if mount -t tmpfs -o size=256k tmpfs "$mnt" 2>/dev/null; then
  printf 'old version' >"$mnt/big.bin"
  cat >"$work/s4.py" <<'EOF'
hello("sh-console"); lease("sh-console")
whole(1, "big.bin", b"z" * (1 << 20))
whole(2, "small.txt", b"fits")
empty("BYE")
EOF
  enc "$work/s4.bin" "$work/s4.py"
  "$DISTSYNC" agent --root "$mnt" <"$work/s4.bin" >"$work/r4.bin" 2>/dev/null || fail "full-disk session exit $?"
  dec "$work/r4.bin" >"$work/r4.txt"
  grep -q '^5 FILE_ERR -28' "$work/r4.txt" || fail "no ENOSPC FILE_ERR: $(cat "$work/r4.txt")"
  [ "$(cat "$mnt/big.bin")" = "old version" ] || fail "old version damaged by full disk"
  [ "$(cat "$mnt/small.txt")" = "fits" ] || fail "session did not go on after ENOSPC"
  tmp_empty "$mnt" || fail "tmp not empty after ENOSPC"
else
  echo "agent_pipe: skipping the full-disk case (cannot mount tmpfs)"
fi
echo "agent_pipe: ok"
