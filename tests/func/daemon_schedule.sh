#!/usr/bin/env bash
# distsync daemon fires [schedule] sections (issue 13), on the test clock of
# DS_TEST_HOOKS builds, against a file:// server:
#  - a fire: the clock starts 10 s before daily 02:00 UTC; the run scans the
#    store, syncs the server (trigger "schedule") and is recorded "ok";
#  - catch-up: a fire missed while the daemon was down runs once at the next
#    start, and never again over two more restarts;
#  - window: a missed fire whose window (4h) has passed is skipped and
#    recorded "skipped" with the reason, nothing synced;
#  - a DST night in Europe/Paris: "daily 02:30" fires at 01:30Z on 28 March
#    2026, at 03:00 CEST (01:00Z) on 29 March (02:30 does not exist), and at
#    00:30Z on 30 March, run by the daemon on a fast clock.
set -uo pipefail
. "$(dirname "$0")/lib/sync.bash"
. "$(dirname "$0")/lib/engine.bash"
. "$(dirname "$0")/lib/daemon.bash"
st_init daemon_schedule

state=$tmp/state
conf=$tmp/d.conf
en_fill "$tmp/store" 2 4096
en_head "$conf" "$tmp/store" "$state"
en_server "$conf" s1 "$tmp/t" local
printf '\n[schedule nightly]\nwhen = daily 02:00\ntz = UTC\nwindow = 4h\nservers = s1\n' >>"$conf"

# A fire: due 10 s after the start (clock at twice the real speed).
log=$tmp/fire.log
dm_start "$log" 2026-03-10T01:59:50Z 2
dm_wait "$log" 'run=nightly@2026-03-10T02:00Z: ok' 30 &&
  dm_wait "$log" 'run=nightly@2026-03-10T02:00Z server=s1: ok, 4 new' 1
dm_stop
en_converged "$tmp/store" "$tmp/t" "fire"
grep -q 'schedule' <("$DISTSYNC" -c "$conf" history s1) || bad "fire: history has no run with trigger schedule"
dm_fires nightly | grep -q "^$(dm_epoch 2026-03-10T02:00Z)|ok|" ||
  bad "fire: the 02:00 fire is not recorded ok: $(dm_fires nightly | tr '\n' ' ')"

# Catch-up: down over the 11 March fire; a new file waits in the store.
echo new >"$tmp/store/engines/late.txt"
log=$tmp/catchup.log
dm_start "$log" 2026-03-11T03:00Z 1
dm_wait "$log" 'run=nightly@2026-03-11T02:00Z: catch-up' 20 &&
  dm_wait "$log" 'run=nightly@2026-03-11T02:00Z: ok' 20
dm_stop
[ -f "$tmp/t/engines/late.txt" ] || bad "catch-up: the missed fire did not sync the new file"
runs=$(dm_runs s1)
for at in 2026-03-11T03:20Z 2026-03-11T05:00Z; do # two restarts: never again
  log=$tmp/restart.log
  dm_start "$log" "$at" 1
  dm_wait "$log" 'daemon: 1 schedule' 20
  sleep 1
  dm_stop
done
grep -Eq 'run[= ]nightly@2026-03-11T02:00Z: catch-up' "$log" && bad "catch-up: the fire ran again after a restart"
[ "$(dm_runs s1)" = "$runs" ] || bad "catch-up: $(dm_runs s1) runs after two restarts, expected $runs"

# Window: down over the 12 March fire until 08:00, past its 4h window.
echo newer >"$tmp/store/engines/later.txt"
log=$tmp/window.log
dm_start "$log" 2026-03-12T08:00Z 1
dm_wait "$log" 'run=nightly@2026-03-12T02:00Z: skipped: not started by fire \+ window \(window 4h' 20
dm_stop
[ ! -e "$tmp/t/engines/later.txt" ] || bad "window: a skipped fire synced"
dm_fires nightly | grep -q "^$(dm_epoch 2026-03-12T02:00Z)|skipped|not started by fire + window" ||
  bad "window: not recorded as skipped with the reason: $(dm_fires nightly | tr '\n' ' ')"

# A DST night in Europe/Paris, 54 h of schedule in ~14 s.
sed -i 's/^when = .*/when = daily 02:30/; s/^tz = .*/tz = Europe\/Paris/; s/^window = .*//' "$conf"
"$DISTSYNC" -c "$conf" schedule next nightly --from 2026-03-28T00:00:00Z --count 3 >"$tmp/next" ||
  bad "dst: schedule next failed"
log=$tmp/dst.log
dm_start "$log" 2026-03-28T00:00:00Z 14400
dm_wait "$log" 'run=nightly@2026-03-30T00:30Z: ok' 40
dm_stop
got=$(grep -oE 'run=nightly@[^ ]+: ok' "$log" | sed 's/: ok//; s/run=nightly@//' | tr '\n' ' ')
# the 27 March fire first: missed while down (since the 12th), caught up
want="2026-03-27T01:30Z 2026-03-28T01:30Z 2026-03-29T01:00Z 2026-03-30T00:30Z "
[ "$got" = "$want" ] || bad "dst: the daemon fired at '$got', expected '$want'"
grep -q '2026-03-29T03:00:00+02:00' "$tmp/next" || bad "dst: schedule next disagrees: $(cat "$tmp/next")"
dm_log_once "$log"
st_exit daemon_schedule
