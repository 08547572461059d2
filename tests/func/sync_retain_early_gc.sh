#!/usr/bin/env bash
# A gc beside a sync never frees a version the sync sends (cmd_gc.c: a
# sync records a server's manifest before it retains the versions). Since
# a run retains its new versions early, as it starts sending, a gc in
# another process may free them before the manifest naming them is
# recorded; the run must then retain them again once it committed, not
# trust what it remembered retaining. With a pause per version retained
# (DISTSYNC_TEST_RETAIN_DELAY_MS) and 3 files sent at 1 MB/s, a
# `distsync gc` runs once the early versions are retained and files are
# still on their way: after the sync, every version of the target's
# manifest is retained (4).
# Skips (exit 0) on a build without test hooks (cmake -DDS_TEST_HOOKS=ON).
set -uo pipefail
. "$(dirname "$0")/lib/sync.bash"
st_init sync_retain_early_gc
st_need_retain_hook sync_retain_early_gc
export DISTSYNC_TEST_NO_FSYNC=1
st_retain_server

for i in 1 2 3; do head -c 1000000 /dev/urandom >"$store/patches/s$i.bin"; done
ds scan >/dev/null 2>&1 || bad "scan 2"
DISTSYNC_TEST_RETAIN_DELAY_MS=200 "$DISTSYNC" -c "$conf" sync a >"$tmp/out1" 2>&1 &
pid=$!
st_pids+=("$pid")
gced=0
while kill -0 "$pid" 2>/dev/null; do
  n=$(st_retained) published=$(find "$tmp/t/patches" -name 's*.bin' | wc -l)
  if [ "$gced" = 0 ] && [ "$n" -gt 1 ] && [ "$published" -lt 3 ]; then
    ds gc >"$tmp/gc" 2>&1 || bad "gc beside the sync: $(tail -3 "$tmp/gc")"
    gced=1
    echo "  gc beside the sync: $n versions retained before, $(st_retained) after"
  fi
  sleep 0.05
done
wait "$pid" || bad "sync 2: $(tail -3 "$tmp/out1")"
[ "$gced" = 1 ] || bad "no version was retained while files were still on their way"
[ "$(st_retained)" = 4 ] ||
  bad "a gc beside the sync: $(st_retained) versions retained after it, 4 expected (the manifest's)"
st_check_converged "$store" "$tmp/t" "after sync 2"
st_exit "sync_retain_early_gc"
