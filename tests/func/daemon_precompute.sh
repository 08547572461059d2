#!/usr/bin/env bash
# The daemon precomputes after its scans ([console] precompute = yes), as
# `distsync scan` does: a scan of the daemon's that changed the catalog
# starts `distsync precompute-worker`, which computes the deltas every
# server's next run needs; a run after it computes none.
#  - two servers synced; three 1 MiB "binaries" rebuilt (a byte changed
#    every 4 KiB: no chunk in common);
#  - a run-now of s1's definitions (unchanged) makes the daemon scan: the
#    log says the precompute ran after that scan (named scan:N, as
#    `distsync scans` lists it), 2 servers, 3 deltas, 3 computed;
#  - `distsync sync --all` through the daemon: its run's deltas are 0
#    computed, 3 or more cached; its own scan changed nothing, so no
#    second precompute; both targets converge;
#  - rebuilt again, `distsync status` through the daemon (a live status,
#    which scans): its scan starts the next precompute, 3 computed;
#  - reloaded with precompute = no, rebuilt again: the live status's scan
#    starts no precompute, the delta cache gets no entry until the run,
#    which computes the 3 deltas itself.
# On a daemon without it, the run after the scan computes its 3 deltas.
set -uo pipefail
. "$(dirname "$0")/lib/sync.bash"
. "$(dirname "$0")/lib/engine.bash"
. "$(dirname "$0")/lib/daemon.bash"
. "$(dirname "$0")/lib/api.bash"
st_init daemon_precompute

store=$tmp/store
state=$tmp/state
conf=$tmp/d.conf
sock=$state/distsync.sock
log=$tmp/daemon.log
mkdir -p "$store/engines" "$store/patches" "$store/definitions"
echo p >"$store/patches/p.txt"
echo d >"$store/definitions/d.txt"
gen() { # gen OUT SEED FLIP: 1 MiB pseudo-random; FLIP > 0 changes a byte every 4 KiB
  python3 - "$1" "$2" "$3" <<'PY'
import random, sys
b = bytearray(random.Random(int(sys.argv[2])).randbytes(1 << 20))
f = int(sys.argv[3])
if f:
    b[100 * f::4096] = bytes(x ^ 0xA5 for x in b[100 * f::4096])
open(sys.argv[1], "wb").write(b)
PY
}
gen "$store/engines/a.bin" 1 0
gen "$store/engines/b.bin" 2 0
gen "$store/engines/c.bin" 3 0
conf_write() { # conf_write yes|no
  en_head "$conf" "$store" "$state" "precompute = $1"
  en_server "$conf" s1 "$tmp/t1" local
  en_server "$conf" s2 "$tmp/t2" local
}
conf_write yes
ds() { "$DISTSYNC" -c "$conf" "$@"; }
ds sync --all >/dev/null 2>"$tmp/sync1.err" || bad "first sync: $(head -c 300 "$tmp/sync1.err")"
gen "$store/engines/a.bin" 1 1
gen "$store/engines/b.bin" 2 1
gen "$store/engines/c.bin" 3 1

dm_start "$log" 2026-03-10T01:00:00Z 1
api_wait_up "$log" || st_exit daemon_precompute
api POST /v1/run-now '{"servers":["s1"],"classes":["definitions"]}'
expect 202 "run-now of s1's definitions" || st_exit daemon_precompute
run_wait "$(jq_py 'j["id"]')" ok 60
gen_now=$(ds scans --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["scans"][-1]["scan"])')
dm_wait "$log" "precompute=$gen_now: 2 servers, 3 deltas: 3 computed, 0 already cached, 0 failed" 120
grep -E "precompute=$gen_now: computing the servers' next deltas at level 19, pid [0-9]+, nice \+10" "$log" >/dev/null ||
  bad "no start line for the precompute after $gen_now: $(grep precompute "$log" | head -3)"

ds sync --all --json >"$tmp/sync2.json" 2>"$tmp/sync2.err" || bad "sync --all through the daemon: $(head -c 300 "$tmp/sync2.err")"
id=$(grep -oE 'run now-[0-9]+@[^ ]+ through the daemon' "$tmp/sync2.err" | cut -d' ' -f2)
[ -n "$id" ] || bad "sync --all did not go through the daemon: $(head -c 300 "$tmp/sync2.err")"
api GET "/v1/runs/$id"
computed=$(jq_py 'j["deltas"]["computed"]') cached=$(jq_py 'j["deltas"]["cached"]')
echo "  run $id after the precompute: deltas computed $computed, cached $cached"
[ "$computed" = 0 ] || bad "the run after the daemon's precompute computed $computed deltas, want 0: $body"
[ "$cached" -ge 3 ] 2>/dev/null || bad "the run after the daemon's precompute found $cached deltas cached, want 3 or more"
n=$(grep -c "computing the servers' next deltas" "$log")
[ "$n" = 1 ] || bad "$n precomputes started; want 1 (the run's scan changed nothing)"
en_converged "$store" "$tmp/t1" "s1 after the precompute"
en_converged "$store" "$tmp/t2" "s2 after the precompute"

# a live status (`distsync status` through the daemon) scans too: the
# files rebuilt again, its scan starts the next precompute
gen "$store/engines/a.bin" 1 2
gen "$store/engines/b.bin" 2 2
gen "$store/engines/c.bin" 3 2
ds status >/dev/null 2>"$tmp/status.err"
gen_now=$(ds scans --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["scans"][-1]["scan"])')
dm_wait "$log" "precompute=$gen_now: 2 servers, 3 deltas: 3 computed" 120

# precompute = no, through a reload: nothing is precomputed
conf_write no
kill -HUP "$dpid"
dm_wait "$log" "daemon: reloaded" 20
gen "$store/engines/a.bin" 1 3
gen "$store/engines/b.bin" 2 3
gen "$store/engines/c.bin" 3 3
ndelta=$(find "$state/deltas" -type f -name '*.zp*' | wc -l)
ds status >/dev/null 2>"$tmp/status2.err"
sleep 2 # time a precompute would have had to start and compute
n=$(grep -c "computing the servers' next deltas" "$log")
[ "$n" = 2 ] || bad "precompute = no: a precompute started after the status's scan ($n start lines, want the 2 before)"
[ "$(find "$state/deltas" -type f -name '*.zp*' | wc -l)" = "$ndelta" ] ||
  bad "precompute = no: the delta cache got entries before any run needed them"
api POST /v1/run-now '{"all":true}'
expect 202 "run-now of all (precompute = no)"
id=$(jq_py 'j["id"]')
run_wait "$id" ok 120
api GET "/v1/runs/$id"
computed=$(jq_py 'j["deltas"]["computed"]')
echo "  run $id with precompute = no: deltas computed $computed"
[ "$computed" = 3 ] || bad "with precompute = no the run computed $computed deltas, want its 3: $body"
en_converged "$store" "$tmp/t1" "s1 (precompute = no)"
en_converged "$store" "$tmp/t2" "s2 (precompute = no)"
dm_stop
dm_log_once "$log"
st_exit daemon_precompute
