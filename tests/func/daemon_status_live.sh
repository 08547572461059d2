#!/usr/bin/env bash
# Issue 13: plain (live) `distsync status` goes through a running daemon
# (GET /v1/status?live=1), which contacts the servers on a thread of its
# own: it answers while the daemon's run holds its engine, with the same
# output and exit status as the standalone command.
# The proof that it went through the daemon: after the daemon started, the
# config file is changed (s3's url moved to an empty folder) without a
# reload; the daemon still contacts s3 at its old url, the standalone
# command at the new one.
set -uo pipefail
. "$(dirname "$0")/lib/sync.bash"
. "$(dirname "$0")/lib/engine.bash"
. "$(dirname "$0")/lib/daemon.bash"
. "$(dirname "$0")/lib/api.bash"
st_init daemon_status_live

state=$tmp/state conf=$tmp/d.conf sock=$tmp/state/distsync.sock
dm_status_setup 98304 # s1: 384 KiB at 200 kbit/s, about 16 s
f=$(cd "$tmp/t3" && find patches -type f | head -1)
echo drifted >"$tmp/t3/$f"                # drift on s3: exit status 3
head -c 5000 /dev/urandom >"$tmp/store/patches/new.bin" # pending on s2 and s3
mkdir -p "$tmp/empty"
dm_status_out sa.text "s2 s3"
dm_status_out sa.json "s2 s3 --json"
dm_status_out sa.noscan "s2 --no-scan"
grep -q '^exit 3$' "$tmp/sa.text.out" || bad "standalone status: not the drift exit status: $(tail -1 "$tmp/sa.text.out")"
grep -q 'drifted' "$tmp/sa.text.out" || bad "standalone status shows no drift: $(cat "$tmp/sa.text.out")"

log=$tmp/daemon.log
dm_start "$log" 2026-03-10T00:00:00Z 1
api_wait_up "$log" || st_exit daemon_status_live
# the daemon's configuration is the one it started with; the CLI's moves s3
sed -i "s|url = file://$tmp/t3|url = file://$tmp/empty|" "$conf"
dm_status_out sa.moved "s3 --no-scan"
grep -q '^status s3: 0 missing' "$tmp/sa.moved.out" && bad "the moved url is not empty: $(cat "$tmp/sa.moved.out")"

api POST /v1/run-now '{"servers":["s1"]}'
expect 202 "run-now s1"
id=$(jq_py 'j["id"]')
for _ in $(seq 1 100); do
  api GET "/v1/runs/$id"
  [ "$(jq_py 'j["state"]')" = running ] && break
  sleep 0.1
done
for k in text json; do
  a=$([ $k = json ] && echo "s2 s3 --json" || echo "s2 s3")
  t0=$(date +%s%N)
  dm_status_out "d.$k" "$a"
  ms=$((($(date +%s%N) - t0) / 1000000))
  echo "status ($k) through the daemon during its run: $ms ms"
  [ "$ms" -lt 8000 ] || bad "status ($k) took $ms ms during the daemon's run (queued behind it?)"
  [ "$(dm_status_mask <"$tmp/sa.$k.out")" = "$(dm_status_mask <"$tmp/d.$k.out")" ] ||
    bad "status $a differs through the daemon: $(diff "$tmp/sa.$k.out" "$tmp/d.$k.out" | head -8)"
done
api GET "/v1/runs/$id"
[ "$(jq_py 'j["state"]')" = running ] || bad "the run ended before the checks: the test proves nothing"
# --no-scan goes through too
dm_status_out d.noscan "s2 --no-scan"
[ "$(dm_status_mask <"$tmp/sa.noscan.out")" = "$(dm_status_mask <"$tmp/d.noscan.out")" ] ||
  bad "status s2 --no-scan differs through the daemon: $(diff "$tmp/sa.noscan.out" "$tmp/d.noscan.out" | head -8)"

# bad requests: nothing runs
api GET '/v1/status?live=1&servers=nope'
expect 404 "live status of an unknown server" && [[ $body == *"no server named 'nope'"* ]] || bad "unknown server: $body"
api GET '/v1/status?live=1&servers=%zz'
expect 400 "live status with a bad escape"
api GET '/v1/status?live=1&servers=s2&scan=0'
expect 200 "live status over the API"
[ "$(jq_py 'j["servers"][0]["verdict"]')" = pending ] || bad "live status s2: $body"

# a client that leaves before the answer does not hurt the daemon
timeout 0.05 curl -s --unix-socket "$sock" "http://localhost/v1/status?live=1" >/dev/null 2>&1
run_wait "$id" ok 60
kill -0 "$dpid" 2>/dev/null || bad "the daemon died"
dm_stop
st_exit daemon_status_live
