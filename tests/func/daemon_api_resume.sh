#!/usr/bin/env bash
# SIGTERM mid-transfer, then a clean resume, seen through the API (issue 13):
#  - a scheduled fire held by a 1 Mbit/s cap is stopped by SIGTERM after
#    two of its four files were committed; the fire is recorded
#    "interrupted";
#  - the next start catches it up; GET /v1/runs then lists the interrupted
#    run (from the catalog) and the catch-up run "ok", both under the
#    fire's id;
#  - files committed before the stop are not sent again (same inode and
#    mtime), and the resume sends less than the whole store.
set -uo pipefail
. "$(dirname "$0")/lib/sync.bash"
. "$(dirname "$0")/lib/engine.bash"
. "$(dirname "$0")/lib/daemon.bash"
. "$(dirname "$0")/lib/api.bash"
st_init daemon_api_resume

state=$tmp/state
conf=$tmp/d.conf
sock=$state/distsync.sock
en_fill "$tmp/store" 4 262144 # 4 x 2 s at 1 Mbit/s
en_head "$conf" "$tmp/store" "$state" "bandwidth = 1Mbit"
en_server "$conf" s1 "$tmp/t" local
printf '\n[schedule nightly]\nwhen = daily 02:00\ntz = UTC\nwindow = 2h\nservers = s1\n' >>"$conf"
"$DISTSYNC" -c "$conf" scan >/dev/null 2>&1 || bad "scan failed"
fid='nightly@2026-03-10T02:00Z'

log=$tmp/daemon.log
dm_start "$log" 2026-03-10T01:59:58Z 1
api_wait_up "$log" || st_exit daemon_api_resume
dm_wait "$log" "run=$fid: syncing" 20
# wait until two files are committed (whole, in place)
for _ in $(seq 1 300); do
  [ "$(find "$tmp/t/patches" -name 'f*.bin' -size 262144c 2>/dev/null | wc -l)" -ge 2 ] && break
  sleep 0.05
done
committed=$(cd "$tmp/t" && find patches -name 'f*.bin' -size 262144c | sort)
[ "$(echo "$committed" | grep -c .)" -ge 2 ] && [ "$(echo "$committed" | grep -c .)" -lt 4 ] ||
  bad "before the stop: committed files '$committed' (want 2 or 3 of 4)"
before=$(cd "$tmp/t" && for f in $committed; do stat -c '%n %i %Y' "$f"; done)
dm_stop TERM
dm_fires nightly | grep -q "^$(dm_epoch 2026-03-10T02:00Z)|interrupted|" ||
  bad "the fire is not recorded interrupted: $(dm_fires nightly | tr '\n' ' ')"

sed -i '/^bandwidth/d' "$conf"
log2=$tmp/daemon2.log
dm_start "$log2" 2026-03-10T02:10:00Z 1
api_wait_up "$log2" || st_exit daemon_api_resume
dm_wait "$log2" "run=$fid: catch-up" 20
run_wait "$fid" ok 30
api GET /v1/runs
[ "$(jq_py '[(r["id"], r["state"]) for r in j["runs"]]')" = "[('$fid', 'ok'), ('$fid', 'interrupted')]" ] ||
  bad "GET /v1/runs after the resume: $body"
wire=$(jq_py 'j["runs"][0]["progress"]["bytes_wire"]')
[ "$wire" -lt 700000 ] || bad "the resume sent $wire bytes: committed files were sent again"
after=$(cd "$tmp/t" && for f in $committed; do stat -c '%n %i %Y' "$f"; done)
[ "$before" = "$after" ] || bad "files committed before the stop changed on resume: '$before' -> '$after'"
dm_stop
en_converged "$tmp/store" "$tmp/t" "resume"
st_exit daemon_api_resume
