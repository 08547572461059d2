#!/usr/bin/env bash
# The warm-up (deltas computed while a run connects, sync_prefetch.c) only
# guesses what the run will send: `sync --class patches` sends no engines
# file, so it computes no engines delta either. Before, the warm-up planned
# every class of the server: a --class patches run computed (and waited
# for) the deltas of the engines files changed since, and sync --json said
# "computed": 2 for a run that sent no delta. Checked with file:// targets
# (the warm-up starts at the run's first step, before its open):
# - --class patches, only engines changed since: no delta computed, none in
#   the delta cache, the engines files on the target not touched;
# - the engines run after it computes its deltas itself (4) and converges.
set -uo pipefail
: "${DISTSYNC:?}" "${DS_SRC:?}"
source "$DS_SRC/tests/func/lib/sync.bash"
st_init sync_warm_class
export DISTSYNC_TEST_NO_FSYNC=1
store=$tmp/store
ds() { "$DISTSYNC" -c "$tmp/c.conf" "$@"; }
mkdir -p "$store/patches" "$store/engines" "$tmp/t" "$tmp/state"
for i in 1 2 3 4; do head -c 300000 /dev/urandom >"$store/engines/e$i.bin"; done
head -c 1000 /dev/urandom >"$store/patches/p.bin"
printf '[console]\nstore = %s\nstate = %s\n\n[server a]\nurl = file://%s\nclasses = patches engines\n' \
  "$store" "$tmp/state" "$tmp/t" >"$tmp/c.conf"
ds sync --all >"$tmp/first.out" 2>&1 || bad "first sync failed: $(tail -3 "$tmp/first.out")"
for i in 1 2 3 4; do # a delta each
  printf 'sixteen bytes!!!' | dd of="$store/engines/e$i.bin" bs=1 seek=150000 conv=notrunc 2>/dev/null
done
old=$(sha256sum "$tmp/t/engines/e1.bin")
ds scan >/dev/null 2>&1 || bad "scan"

deltas() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["deltas"]["computed"])' "$1"; }
ds -v sync --no-scan --class patches --json a >"$tmp/p.json" 2>"$tmp/p.err" ||
  bad "sync --class patches failed: $(tail -3 "$tmp/p.err")"
n=$(deltas "$tmp/p.json")
[ "$n" = 0 ] || bad "sync --class patches computed $n deltas (only engines files changed)"
n=$(find "$tmp/state/deltas" -type f -name '*.zp*' 2>/dev/null | wc -l)
[ "$n" = 0 ] || bad "$n deltas in the cache after sync --class patches"
[ "$(sha256sum "$tmp/t/engines/e1.bin")" = "$old" ] || bad "--class patches touched an engines file"

ds -v sync --no-scan --class engines --json a >"$tmp/e.json" 2>"$tmp/e.err" ||
  bad "sync --class engines failed: $(tail -3 "$tmp/e.err")"
n=$(deltas "$tmp/e.json")
[ "$n" = 4 ] || bad "sync --class engines computed $n deltas, 4 expected"
st_check_converged "$store" "$tmp/t" "a"
st_exit sync_warm_class
