#!/usr/bin/env bash
# A large file edited in a few places: the delta's copies come from the
# catalog's chunk lists of both versions (the new one's from the scan, the
# old one's from the retain store), so neither version is chunked again
# (README "Delta format"). The delta is as small as the edits, the server
# gets the new version, and a second server takes the cached delta; scan
# --precompute makes its deltas the same way. A
# store file edited again after its scan fails as changed since the scan,
# without being sent whole (which its check at the far end would refuse).
set -uo pipefail
. "$(dirname "$0")/lib/sync.bash"
. "$(dirname "$0")/lib/engine.bash"
st_init sync_delta_known
store=$tmp/store conf=$tmp/k.conf
mkdir -p "$store/engines" "$store/patches" "$store/definitions"
echo p >"$store/patches/p.txt"
echo d >"$store/definitions/d.txt"
python3 -c 'import random,sys; open(sys.argv[1], "wb").write(random.Random(5).randbytes(20 << 20))' "$store/engines/big.bin"
en_head "$conf" "$store" "$tmp/state"
for s in a b c; do en_server "$conf" $s "$tmp/$s" agent; done
ds() { "$DISTSYNC" -c "$conf" "$@"; }
edit() { # edit SEED N [BYTES_SEED]: N 4 KiB writes at offsets drawn from SEED
  python3 - "$store/engines/big.bin" "$1" "$2" "${3:-$1}" <<'PY'
import os, random, sys
r, d = random.Random(int(sys.argv[2])), random.Random(int(sys.argv[4]) + 1000)
size = os.path.getsize(sys.argv[1])
with open(sys.argv[1], "r+b") as f:
    for _ in range(int(sys.argv[3])):
        f.seek(r.randrange(0, size - 4096))
        f.write(d.randbytes(4096))
PY
}
wire() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["servers"][0]["bytes_wire"])' "$1"; }
computed() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["deltas"]["computed"])' "$1"; }
ds sync a b c >/dev/null 2>&1 || bad "first sync"
edit 1 32
ds scan >/dev/null 2>&1 || bad "scan"
ds -v sync --no-scan a --json >"$tmp/a.json" 2>"$tmp/a.err" || bad "sync a: $(tail -3 "$tmp/a.err")"
grep -q "copies from the catalog's chunk lists" "$tmp/a.err" ||
  bad "the delta was not made from the chunk lists: $(grep -i delta "$tmp/a.err" | head -3)"
w=$(wire "$tmp/a.json")
echo "  20 MiB file, 32 edits of 4 KiB (128 KiB): $w bytes on the wire"
[ "$w" -lt $((400 << 10)) ] || bad "sync a sent $w bytes for 128 KiB of edits"
st_check_converged "$store" "$tmp/a" "server a"
ds sync --no-scan b --json >"$tmp/b.json" 2>"$tmp/b.err" || bad "sync b: $(tail -3 "$tmp/b.err")"
[ "$(computed "$tmp/b.json")" = 0 ] || bad "server b computed the delta again: $(head -c 300 "$tmp/b.json")"
st_check_converged "$store" "$tmp/b" "server b (cached delta)"
# scan --precompute (the daemon's) makes its full deltas the same way.
edit 4 16
ds -v scan --precompute >/dev/null 2>"$tmp/pre.err" || bad "scan --precompute: $(tail -2 "$tmp/pre.err")"
grep -q "copies from the catalog's chunk lists" "$tmp/pre.err" ||
  bad "scan --precompute chunked both versions: $(grep -i "delta\|precompute" "$tmp/pre.err" | head -3)"
ds sync --no-scan a --json >"$tmp/a2.json" 2>"$tmp/a2.err" || bad "sync a after precompute"
[ "$(computed "$tmp/a2.json")" = 0 ] || bad "sync a computed a precomputed delta again"
st_check_converged "$store" "$tmp/a" "server a (precomputed delta)"
# Edited again after its scan, where the delta reads the new version (a
# place edit 2 changed): refused as changed, not sent whole, c intact.
edit 2 32
ds scan >/dev/null 2>&1 || bad "scan 2"
old=$(sha256sum <"$tmp/c/engines/big.bin" | cut -d' ' -f1)
edit 2 1 3
ds sync --no-scan c --json >"$tmp/c.json" 2>"$tmp/c.out" && bad "sync c succeeded with a store file changed since its scan"
grep -q "changed since the last scan" "$tmp/c.out" "$tmp/c.json" ||
  bad "sync c: no 'changed since the last scan': $(tail -2 "$tmp/c.out")"
w=$(wire "$tmp/c.json")
echo "  edited after its scan: refused as changed, $w bytes on the wire"
[ "$w" -lt $((1 << 20)) ] || bad "the changed file was sent whole anyway: $w bytes"
[ "$(sha256sum <"$tmp/c/engines/big.bin" | cut -d' ' -f1)" = "$old" ] || bad "server c's file changed"
st_exit "a large file's delta from the catalog's chunk lists"
