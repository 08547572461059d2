#!/usr/bin/env bash
# A rebuilt binary: every 4 KiB block has shifted pointers (addresses moved
# by an inserted function), which defeats block matching. A version 3 agent
# or later gets a zpatch (zstd with the old build as prefix, or BSDIFF records): far fewer bytes on the
# wire than the librsync delta a version 2 agent (DISTSYNC_TEST_MAX_PROTOCOL)
# still gets; both converge to the same bytes. The rebuilt file is also
# renamed (libx.so.1.2 -> libx.so.1.3) and shares no 64 KiB chunk with the
# old one: the basis is found by its close name.
set -uo pipefail
. "$(dirname "$0")/lib/sync.bash"
st_init sync_zpatch
export DISTSYNC_TEST_NO_FSYNC=1
store=$tmp/store conf=$tmp/z.conf
mkdir -p "$store/engines" "$tmp/new" "$tmp/old"
gen() { # gen OUT SHIFT: a 6 MiB "binary" whose pointers are moved by SHIFT
  python3 - "$1" "$2" <<'PY'
import random, struct, sys
out, shift = sys.argv[1], int(sys.argv[2])
r = random.Random(7)
code = r.randbytes(6 * 1024 * 1024)
b = bytearray()
if shift:
    b += bytes(r.getrandbits(8) for _ in range(shift))  # the inserted function
for i in range(6 * 1024 * 1024 // 32):
    # 24 bytes of instructions, then an 8-byte absolute address into the file
    b += code[i * 24:i * 24 + 24]
    b += struct.pack("<Q", 0x400000 + ((i * 2654435761) % 6000000) + shift)
open(out, "wb").write(b)
PY
}
gen "$store/engines/libx.so.1.2" 0
st_conf "$conf" "$store" "$tmp/state" new "file://$tmp/new" agent old "file://$tmp/old" agent
st_full_deltas "$conf"
ds() { "$DISTSYNC" -c "$conf" "$@"; }
ds scan >/dev/null 2>&1 || bad "scan v1"
ds sync new >/dev/null 2>&1 || bad "sync new v1"
DISTSYNC_TEST_MAX_PROTOCOL=2 ds sync old >/dev/null 2>&1 || bad "sync old v1"

rm "$store/engines/libx.so.1.2"
gen "$store/engines/libx.so.1.3" 4096
ds scan >/dev/null 2>&1 || bad "scan v2"
ds sync --force new --json >"$tmp/new.json" 2>"$tmp/new.err" || bad "sync new v2: $(head -c 300 "$tmp/new.err")"
DISTSYNC_TEST_MAX_PROTOCOL=2 ds sync --force old --json >"$tmp/old.json" 2>"$tmp/old.err" ||
  bad "sync old v2 (a version 2 agent): $(head -c 300 "$tmp/old.err")"
wire() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["servers"][0]["bytes_wire"])' "$1" 2>/dev/null || echo -1; }
zw=$(wire "$tmp/new.json") rw=$(wire "$tmp/old.json")
echo "  wire: zpatch (v3) $zw bytes, librsync (v2) $rw bytes, file $(stat -c %s "$store/engines/libx.so.1.3")"
[ "$zw" -gt 0 ] || bad "no bytes on the wire for the v3 server"
[ "$rw" -gt 0 ] || bad "no bytes on the wire for the v2 server"
# the zpatch must be well below librsync's delta (both against the old build)
[ "$zw" -gt 0 ] && [ "$((zw * 3))" -lt "$rw" ] || bad "zpatch not 3x below librsync: $zw vs $rw"
ls "$tmp/state/deltas/" | grep -q '\.zp[db]$' || bad "no zpatch in the delta cache"
ls "$tmp/state/deltas/" | grep -q '\.rsd$' || bad "no librsync delta for the version 2 agent"
st_check_converged "$store" "$tmp/new" "server new (v3)"
st_check_converged "$store" "$tmp/old" "server old (v2)"
st_exit "sync_zpatch"
