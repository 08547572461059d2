#!/usr/bin/env bash
# A corrupt delta-cache entry costs a recomputation, never a failed file.
# Three servers hold v1 of a file; the store moves to v2 (a few KiB
# changed); syncing server a computes the v1->v2 delta into
# <state>/deltas. A byte in the middle of that cached delta is flipped on
# disk. Syncing server b must still succeed with a delta, warn once about
# the dropped entry (stderr and a history event), and server c after it
# must reuse the recomputed entry without a new warning.
#
# KEEP_V1=1 (engine_prefetch_corrupt.sh): a copy of v1 stays in the store
# (under engines/), so the engine computes the v1->v2 delta ahead on a
# worker thread (delta prefetch): the corrupt entry is found there, and the
# run must still report it the same way.
set -uo pipefail
. "$(dirname "$0")/lib/sync.bash"
name=${TEST_NAME:-sync_delta_cache_corrupt}
st_init "$name"
export DISTSYNC_TEST_NO_FSYNC=1
store=$tmp/store conf=$tmp/d.conf
mkdir -p "$store/patches" "$tmp/a" "$tmp/b" "$tmp/c"
head -c 3000000 /dev/urandom >"$store/patches/big.bin"
head -c 1000 /dev/urandom >"$store/patches/small.txt"
if [ "${KEEP_V1:-0}" = 1 ]; then
  mkdir -p "$store/engines"
  cp "$store/patches/big.bin" "$store/engines/big-v1.bin" # v1 stays in the store
fi
st_conf "$conf" "$store" "$tmp/state" a "file://$tmp/a" agent b "file://$tmp/b" agent \
  c "file://$tmp/c" local
ds() { "$DISTSYNC" -c "$conf" "$@"; }

ds scan >/dev/null 2>&1 || bad "scan v1"
ds sync a b c >/dev/null 2>&1 || bad "sync v1"
python3 - "$store/patches/big.bin" <<'PY'
import sys
p = sys.argv[1]
b = bytearray(open(p, "rb").read())
for off in (100000, 1500000, 2900000):
    b[off:off + 2048] = bytes(2048)
open(p, "wb").write(b)
PY
ds scan >/dev/null 2>&1 || bad "scan v2"
ds sync a >/dev/null 2>"$tmp/err.a" || bad "sync a (v2): $(head -c 300 "$tmp/err.a")"
entry=$(find "$tmp/state/deltas" -name '*.rsd' -o -name '*.zpd' -o -name '*.zpb' -o -name '*.zpq' | head -1)
if [ -z "$entry" ]; then
  bad "no cached delta after syncing a: the test did not exercise the cache"
else
  size=$(stat -c %s "$entry")
  python3 - "$entry" "$((size / 2))" <<'PY'
import sys
with open(sys.argv[1], "r+b") as f:
    f.seek(int(sys.argv[2]))
    x = f.read(1)
    f.seek(int(sys.argv[2]))
    f.write(bytes([x[0] ^ 0x20]))
PY
fi

rc=0
ds sync b --json >"$tmp/out.b" 2>"$tmp/err.b" || rc=$?
echo "  sync b after the corruption: exit $rc; $(grep -m1 'delta cache' "$tmp/err.b" | head -c 250)"
[ "$rc" = 0 ] || bad "sync b failed (exit $rc) on a corrupt cache entry: $(head -c 400 "$tmp/err.b")"
[ "$(grep -c 'delta cache: entry .* is invalid (checksum mismatch)' "$tmp/err.b")" = 1 ] ||
  bad "no single warning naming the dropped entry: $(head -c 400 "$tmp/err.b")"
lit=$(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(d["servers"][0]["bytes_literal"])' "$tmp/out.b" 2>/dev/null || echo -1)
[ "$lit" -ge 0 ] && [ "$lit" -lt 1000000 ] || bad "server b was not sent a delta (literal bytes: $lit)"
ds history --server b --events >"$tmp/hist.b" 2>&1
grep -q "cache dropped" "$tmp/hist.b" || bad "no event recorded for the dropped entry: $(tail -5 "$tmp/hist.b")"
st_check_converged "$store" "$tmp/b" "server b"

rc=0
ds sync c >/dev/null 2>"$tmp/err.c" || rc=$?
[ "$rc" = 0 ] || bad "sync c failed (exit $rc): $(head -c 300 "$tmp/err.c")"
grep -q "delta cache" "$tmp/err.c" && bad "the dropped entry was reported again: $(grep 'delta cache' "$tmp/err.c")"
st_check_converged "$store" "$tmp/c" "server c"
st_exit "$name"
