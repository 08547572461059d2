#!/usr/bin/env bash
# Live runs through the API: progress, overlap, cancel.
#  - a run-now held by a 400 kbit/s cap shows progress while it runs
#    (bytes done and on the wire, a rate, an ETA);
#  - a second run-now of the same server meanwhile waits, queued (one batch
#    at a time: never two writers); cancelling it ends it at once;
#  - cancelling the live run winds it down: the run is "cancelled", the
#    history records the server's run "cancelled", the daemon goes on and
#    the next run-now (one class only) completes.
set -uo pipefail
. "$(dirname "$0")/lib/sync.bash"
. "$(dirname "$0")/lib/engine.bash"
. "$(dirname "$0")/lib/daemon.bash"
. "$(dirname "$0")/lib/api.bash"
st_init daemon_api_cancel

state=$tmp/state
conf=$tmp/d.conf
sock=$state/distsync.sock
en_fill "$tmp/store" 4 262144 # 1 MiB: 20 s at 400 kbit/s
en_head "$conf" "$tmp/store" "$state" "bandwidth = 400kbit"
en_server "$conf" s1 "$tmp/t1" local
"$DISTSYNC" -c "$conf" scan >/dev/null 2>&1 || bad "scan failed"

log=$tmp/daemon.log
dm_start "$log" 2026-03-10T01:00:00Z 1
api_wait_up "$log" || st_exit daemon_api_cancel

api POST /v1/run-now '{"servers":["s1"]}'
expect 202 "run-now" || st_exit daemon_api_cancel
id=$(jq_py 'j["id"]')
for _ in $(seq 1 100); do
  api GET "/v1/runs/$id"
  [ "$(jq_py 'j["state"] == "running" and j["progress"]["bytes_done"] > 0 and j["progress"]["eta_s"] is not None')" = True ] && break
  sleep 0.1
done
[ "$(jq_py '(j["state"], j["progress"]["bytes_wire"] > 0, j["progress"]["rate_bps"] > 0, j["progress"]["eta_s"] > 0, j["progress"]["bytes_total"] >= 1048576)')" = \
  "('running', True, True, True, True)" ] || bad "no progress while running: $body"

api POST /v1/run-now '{"servers":["s1"]}'
expect 202 "a second run-now"
id2=$(jq_py 'j["id"]')
sleep 1
api GET "/v1/runs/$id2"
[ "$(jq_py 'j["state"]')" = queued ] || bad "a run-now of a server being synced does not wait: $body"
api POST "/v1/runs/$id2/cancel"
expect 200 "cancel of the queued run" && [ "$(jq_py 'j["state"]')" = cancelled ] ||
  bad "the queued run after cancel: $body"

api POST "/v1/runs/$id/cancel"
expect 202 "cancel of the live run"
run_wait "$id" cancelled 15
[ "$(jq_py '(j["servers"][0]["result"], j["reason"])')" = "('cancelled', 'cancelled through the API')" ] ||
  bad "the cancelled run: $body"
[ "$("$DISTSYNC" -c "$conf" history s1 --json | python3 -c 'import json,sys; r=json.load(sys.stdin); print(len(r), r[0]["status"])')" = \
  "1 cancelled" ] || bad "history after the cancel: $("$DISTSYNC" -c "$conf" history s1 --json)"
[ -z "$(find "$tmp/t1/patches" -name 'f*.bin' -size 262144c 2>/dev/null | head -4 | sed -n 4p)" ] ||
  bad "the cancelled run still wrote every file"

api POST /v1/run-now '{"servers":["s1"],"classes":["engines"]}'
expect 202 "run-now after the cancel"
id3=$(jq_py 'j["id"]')
run_wait "$id3" ok 20
cmp -s "$tmp/store/engines/engines.txt" "$tmp/t1/engines/engines.txt" || bad "the run after the cancel did not sync engines"
api GET "/v1/runs/$id3"
[ "$(jq_py 'j["classes"]')" = "['engines']" ] || bad "the run's classes: $body"

dm_stop
st_exit daemon_api_cancel
