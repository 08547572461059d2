#!/usr/bin/env bash
# The daemon's signals (issue 13), on the test clock, file:// servers:
#  - SIGHUP with a bad config: the error names the file, line and key, the
#    old schedule stays (its 02:00 fire runs, not the bad file's 02:10);
#  - SIGHUP with a good config: its new fire time (02:05) runs;
#  - SIGTERM mid-transfer: 8 x 256 KiB at 1Mbit (about 16 s); 3 s in, the
#    daemon is stopped: it exits 0 within seconds, no partial file is
#    visible, the lease is released, the fire is recorded "interrupted";
#    the next start (cap lifted) catches the fire up and converges.
set -uo pipefail
. "$(dirname "$0")/lib/sync.bash"
. "$(dirname "$0")/lib/engine.bash"
. "$(dirname "$0")/lib/daemon.bash"
st_init daemon_signals

state=$tmp/state
conf=$tmp/d.conf
# write_conf WHEN [LINE]: the config with schedule WHEN (LINE appended to it).
write_conf() {
  en_head "$conf" "$tmp/store" "$state"
  en_server "$conf" s1 "$tmp/t" local
  printf '\n[schedule nightly]\nwhen = %s\ntz = UTC\nwindow = 1h\nservers = s1\n' "$1" >>"$conf"
  [ $# -lt 2 ] || printf '%s\n' "$2" >>"$conf"
}
en_fill "$tmp/store" 1 4096

# SIGHUP: bad, then good. Clock at 20x: 02:00 comes 6 s in.
write_conf "daily 02:00"
log=$tmp/hup.log
dm_start "$log" 2026-03-10T01:58:00Z 20
dm_wait "$log" 'daemon: 1 schedule' 10
write_conf "daily 02:10" "bogus = 1"
bad_line=$(grep -n '^bogus' "$conf" | cut -d: -f1)
kill -HUP "$dpid"
dm_wait "$log" "reload: .*d\.conf:$bad_line.*bogus" 10
dm_wait "$log" 'run=nightly@2026-03-10T02:00Z: ok' 20 # the old schedule
kill -0 "$dpid" 2>/dev/null || bad "hup: the daemon died on a bad config"
write_conf "daily 02:05"
kill -HUP "$dpid"
dm_wait "$log" 'daemon: reloaded .*1 schedule' 10
dm_wait "$log" 'run=nightly@2026-03-10T02:05Z: ok' 30
grep -Eq 'run[= ]nightly@2026-03-10T02:10Z' "$log" && bad "hup: the bad file's fire time ran"
dm_stop

# SIGTERM mid-transfer, then the clean resume.
rm -rf "$tmp/t" "$state" "$tmp/store" && mkdir -p "$tmp/t"
known=$tmp/known
: >"$known"
en_fill "$tmp/store" 8 262144 "$known"
write_conf "daily 02:00" "bandwidth = 1Mbit"
sed -i '/^bandwidth/d' "$conf"
sed -i '/^\[server s1\]/a bandwidth = 1Mbit' "$conf"
log=$tmp/term.log
dm_start "$log" 2026-03-10T01:59:58Z 1
dm_wait "$log" 'run=nightly@2026-03-10T02:00Z: syncing 1 server' 20
sleep 3
t0=$(now_ms)
dm_stop TERM
ms=$(($(now_ms) - t0))
[ "$ms" -lt 10000 ] || bad "term: the daemon took $ms ms to stop"
grep -q 'run=nightly@2026-03-10T02:00Z: interrupted' "$log" || bad "term: the run is not logged interrupted: $(tail -3 "$log")"
dm_fires nightly | grep -q "^$(dm_epoch 2026-03-10T02:00Z)|interrupted|" ||
  bad "term: the fire is not recorded interrupted: $(dm_fires nightly | tr '\n' ' ')"
st_check_versions "$tmp/t" "$known" "term"
"$DISTSYNC" -c "$conf" history s1 | grep -q cancelled || bad "term: history has no cancelled run"
n=$(find "$tmp/t/patches" -type f 2>/dev/null | wc -l)
[ "$n" -lt 8 ] || bad "term: all 8 files arrived before the stop: the test proves nothing"
sed -i '/^bandwidth/d' "$conf"
log=$tmp/resume.log
dm_start "$log" 2026-03-10T02:20:00Z 1
dm_wait "$log" 'run=nightly@2026-03-10T02:00Z: catch-up' 20 &&
  dm_wait "$log" 'run=nightly@2026-03-10T02:00Z: ok' 30
dm_stop
grep -qi 'busy\|lease' "$log" && bad "resume: the lease was not released: $(grep -i 'busy\|lease' "$log" | head -2)"
en_converged "$tmp/store" "$tmp/t" "resume"
st_exit daemon_signals
