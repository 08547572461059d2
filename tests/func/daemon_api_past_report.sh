#!/usr/bin/env bash
# Past runs after a daemon restart read the same as before it (issue 13):
# GET /v1/runs/ID of a run-now with classes over two servers, and of one
# without, is byte for byte the same JSON after a restart: its "classes",
# each server's "rc" and "report" (sync --json's object), the "deltas"
# and the progress with its rate come back from the catalog (migration 9).
# Before, the restarted daemon answered classes, rc and report null.
set -uo pipefail
. "$(dirname "$0")/lib/sync.bash"
. "$(dirname "$0")/lib/engine.bash"
. "$(dirname "$0")/lib/daemon.bash"
. "$(dirname "$0")/lib/api.bash"
st_init daemon_api_past_report

state=$tmp/state
conf=$tmp/d.conf
sock=$state/distsync.sock
en_fill "$tmp/store" 3 65536
en_head "$conf" "$tmp/store" "$state"
en_server "$conf" s1 "$tmp/t1" local
en_server "$conf" s2 "$tmp/t2" local
"$DISTSYNC" -c "$conf" scan >/dev/null 2>&1 || bad "scan failed"

log=$tmp/daemon.log
dm_start "$log" 2026-03-10T01:00:00Z 1
api_wait_up "$log" || st_exit daemon_api_past_report
api POST /v1/run-now '{"servers":["s1","s2"],"classes":["patches","engines"]}'
expect 202 "run-now with classes" || st_exit daemon_api_past_report
id1=$(jq_py 'j["id"]')
run_wait "$id1" ok 30
api POST /v1/run-now '{"servers":["s2"]}'
expect 202 "run-now of every class" || st_exit daemon_api_past_report
id2=$(jq_py 'j["id"]')
run_wait "$id2" ok 30
api GET "/v1/runs/$id1"
before1=$body
[ "$(jq_py '(j["classes"], [(s["rc"], s["report"]["status"], s["report"]["created"]) for s in j["servers"]])')" = \
  "(['patches', 'engines'], [(0, 'ok', 4), (0, 'ok', 4)])" ] || bad "the run before the restart: $before1"
api GET "/v1/runs/$id2"
before2=$body
api GET /v1/runs
runs_before=$body
dm_stop

log2=$tmp/daemon2.log
dm_start "$log2" 2026-03-10T01:10:00Z 1
api_wait_up "$log2" || st_exit daemon_api_past_report
api GET "/v1/runs/$id1"
expect 200 "the run with classes after the restart"
[ "$body" = "$before1" ] || bad "GET /v1/runs/$id1 after a restart differs:
before: $before1
after:  $body"
api GET "/v1/runs/$id2"
[ "$body" = "$before2" ] || bad "GET /v1/runs/$id2 after a restart differs:
before: $before2
after:  $body"
api GET /v1/runs
[ "$body" = "$runs_before" ] || bad "GET /v1/runs after a restart differs:
before: $runs_before
after:  $body"
dm_stop
st_exit daemon_api_past_report
