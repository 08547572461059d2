#!/usr/bin/env bash
# Issue 13: "each line carries the run id and the server". Every line the
# daemon logs during a run (its own, and the library's through ds_log:
# the scan on its worker, the engine's steps, the jobs on libuv's pool,
# the local receiver's thread) starts with run=ID, and a server's lines
# with server=NAME too; lines that are no run's (the API, start-up) carry
# no run=. Under systemd (JOURNAL_STREAM) the same after the <N> prefix.
# Each line names its run and server once (dm_log_once): no
# "run=ID: run ID: ok", no "server=S: server S: connected".
set -uo pipefail
. "$(dirname "$0")/lib/sync.bash"
. "$(dirname "$0")/lib/engine.bash"
. "$(dirname "$0")/lib/daemon.bash"
. "$(dirname "$0")/lib/api.bash"
st_init daemon_log_run

state=$tmp/state conf=$tmp/d.conf sock=$tmp/state/distsync.sock
en_fill "$tmp/store" 3 65536
en_head "$conf" "$tmp/store" "$state"
en_server "$conf" s1 "$tmp/t1" local
en_server "$conf" s2 "$tmp/t2" local
en_server "$conf" s3 "$tmp/t3" local
rm -rf "$tmp/t3" # s3 fails: its root is gone

# check LOG ID PREFIX: the run's lines (from its first to its outcome)
check() {
  local log=$1 id=$2 pre=$3 lines
  lines=$(sed -n "/run=$id: run-now of/,/run=$id: failed/p" "$log")
  [ "$(wc -l <<<"$lines")" -ge 6 ] || { bad "the run's lines are not in $log: $(tr '\n' '|' <"$log")"; return; }
  grep -v "^${pre}run=$id[ :]" <<<"$lines" | grep . && bad "lines of run $id without run=$id (above)"
  grep -q "^${pre}run=$id server=s1: connected" <<<"$lines" || bad "the library's line for s1 lacks run= and server=: $lines"
  grep -q "^${pre}run=$id: scan: store" <<<"$lines" || bad "the scan worker's line lacks run=: $lines"
  grep -Eq "^${pre}run=$id server=s3: failed, .*: target root $tmp/t3 does not exist" <<<"$lines" || bad "s3's failure lacks run= and server=: $lines"
  grep -Eq "^${pre}run=$id: failed: server s3: target root" <<<"$lines" || bad "the run's failure line does not name s3: $lines"
  grep -q "^${pre}run=" <(grep -E 'daemon: API on|queued through the API' "$log") && bad "lines outside the run carry run=: $(grep 'API' "$log")"
}

log=$tmp/daemon.log
DISTSYNC_TEST_NOW=$(dm_epoch 2026-03-10T00:00:00Z) DISTSYNC_TEST_SPEED=1 \
  "$DISTSYNC" -v -c "$conf" daemon >>"$log" 2>&1 &
dpid=$!
st_pids+=("$dpid")
api_wait_up "$log" || st_exit daemon_log_run
api POST /v1/run-now '{"servers":["s1","s2","s3"]}'
expect 202 "run-now"
id=$(jq_py 'j["id"]')
run_wait "$id" failed 30
dm_stop
dm_log_once "$log"
check "$log" "$id" 'distsync: [a-z]*: '

# under systemd: the journal's priority, then the same
en_fill "$tmp/store" 3 65536 # new content: the second run sends
log=$tmp/journal.log
JOURNAL_STREAM=8:1 DISTSYNC_TEST_NOW=$(dm_epoch 2026-03-10T00:00:00Z) DISTSYNC_TEST_SPEED=1 \
  "$DISTSYNC" -v -c "$conf" daemon >>"$log" 2>&1 &
dpid=$!
st_pids+=("$dpid")
api_wait_up "$log" || st_exit daemon_log_run
api POST /v1/run-now '{"servers":["s1","s2","s3"]}'
expect 202 "run-now under systemd"
id=$(jq_py 'j["id"]')
run_wait "$id" failed 30
dm_stop
dm_log_once "$log"
check "$log" "$id" '<[0-9]>'
st_exit daemon_log_run
