#!/usr/bin/env bash
# A delta whose basis only the retain store holds (the usual case: a file
# rebuilt in place, its old version gone from the store) is computed on a
# worker thread like one with a store basis, not inline on the engine's
# loop thread. Before, the loop stopped for the whole computation: the
# server's timeout ran out meanwhile ("no response from the target for 2 s
# (during FILE_COMMIT)") and the sync failed; a level 22 run of a real
# update failed so at the default 120 s (README "Delta format").
# A 24 MiB file rebuilt in place (a byte changed every 4 KiB) at level 19
# takes several seconds to delta; timeout = 2s; the sync must succeed,
# compute the delta once and converge.
set -uo pipefail
. "$(dirname "$0")/lib/sync.bash"
. "$(dirname "$0")/lib/engine.bash"
st_init sync_prefetch_retained
store=$tmp/store target=$tmp/t conf=$tmp/r.conf
mkdir -p "$store/engines" "$store/patches" "$store/definitions"
echo p >"$store/patches/p.txt"
echo d >"$store/definitions/d.txt"
gen() { # gen REBUILT: 24 MiB pseudo-random; REBUILT=1 changes a byte every 4 KiB
  python3 - "$store/engines/big.bin" "$1" <<'PY'
import random, sys
b = bytearray(random.Random(3).randbytes(24 << 20))
if sys.argv[2] == "1":
    b[100::4096] = bytes(x ^ 0xA5 for x in b[100::4096])
open(sys.argv[1], "wb").write(b)
PY
}
gen 0
en_head "$conf" "$store" "$tmp/state" "timeout = 2s"
en_server "$conf" t "$target" local
ds() { "$DISTSYNC" -c "$conf" "$@"; }
ds scan >/dev/null 2>&1 && ds sync t >/dev/null 2>&1 || bad "first sync"
gen 1
ds scan >/dev/null 2>&1 || bad "scan v2"
t0=$(now_ms)
ds sync t --json >"$tmp/s.json" 2>"$tmp/s.err" || bad "sync with the basis in the retain store only: $(head -c 400 "$tmp/s.err")"
echo "  sync of a 24 MiB rebuild (basis retained only), timeout 2 s: $(($(now_ms) - t0)) ms;" \
  "$(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(d["deltas"], d["servers"][0]["bytes_wire"], "bytes on the wire")' "$tmp/s.json" 2>/dev/null)"
python3 -c 'import json,sys; sys.exit(0 if json.load(open(sys.argv[1]))["deltas"]["computed"] == 1 else 1)' "$tmp/s.json" 2>/dev/null ||
  bad "want exactly one delta computed: $(head -c 300 "$tmp/s.json")"
en_converged "$store" "$target" "after the rebuild"
st_exit "a retained basis's delta computed on a worker"
