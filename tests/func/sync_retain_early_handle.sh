#!/usr/bin/env bash
# One retain job runs at a time per engine (sync_retain.c): a run's early
# job (the warm-up's plan, begun while it connects) holds the engine's
# retain handle until its run collects it. A run must collect it once it is
# done, whatever phase the run is in: the other servers' jobs wait for that
# handle, and a server that has sent everything does not end before its own
# job ran. Server a's agent takes 3 s to start (a wrapper that sleeps, so a
# stays in READY); its warm-up retain job (3 new versions, 0.2 s each with
# DISTSYNC_TEST_RETAIN_DELAY_MS) ends long before. Server b, synced beside
# it, must end well before a's agent answers (before: b waited in its close
# for the handle a's finished job held until a started sending).
# Skips (exit 0) on a build without test hooks (cmake -DDS_TEST_HOOKS=ON).
set -uo pipefail
. "$(dirname "$0")/lib/sync.bash"
st_init sync_retain_early_handle
st_need_retain_hook sync_retain_early_handle
export DISTSYNC_TEST_NO_FSYNC=1
store=$tmp/store conf=$tmp/r.conf
mkdir -p "$store/patches" "$tmp/ta" "$tmp/tb"
dsbin=$(cd "$(dirname "$DISTSYNC")" && pwd)/$(basename "$DISTSYNC")
printf '#!/bin/sh\n[ -f %s/slow ] && sleep 3\nexec %s "$@"\n' "$tmp" "$dsbin" >"$tmp/slow-agent"
chmod +x "$tmp/slow-agent"
printf '[console]\nstore = %s\nstate = %s\n' "$store" "$tmp/state" >"$conf"
printf '\n[server a]\nurl = file://%s\ntransport = agent\nagent = %s\nclasses = patches\n' \
  "$tmp/ta" "$tmp/slow-agent" >>"$conf"
printf '\n[server b]\nurl = file://%s\ntransport = agent\nclasses = patches\n' "$tmp/tb" >>"$conf"
ds() { "$DISTSYNC" -c "$conf" "$@"; }
printf 'v0\n' >"$store/patches/keep.txt"
ds scan >/dev/null 2>&1 && ds sync a b >"$tmp/out0" 2>&1 || bad "first sync: $(tail -3 "$tmp/out0")"

for i in 1 2 3; do head -c 200000 /dev/urandom >"$store/patches/s$i.bin"; done
ds scan >/dev/null 2>&1 || bad "scan 2"
touch "$tmp/slow"
DISTSYNC_TEST_RETAIN_DELAY_MS=200 ds sync a b >"$tmp/out1" 2>&1 || bad "sync 2: $(tail -3 "$tmp/out1")"
grep '^sync [ab]:' "$tmp/out1" | sed 's/^/  /'
eb=$(sed -n 's/^sync b: .*, \([0-9.]*\) s$/\1/p' "$tmp/out1")
ea=$(sed -n 's/^sync a: .*, \([0-9.]*\) s$/\1/p' "$tmp/out1")
[ -n "$eb" ] && [ -n "$ea" ] || bad "no elapsed time on the summary lines: $(cat "$tmp/out1")"
[ -n "$ea" ] && [ "$(echo "$ea >= 3" | bc)" = 1 ] || bad "a ended in ${ea}s: its agent did not hold it 3 s"
[ -n "$eb" ] && [ "$(echo "$eb < 2" | bc)" = 1 ] ||
  bad "b took ${eb}s: it waited for the retain handle a's finished job held"
[ "$(sqlite3 "$tmp/state/retain/retain.db" 'SELECT count(*) FROM version')" = 4 ] ||
  bad "after sync 2: not the 4 versions retained"
st_check_converged "$store" "$tmp/ta" "a after sync 2"
st_check_converged "$store" "$tmp/tb" "b after sync 2"
st_exit "sync_retain_early_handle"
