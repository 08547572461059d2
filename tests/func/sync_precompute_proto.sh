#!/usr/bin/env bash
# Idle precompute serves older agents (issue 9): each run records in the
# catalog the protocol version the server's agent spoke, and
# `scan --precompute` builds each server's deltas in the format that agent
# applies, so its next sync computes none.
#  - three agent servers: a current one (protocol 5: zpatch stream version
#    2), one limited to protocol 4 (zpatch version 1) and one to protocol 2
#    (librsync deltas); DISTSYNC_TEST_MAX_PROTOCOL in their agent command;
#  - two 2 MiB "binaries" rebuilt (a byte changed every 4 KiB);
#  - scan --precompute --json: 3 servers, 6 pairs (2 files x 3 formats),
#    6 computed;
#  - sync --all --no-scan --json: "deltas" computed 0, every target
#    converges.
# Before the protocol was recorded, precompute built the newest format only
# (2 pairs) and the sync computed the older agents' 4 deltas itself.
set -uo pipefail
. "$(dirname "$0")/lib/sync.bash"
. "$(dirname "$0")/lib/engine.bash"
st_init sync_precompute_proto
export DISTSYNC_TEST_NO_FSYNC=1
store=$tmp/store
mkdir -p "$store/engines" "$store/patches" "$store/definitions"
echo p >"$store/patches/p.txt"
echo d >"$store/definitions/d.txt"
gen() { # gen OUT SEED REBUILT: 2 MiB pseudo-random; REBUILT=1 changes a byte every 4 KiB
  python3 - "$1" "$2" "$3" <<'PY'
import random, sys
b = bytearray(random.Random(int(sys.argv[2])).randbytes(2 << 20))
if sys.argv[3] == "1":
    b[100::4096] = bytes(x ^ 0xA5 for x in b[100::4096])
open(sys.argv[1], "wb").write(b)
PY
}
gen "$store/engines/a.bin" 1 0
gen "$store/engines/b.bin" 2 0
en_head "$tmp/p.conf" "$store" "$tmp/state"
for v in 5 4 2; do
  printf '#!/bin/sh\nDISTSYNC_TEST_MAX_PROTOCOL=%s exec "%s" "$@"\n' "$v" "$DISTSYNC" >"$tmp/agent$v"
  chmod +x "$tmp/agent$v"
  en_server "$tmp/p.conf" "v$v" "$tmp/t/v$v" agent "agent = $tmp/agent$v"
done
"$DISTSYNC" -c "$tmp/p.conf" scan >/dev/null 2>&1 || bad "scan v1"
"$DISTSYNC" -c "$tmp/p.conf" sync --all >"$tmp/s1.out" 2>&1 || bad "sync v1: $(tail -3 "$tmp/s1.out")"
gen "$store/engines/a.bin" 1 1
gen "$store/engines/b.bin" 2 1

j() { python3 -c 'import json,sys; d=json.load(open(sys.argv[1]))
for k in sys.argv[2].split("."): d=d[k]
print(d)' "$1" "$2" 2>/dev/null || echo -1; }

"$DISTSYNC" -c "$tmp/p.conf" scan --precompute --json >"$tmp/pre.json" 2>"$tmp/pre.err" ||
  bad "scan --precompute: $(head -c 300 "$tmp/pre.err")"
echo "  scan --precompute: servers $(j "$tmp/pre.json" precompute.servers), pairs $(j "$tmp/pre.json" precompute.pairs)," \
  "computed $(j "$tmp/pre.json" precompute.computed)"
[ "$(j "$tmp/pre.json" precompute.servers)" = 3 ] || bad "precompute planned $(j "$tmp/pre.json" precompute.servers) servers, want 3"
[ "$(j "$tmp/pre.json" precompute.pairs)" = 6 ] ||
  bad "precompute found $(j "$tmp/pre.json" precompute.pairs) pairs, want 6 (2 files in the formats of protocols 5, 4 and 2)"
[ "$(j "$tmp/pre.json" precompute.computed)" = 6 ] || bad "precompute computed $(j "$tmp/pre.json" precompute.computed), want 6"

"$DISTSYNC" -c "$tmp/p.conf" sync --all --no-scan --json >"$tmp/sync.json" 2>"$tmp/sync.err" ||
  bad "sync after precompute: $(head -c 300 "$tmp/sync.err")"
echo "  sync of the 3 servers: deltas computed $(j "$tmp/sync.json" deltas.computed), cached $(j "$tmp/sync.json" deltas.cached)"
[ "$(j "$tmp/sync.json" deltas.computed)" = 0 ] ||
  bad "the sync after precompute computed $(j "$tmp/sync.json" deltas.computed) deltas (the older agents' formats were not precomputed)"
[ "$(j "$tmp/sync.json" deltas.cached)" -ge 6 ] || bad "the sync found $(j "$tmp/sync.json" deltas.cached) cached deltas, want 6"
for v in 5 4 2; do en_converged "$store" "$tmp/t/v$v" "server v$v"; done
st_exit "scan --precompute builds each agent's own delta format"
