#!/usr/bin/env bash
# The API answers while the daemon scans the store before a run (issue 13):
# the scan runs on a worker thread, not on the loop. A run-now on a store
# of 24 MiB, never scanned, makes the daemon hash all of it first, its
# scan worker held 4 s longer by DISTSYNC_TEST_SCAN_PAUSE_MS (a test build's
# hook: the scan lasts seconds on any disk and CPU; it was 900 MiB, assumed
# to take 2 s or more); GET /v1/runs, asked every 0.1 s meanwhile, answers
# within 1 s each time, at least three times before the scan ends, and
# shows the run running. The run (class engines only, to keep the test
# short) then ships that class.
set -uo pipefail
. "$(dirname "$0")/lib/sync.bash"
. "$(dirname "$0")/lib/engine.bash"
. "$(dirname "$0")/lib/daemon.bash"
. "$(dirname "$0")/lib/api.bash"
st_init daemon_scan_api

state=$tmp/state
conf=$tmp/d.conf
sock=$state/distsync.sock
en_fill "$tmp/store" 3 8388608 # 24 MiB never scanned
en_head "$conf" "$tmp/store" "$state" "scan_threads = 1"
en_server "$conf" s1 "$tmp/t1" local

log=$tmp/daemon.log
export DISTSYNC_TEST_SCAN_PAUSE_MS=4000
dm_start "$log" 2026-03-10T01:00:00Z 1
api_wait_up "$log" || st_exit daemon_scan_api
api POST /v1/run-now '{"servers":["s1"],"classes":["engines"]}'
expect 202 "run-now" || st_exit daemon_scan_api
id=$(jq_py 'j["id"]')

# GET /v1/runs until the scan's line is logged; count the answers that came
# back (within 1 s) before it, and the slowest.
during=0 slowest=0 t_end=$(($(now_ms) + 60000))
while ! grep -q "run=$id: scan: " "$log"; do
  [ "$(now_ms)" -lt "$t_end" ] || { bad "no scan line within 60 s: $(tail -3 "$log")"; break; }
  t0=$(now_ms)
  code=$(curl -s -m 20 -o "$tmp/runs.json" -w '%{http_code}' --unix-socket "$sock" http://localhost/v1/runs)
  ms=$(($(now_ms) - t0))
  [ "$ms" -le "$slowest" ] || slowest=$ms
  grep -q "run=$id: scan: " "$log" && break # answered only once the scan was over
  [ "$code" = 200 ] || bad "GET /v1/runs during the scan: HTTP $code"
  [ "$ms" -lt 1000 ] && during=$((during + 1)) && cp "$tmp/runs.json" "$tmp/runs.$during.json"
  sleep 0.1
done
# each answer shows the run (read after the loop: a python3 start per answer
# slowed the loop on a loaded box)
for f in $(seq "$during"); do
  state_now=$(python3 -c "import json,sys; print([r['state'] for r in json.load(open(sys.argv[1]))['runs'] if r['id']==sys.argv[2]])" "$tmp/runs.$f.json" "$id" 2>/dev/null)
  [ "$state_now" = "['running']" ] || [ "$state_now" = "['queued']" ] || bad "the run is $state_now during its scan"
done
echo "GET /v1/runs answered $during times during the scan; slowest answer $slowest ms"
[ "$during" -ge 3 ] || bad "the API answered only $during times (within 1 s) during the scan (slowest $slowest ms): the scan blocks the loop"
run_wait "$id" ok 60
cmp -s "$tmp/store/engines/engines.txt" "$tmp/t1/engines/engines.txt" || bad "the run did not ship engines/"
dm_stop
st_exit daemon_scan_api
