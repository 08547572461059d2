#!/usr/bin/env bash
# Verification of files built by server-side copy without reading them back
# (verify = size), against a real smbd: the SMB worker feeds the file's
# SHA-256 with the copied ranges read from the console's copy of the basis
# version (its retain store) plus the literals, and refuses to publish a
# file whose SHA-256 differs.
#  1. A good update passes; the worker reports the check (output and
#     `history --events`) and reads nothing more over SMB for it.
#  2. A corrupted delta (the cached .zpc edited: one COPY record shifted by
#     a byte, its checksum trailer made right again) builds a wrong file of
#     the right size: refused, naming server and path, the old file intact,
#     no tmp left. (Before: published, size only.)
#  3. A damaged copy of the basis on the console (two chunks of the retained
#     version swapped in retain.db: each still passes its own check, the
#     version's SHA-256 does not; the delta, computed before from a sound
#     basis, is cached): it cannot vouch for the copies, so the file is
#     checked by size as before (right here), and the output says so. (A
#     delta computed from a damaged basis fails on the console already:
#     the encoder checks its sources' SHA-256 and the file goes whole.)
#  4. No copy of the basis in the console's retain store (a new file whose
#     basis is another store file, that version dropped from the retain
#     store): checked by size as before, and the run's events say so.
set -uo pipefail
: "${DISTSYNC:?}" "${DS_SRC:?}"
source "$DS_SRC/tests/func/lib/sync.bash"
source "$DS_SRC/tests/func/lib/smbd.bash"
st_init smb_local_hash
smbd_start "$tmp/smbd"
smbd_sync_conf h "$SMBD_PORT" "patches engines definitions"
mkdir -p "$store/engines" "$store/patches"
sha() { sha256sum "$1" | cut -d' ' -f1; }
# change FILE OFFSET: 64 KiB of new bytes there
change() {
  python3 - "$1" "$2" <<'PY'
import os, sys
with open(sys.argv[1], "r+b") as f:
    f.seek(int(sys.argv[2])); f.write(os.urandom(65536))
PY
}
# no_tmp: nothing left under the share's .distsync/tmp
no_tmp() {
  [ -z "$(find "$target/.distsync/tmp" -type f 2>/dev/null)" ] ||
    bad "$1: tmp files left: $(ls "$target/.distsync/tmp")"
}

head -c 8000000 /dev/urandom >"$store/engines/big.bin"
head -c 3000 /dev/urandom >"$store/patches/small.bin"
ds scan >/dev/null 2>&1 && ds sync h >/dev/null 2>"$tmp/err" || bad "first sync: $(cat "$tmp/err")"
st_check_converged "$store" "$target" "first sync"

# 1. a good update: checked from the console's copy, nothing read back
change "$store/engines/big.bin" 4000000
ds scan >/dev/null 2>&1 || bad "scan 1"
ds sync h >"$tmp/out" 2>&1 || bad "a good update failed: $(cat "$tmp/out")"
st_check_converged "$store" "$target" "a good update"
copied=$(smbd_counter h 'copied ([0-9]+) bytes on the server' "$tmp/out")
read=$(smbd_counter h 'read ([0-9]+) bytes in' "$tmp/out")
hashed=$(smbd_counter h '([0-9]+) checked by a SHA-256 computed from the console' "$tmp/out")
local_bytes=$(smbd_counter h '\(([0-9]+) bytes read on the console\)' "$tmp/out")
echo "good update: copied $copied on the server, read $read over SMB, $hashed file(s) checked from the console's copy ($local_bytes bytes read locally)"
[ "$copied" -ge 7000000 ] || bad "no server-side copy ($copied): $(cat "$tmp/out")"
[ "$hashed" = 1 ] || bad "the update was not checked from the console's copy: $(cat "$tmp/out")"
[ "$local_bytes" = "$copied" ] || bad "read $local_bytes bytes on the console for $copied copied"
# the check reads nothing over SMB: the worker's reads are the manifest, the
# lease and the listing (kilobytes), not the 8 MB basis
[ "$read" -ge 0 ] && [ "$read" -lt 200000 ] || bad "read $read bytes over SMB for a checked update"
ds history --events >"$tmp/hist" 2>&1 || bad "history --events: $(cat "$tmp/hist")"
grep -q '1 checked by a SHA-256 computed from the console' "$tmp/hist" ||
  bad "the check is not in the run's events: $(tail -20 "$tmp/hist")"

# 2. a corrupted delta: a COPY record of the cached .zpc shifted by one byte
change "$store/engines/big.bin" 2000000
ds scan --precompute >"$tmp/pc" 2>&1 || bad "scan --precompute: $(cat "$tmp/pc")"
# the delta from the server's version to the new one (<basis>-<new>.zpc):
# the one step 1 used (its basis the version before) is still cached
zpc=$tmp/state/deltas/$(sha "$target/engines/big.bin")-$(sha "$store/engines/big.bin").zpc
[ -f "$zpc" ] || bad "no .zpc delta precomputed for this update: $(ls "$tmp/state/deltas")"
python3 - "$zpc" <<'PY' || bad "could not corrupt the delta"
import struct, subprocess, sys
p = sys.argv[1]
b = bytearray(open(p, "rb").read())
assert b[-32:-24] == b"DSDCSUM2", "no trailer"
dlen = struct.unpack(">Q", b[-24:-16])[0]
d = b[:dlen]
assert d[:4] == b"DSZP"
ver = d[4]
def be(x, o, w):
    return int.from_bytes(x[o:o + w], "big")
if ver == 1:
    pos = 16
else:
    w = d[5]; pos = 6 + w
done = False
while not done:
    kind = d[pos]; pos += 1
    if kind == 0:
        break
    if ver == 1:
        if kind == 1:
            comp = be(d, pos + 20, 4); pos += 24 + comp
        elif kind == 2:
            off, ln = be(d, pos, 8), be(d, pos + 8, 8)
            if ln >= 65536:
                d[pos:pos + 8] = (off + 1).to_bytes(8, "big"); done = True
            pos += 16
        else:
            sys.exit("record kind %d" % kind)
    else:
        if kind == 1:
            a, c = d[pos] >> 4, d[pos] & 15
            r, k = d[pos + 1] >> 4, d[pos + 1] & 15
            pos += 2
            comp = be(d, pos + a + c + r, k)
            pos += a + c + r + k + comp
        elif kind == 2:
            a, c = d[pos] >> 4, d[pos] & 15
            pos += 1
            off, ln = be(d, pos, a), be(d, pos + a, c)
            if ln >= 65536 and a > 0 and off + 1 < 1 << (8 * a):
                d[pos:pos + a] = (off + 1).to_bytes(a, "big"); done = True
            pos += a + c
        else:
            sys.exit("record kind %d" % kind)
if not done:
    sys.exit("no COPY record to shift")
b[:dlen] = d
open(p, "wb").write(b[:dlen])
x = subprocess.run(["xxhsum", "-H3", p], capture_output=True, text=True, check=True).stdout
h = int(x.split("=")[-1].strip(), 16)
b[-16:-8] = h.to_bytes(8, "big")
open(p, "wb").write(b)
PY
old=$(sha "$target/engines/big.bin")
ds sync h >"$tmp/out" 2>&1 && bad "a file built from a corrupted delta was published: $(cat "$tmp/out")"
grep -q 'server h: engines/big.bin: .*SHA-256 mismatch (computed from the console' "$tmp/out" ||
  bad "the failure does not name server, path and the computed SHA-256: $(cat "$tmp/out")"
[ "$(sha "$target/engines/big.bin")" = "$old" ] || bad "the old file did not stay in place"
no_tmp "corrupted delta"
rm -f "$tmp"/state/deltas/*.zpc
ds sync h >"$tmp/out" 2>&1 || bad "the sync after the corrupted delta was dropped: $(cat "$tmp/out")"
st_check_converged "$store" "$target" "after the corrupted delta"

# retained_edit SQL-KIND SHA: the retained version SHA damaged ("swap": its
# first two chunks swapped, each still passing its own check) or dropped
retained_edit() {
  python3 - "$tmp/state/retain/retain.db" "$1" "$2" <<'PY'
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
sha = bytes.fromhex(sys.argv[3])
if sys.argv[2] == "drop":
    assert db.execute("DELETE FROM version WHERE sha256 = ?", (sha,)).rowcount == 1
else:
    (ch,) = db.execute("SELECT chunks FROM version WHERE sha256 = ?", (sha,)).fetchone()
    recs = [ch[i:i + 20] for i in range(0, len(ch), 20)]
    assert len(recs) >= 2 and recs[0][16:] != recs[1][16:], "no two chunks to swap"
    recs[0], recs[1] = recs[1], recs[0]
    db.execute("UPDATE version SET chunks = ? WHERE sha256 = ?", (b"".join(recs), sha))
db.commit()
PY
}
# next_version OFFSET KIND: the store's big.bin changed at OFFSET, its delta
# computed (from a sound basis), then the retained basis edited
# (retained_edit KIND): the sync uses the cached delta
next_version() {
  local basis
  basis=$(sha "$store/engines/big.bin")
  change "$store/engines/big.bin" "$1"
  ds scan --precompute >"$tmp/pc" 2>&1 || bad "scan --precompute: $(cat "$tmp/pc")"
  retained_edit "$2" "$basis" || bad "could not edit the retained basis"
}

# 3. the console's copy of the basis damaged (a sound delta cached): it
# cannot vouch for the copies, so the file is checked by size, and said so
next_version 6000000 swap
ds sync h >"$tmp/out" 2>&1 || bad "the sync with a damaged retained basis failed: $(cat "$tmp/out")"
st_check_converged "$store" "$target" "with a damaged retained basis"
grep -q "damaged copy of basis 'engines/big.bin' .* on the console" "$tmp/out" ||
  bad "no word of the damaged copy: $(cat "$tmp/out")"
grep -q ' 0 checked by a SHA-256 .* 1 by size only' "$tmp/out" ||
  bad "the counters do not say by size only: $(cat "$tmp/out")"

# 4. no copy of the basis on the console's retain store (a new file whose
# basis is another store file, that file's version dropped from the retain
# store): by size, and the run's events say so
retained_edit drop "$(sha "$store/engines/big.bin")" || bad "could not drop the retained version"
cp "$store/engines/big.bin" "$store/engines/big2.bin"
change "$store/engines/big2.bin" 1000000
ds scan >/dev/null 2>&1 || bad "scan 4"
ds sync h >"$tmp/out" 2>&1 || bad "the sync without a retained basis failed: $(cat "$tmp/out")"
st_check_converged "$store" "$target" "without a retained basis"
grep -q "engines/big2.bin': no copy of basis 'engines/big.bin' .* on the console" "$tmp/out" ||
  bad "no word of the missing copy: $(cat "$tmp/out")"
grep -q ' 0 checked by a SHA-256 .* 1 by size only' "$tmp/out" ||
  bad "the counters do not say by size only: $(cat "$tmp/out")"
ds history --events >"$tmp/hist" 2>&1
grep -q "no copy of basis 'engines/big.bin'" "$tmp/hist" || bad "the missing copy is not in the run's events"
st_exit smb_local_hash
