#!/usr/bin/env bash
# New-admin pass: a server added to the configuration while the daemon runs
# is unknown to the daemon until a reload, and `sync NEW` (which goes
# through the daemon) said "unknown server 'NEW' (not in FILE)" about a
# FILE that plainly holds it; `status NEW` said "no server named 'NEW' in
# the daemon's configuration". Both now say the daemon works from the file
# as it last loaded it and how to reload it; after a SIGHUP the same sync
# works.
set -uo pipefail
. "$(dirname "$0")/lib/sync.bash"
. "$(dirname "$0")/lib/engine.bash"
. "$(dirname "$0")/lib/daemon.bash"
st_init daemon_config_stale

state=$tmp/state
conf=$tmp/d.conf
en_fill "$tmp/store" 2 4096
en_head "$conf" "$tmp/store" "$state"
en_server "$conf" s1 "$tmp/t1" local
ds() { "$DISTSYNC" -c "$conf" "$@"; }
ds scan >/dev/null 2>&1 || bad "scan failed"
dm_start "$tmp/daemon.log" 2026-03-10T12:00:00Z 1
dm_wait "$tmp/daemon.log" 'API on' 20

en_server "$conf" s2 "$tmp/t2" local # added after the daemon loaded the file
out=$(ds sync s2 2>&1)
[[ $out == *"unknown server 's2'"* ]] || bad "sync of a server the daemon does not know yet: $out"
[[ $out == *"as the daemon last loaded it"*"reload the daemon: SIGHUP or POST /v1/reload"* ]] ||
  bad "sync of a new server through a daemon that did not reload: no hint to reload it: $out"
out=$(ds status --offline s2 2>&1)
[[ $out == *"reload the daemon: SIGHUP or POST /v1/reload"* ]] ||
  bad "status of a new server through a daemon that did not reload: no hint to reload it: $out"
[ -e "$tmp/t2/patches/f1.bin" ] && bad "the unknown server was synced"

kill -HUP "$dpid"
dm_wait "$tmp/daemon.log" 'reload' 20
ds sync s2 >"$tmp/out" 2>&1 || bad "sync s2 after the reload failed: $(cat "$tmp/out")"
[ -e "$tmp/t2/patches/f1.bin" ] || bad "sync s2 after the reload shipped nothing: $(cat "$tmp/out")"
dm_stop
exit $fail
