#!/usr/bin/env bash
# A cancelled scheduled fire, and the runs list after a restart (issue 13):
#  - a fire cancelled through the API is recorded "cancelled" in the
#    schedule's fires (not "failed"), with the reason;
#  - after a restart, catch-up does not run it again, and GET /v1/runs
#    still lists it (and the run-now before it, newest first) from the catalog, with its
#    servers and their results.
set -uo pipefail
. "$(dirname "$0")/lib/sync.bash"
. "$(dirname "$0")/lib/engine.bash"
. "$(dirname "$0")/lib/daemon.bash"
. "$(dirname "$0")/lib/api.bash"
st_init daemon_api_past

state=$tmp/state
conf=$tmp/d.conf
sock=$state/distsync.sock
en_fill "$tmp/store" 4 262144 # 1 MiB: 20 s at 400 kbit/s
en_head "$conf" "$tmp/store" "$state" "bandwidth = 400kbit"
en_server "$conf" s1 "$tmp/t1" local
printf '\n[schedule nightly]\nwhen = daily 02:00\ntz = UTC\nwindow = 1h\nservers = s1\n' >>"$conf"
"$DISTSYNC" -c "$conf" scan >/dev/null 2>&1 || bad "scan failed"

log=$tmp/daemon.log
dm_start "$log" 2026-03-10T01:59:50Z 1
api_wait_up "$log" || st_exit daemon_api_past
api POST /v1/run-now '{"servers":["s1"],"classes":["engines"]}'
expect 202 "run-now" || st_exit daemon_api_past
now_id=$(jq_py 'j["id"]')
run_wait "$now_id" ok 20
fid='nightly@2026-03-10T02:00Z'
dm_wait "$log" "run=$fid: syncing" 30
run_wait "$fid" running 10
for _ in $(seq 1 300); do # progress moves per finished file: cancel after the first
  api GET "/v1/runs/$fid"
  [ "$(jq_py 'j["progress"]["bytes_done"] > 0')" = True ] && break
  sleep 0.1
done
api POST "/v1/runs/$fid/cancel"
expect 202 "cancel of the fire"
run_wait "$fid" cancelled 15
fire=$(dm_epoch 2026-03-10T02:00Z)
dm_fires nightly | grep -q "^$fire|cancelled|cancelled through the API$" ||
  bad "the cancelled fire is recorded as: $(dm_fires nightly | tr '\n' ' ')"
dm_stop

log2=$tmp/daemon2.log
dm_start "$log2" 2026-03-10T02:01:00Z 1
api_wait_up "$log2" || st_exit daemon_api_past
dm_wait "$log2" 'daemon: 1 schedule' 10
sleep 2
grep -q "run=$fid" "$log2" && bad "the cancelled fire ran again after the restart: $(grep "run $fid" "$log2" | head -2)"
[ "$(dm_fires nightly | grep -c "^$fire|")" = 1 ] && dm_fires nightly | grep -q "^$fire|cancelled|" ||
  bad "the fire's record after the restart: $(dm_fires nightly | tr '\n' ' ')"
api GET /v1/runs
expect 200 "runs after the restart"
[ "$(jq_py '[(r["id"], r["trigger"], r["state"], r["reason"], [(s["server"], s["result"]) for s in r["servers"]]) for r in j["runs"]]')" = \
  "[('$fid', 'schedule nightly', 'cancelled', 'cancelled through the API', [('s1', 'cancelled')]), ('$now_id', 'manual', 'ok', None, [('s1', 'ok')])]" ] ||
  bad "GET /v1/runs after a restart: $body"
api GET "/v1/runs/$fid"
expect 200 "the fire's run after the restart" &&
  [ "$(jq_py '(j["state"], j["progress"]["bytes_done"] > 0, j["started_at"] is not None)')" = "('cancelled', True, True)" ] ||
  bad "GET /v1/runs/$fid after a restart: $body"
dm_stop
st_exit daemon_api_past
