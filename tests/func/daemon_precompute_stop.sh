#!/usr/bin/env bash
# SIGTERM during the daemon's precompute ([console] precompute = yes) stops
# the daemon within seconds: the precompute worker is killed, not waited
# for. A 32 MiB file rebuilt throughout (random bytes: no chunk in common)
# makes a level-19 delta of 30 s or more of CPU (47 s for 48 MiB here),
# one zstd pass that cannot be stopped half-way.
#  - the daemon's scan for `distsync status` starts the precompute (its
#    pid in the log); 2 s later it still runs;
#  - SIGTERM: the daemon exits 0 within 5 s, the worker is gone, the log
#    says the precompute stopped with the daemon;
#  - the worker's tmp file in the delta cache is reaped by the next open
#    of the cache (distsync plan), and no entry is half-written.
set -uo pipefail
. "$(dirname "$0")/lib/sync.bash"
. "$(dirname "$0")/lib/engine.bash"
. "$(dirname "$0")/lib/daemon.bash"
. "$(dirname "$0")/lib/api.bash"
st_init daemon_precompute_stop

store=$tmp/store
state=$tmp/state
conf=$tmp/d.conf
sock=$state/distsync.sock
log=$tmp/daemon.log
mkdir -p "$store/engines" "$store/patches" "$store/definitions"
echo p >"$store/patches/p.txt"
echo d >"$store/definitions/d.txt"
head -c 32M /dev/urandom >"$store/engines/big.bin"
en_head "$conf" "$store" "$state" "precompute = yes" "delta_level = 19"
en_server "$conf" s1 "$tmp/t1" local
ds() { "$DISTSYNC" -c "$conf" "$@"; }
ds sync s1 >/dev/null 2>"$tmp/sync1.err" || bad "first sync: $(head -c 300 "$tmp/sync1.err")"
head -c 32M /dev/urandom >"$store/engines/big.tmp" && mv "$store/engines/big.tmp" "$store/engines/big.bin"

dm_start "$log" 2026-03-10T01:00:00Z 1
api_wait_up "$log" || st_exit daemon_precompute_stop
ds status >/dev/null 2>"$tmp/status.err" # through the daemon: its scan sees big.bin changed
dm_wait "$log" "computing the servers' next deltas at level 19, pid [0-9]+" 60 || st_exit daemon_precompute_stop
wpid=$(grep -oE "next deltas at level 19, pid [0-9]+" "$log" | grep -oE '[0-9]+$')
sleep 2
kill -0 "$wpid" 2>/dev/null || bad "the precompute worker (pid $wpid) is not running 2 s after it started"
grep -q "deltas: 1 computed" "$log" && bad "the precompute ended within 2 s: the test needs a longer one"

t0=$(now_ms)
kill -TERM "$dpid"
while kill -0 "$dpid" 2>/dev/null && [ $(($(now_ms) - t0)) -lt 30000 ]; do sleep 0.05; done
ms=$(($(now_ms) - t0))
echo "  the daemon stopped $ms ms after SIGTERM, during a level-19 precompute"
[ "$ms" -le 5000 ] || bad "the daemon took $ms ms to stop during a precompute (want 5 s at most)"
dm_stop
kill -0 "$wpid" 2>/dev/null && bad "the precompute worker (pid $wpid) outlived the daemon"
grep -qE "precompute=scan:[0-9]+: stopped with the daemon after [0-9.]+ s" "$log" ||
  bad "no line says the precompute stopped with the daemon: $(grep precompute "$log" | tail -3)"
ds plan s1 >/dev/null 2>&1 # opens the delta cache: a dead writer's tmp file goes
left=$(find "$state/deltas" -name 'tmp.*' | wc -l)
[ "$left" = 0 ] || bad "$left tmp files of the killed worker left in the delta cache"
[ "$(find "$state/deltas" -type f ! -name 'tmp.*' | wc -l)" = 0 ] ||
  bad "the killed worker left an entry in the delta cache: $(ls "$state/deltas")"
st_exit daemon_precompute_stop
