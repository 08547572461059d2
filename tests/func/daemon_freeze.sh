#!/usr/bin/env bash
# Freeze windows (issue 13): distsync freeze / thaw, state in the catalog.
#  - freeze s1 --reason: status lists it frozen with the reason; sync s1
#    skips it and says so (exit 0, target untouched); the daemon's run
#    skips s1 (logged as frozen) and syncs s2;
#  - thaw s1: the daemon's next fire (a catch-up after a restart) syncs s1;
#  - --until in the past is refused; a freeze whose --until passed is over.
set -uo pipefail
. "$(dirname "$0")/lib/sync.bash"
. "$(dirname "$0")/lib/engine.bash"
. "$(dirname "$0")/lib/daemon.bash"
st_init daemon_freeze

state=$tmp/state
conf=$tmp/d.conf
en_fill "$tmp/store" 2 4096
en_head "$conf" "$tmp/store" "$state"
en_server "$conf" s1 "$tmp/t1" local
en_server "$conf" s2 "$tmp/t2" local
printf '\n[schedule nightly]\nwhen = daily 02:00\ntz = UTC\nservers = s1 s2\n' >>"$conf"

out=$("$DISTSYNC" -c "$conf" freeze s1 --reason "disk swap" 2>&1) || bad "freeze exited $?: $out"
echo "$out" | grep -q 'server s1 is frozen until thawed (disk swap)' || bad "freeze said: $out"
out=$("$DISTSYNC" -c "$conf" status s1 2>/dev/null)
echo "$out" | grep -q '^  frozen: server s1 is frozen until thawed (disk swap)' ||
  bad "status does not list s1 as frozen: $out"
rc=0
out=$("$DISTSYNC" -c "$conf" sync s1 2>&1) || rc=$?
[ "$rc" = 0 ] || bad "sync of a frozen server exited $rc: $out"
echo "$out" | grep -q 'sync s1: FROZEN.*disk swap.*not synced' || bad "sync does not say s1 is frozen: $out"
[ -z "$(find "$tmp/t1" -type f)" ] || bad "sync wrote to a frozen server"

log=$tmp/frozen.log
dm_start "$log" 2026-03-10T01:59:58Z 1
dm_wait "$log" 'run=nightly@2026-03-10T02:00Z: ok' 20
dm_stop
grep -q 'run=nightly@2026-03-10T02:00Z server=s1: skipped (frozen).*disk swap' "$log" ||
  bad "the daemon's run does not say s1 was skipped as frozen: $(grep 'server s1' "$log")"
[ -z "$(find "$tmp/t1" -type f)" ] || bad "the daemon wrote to a frozen server"
en_converged "$tmp/store" "$tmp/t2" "s2 (not frozen)"

out=$("$DISTSYNC" -c "$conf" thaw s1 2>&1) || bad "thaw exited $?: $out"
echo "$out" | grep -q 'server s1 thawed' || bad "thaw said: $out"
log=$tmp/thawed.log
dm_start "$log" 2026-03-11T02:30:00Z 1
dm_wait "$log" 'run=nightly@2026-03-11T02:00Z: ok' 20
dm_stop
en_converged "$tmp/store" "$tmp/t1" "s1 after thaw"

rc=0
"$DISTSYNC" -c "$conf" freeze s1 --until 2020-01-01T00:00:00Z >/dev/null 2>&1 || rc=$?
[ "$rc" = 2 ] || bad "freeze --until in the past exited $rc, expected 2"
"$DISTSYNC" -c "$conf" freeze s2 --until "$(date -u -d '+2 sec' +%Y-%m-%dT%H:%M:%SZ)" >/dev/null ||
  bad "freeze --until (in 2 s) failed"
echo more >"$tmp/store/engines/more.txt"
sleep 3
out=$("$DISTSYNC" -c "$conf" sync s2 2>&1) || bad "sync after the freeze ended exited $?: $out"
[ -f "$tmp/t2/engines/more.txt" ] || bad "a freeze whose --until passed still held: $out"
st_exit daemon_freeze
