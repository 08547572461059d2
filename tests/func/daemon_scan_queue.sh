#!/usr/bin/env bash
# A due run queues behind ingest (issue 13): while another process holds
# the state directory's scan lock (as `distsync scan` does), the daemon's
# fire waits and says so; once the lock is released it scans (seeing the
# file added meanwhile) and syncs. With a 10m window and the clock at 60x,
# a 15 s hold (15 min on the test clock) makes the next fire late: it is
# skipped and recorded with the reason, not run.
set -uo pipefail
. "$(dirname "$0")/lib/sync.bash"
. "$(dirname "$0")/lib/engine.bash"
. "$(dirname "$0")/lib/daemon.bash"
st_init daemon_scan_queue
command -v flock >/dev/null || { echo "SKIP: flock(1) is missing (util-linux)"; exit 77; }

state=$tmp/state
conf=$tmp/d.conf
en_fill "$tmp/store" 1 4096
en_head "$conf" "$tmp/store" "$state"
en_server "$conf" s1 "$tmp/t" local
printf '\n[schedule often]\nwhen = daily 02:00\ntz = UTC\nwindow = 10m\nservers = s1\n' >>"$conf"
mkdir -p "$state"

# hold SECONDS: holds the scan lock in the background; sets hpid.
hold() {
  flock "$state/scan.lock" sleep "$1" &
  hpid=$!
  st_pids+=("$hpid")
  sleep 0.3
}

hold 4
log=$tmp/queue.log
dm_start "$log" 2026-03-10T01:59:58Z 1
dm_wait "$log" 'run=often@2026-03-10T02:00Z: waiting for the scan running on' 10
echo late >"$tmp/store/engines/late.txt" # lands while the run waits
grep -Eq 'run[= ]often@2026-03-10T02:00Z: ok' "$log" && bad "queue: the run went on while the scan lock was held"
wait "$hpid"
dm_wait "$log" 'run=often@2026-03-10T02:00Z: ok' 20
dm_stop
en_converged "$tmp/store" "$tmp/t" "queue"

# The window passes while the run waits: skipped, recorded.
hold 15
log=$tmp/late.log
dm_start "$log" 2026-03-11T01:59:50Z 60
dm_wait "$log" 'run=often@2026-03-11T02:00Z: waiting for the scan' 15
wait "$hpid"
dm_wait "$log" 'run=often@2026-03-11T02:00Z: skipped: not started by fire \+ window' 15
dm_stop
dm_fires often | grep -q "^$(dm_epoch 2026-03-11T02:00Z)|skipped|not started by fire + window" ||
  bad "late: not recorded as skipped: $(dm_fires often | tr '\n' ' ')"
st_exit daemon_scan_queue
