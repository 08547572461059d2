#!/usr/bin/env bash
# Issue 10: `gc --keep-history 0` deleted every run, including one from a
# minute earlier. Runs younger than a day now need --force: without it gc
# keeps them and says so; with it they go.
set -uo pipefail
. "$DS_SRC/tests/func/lib/sync.bash"
st_init gc_keep_history
export DISTSYNC_TEST_NO_FSYNC=1
ds() { "$DISTSYNC" -c "$tmp/c.conf" "$@"; }
runs() { ds history --json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))'; }
mkdir -p "$tmp/state" "$tmp/t"
st_gen "$tmp/store" 0 "$tmp/known" --files 4 --max 8 >/dev/null
st_conf "$tmp/c.conf" "$tmp/store" "$tmp/state" t "file://$tmp/t" local
ds sync t >/dev/null 2>&1 || bad "sync failed"
ds sync t >/dev/null 2>&1 || bad "second sync failed"
[ "$(runs)" = 2 ] || bad "expected 2 runs before gc, have $(runs)"
sleep 2 # the runs are now seconds old: before "now", well within a day

ds gc --keep-history 0 >"$tmp/out" 2>"$tmp/err" || bad "gc --keep-history 0 failed: $(cat "$tmp/err")"
[ "$(runs)" = 2 ] || bad "gc --keep-history 0 without --force deleted runs younger than a day: $(runs) left"
grep -q "runs younger than a day are kept (--keep-history 0 --force deletes them too)" "$tmp/err" ||
  bad "gc did not say why it kept the runs: $(cat "$tmp/err")"
grep -q "history: *0 runs pruned" "$tmp/out" || bad "gc text: $(cat "$tmp/out")"

sleep 2 # runs are timed in seconds: a run of this very second is not before "now"
ds gc --keep-history 0 --force >"$tmp/out" 2>&1 || bad "gc --keep-history 0 --force failed: $(cat "$tmp/out")"
[ "$(runs)" = 0 ] || bad "gc --keep-history 0 --force left $(runs) runs"
grep -q "history: *2 runs pruned" "$tmp/out" || bad "gc --force text: $(cat "$tmp/out")"
st_exit gc_keep_history
