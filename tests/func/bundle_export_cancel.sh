#!/usr/bin/env bash
# An export stopped by SIGTERM or Ctrl-C (SIGINT) mid-way removes its
# FILE.tmp-PID and exits 128+signal, FILE untouched; an export after one
# that died (kill -9) removes that one's FILE.tmp-PID, but not one whose
# PID still runs. DISTSYNC_TEST_EXPORT_PAUSE_MS=200 (a test build's hook:
# a pause before each of the 41 data entries) makes the export slow enough
# to stop while it writes. An --out that is a folder is refused first.
set -uo pipefail
. "$(dirname "$0")/lib/sync.bash"
. "$(dirname "$0")/lib/bundle.bash"
st_init bundle_export_cancel
"$DISTSYNC" version | grep -q 'test hooks: on' || { echo "SKIP: needs a test build (DS_TEST_HOOKS=ON)"; exit 77; }
export DISTSYNC_TEST_NO_FSYNC=1
store=$tmp/store
bundle_conf "$tmp/c.conf" "$store" "$tmp/state"
bundle_store "$store" 0 40
"$DISTSYNC" -c "$tmp/c.conf" scan >/dev/null 2>&1 || bad "scan failed"
mkdir "$tmp/bund"
echo old >"$tmp/bund/b.dsb"

# export_stopped SIG: starts a slow export, sends SIG once its temporary
# file has data, and checks what it leaves.
export_stopped() {
  local sig=$1 pid rc=0 want
  DISTSYNC_TEST_EXPORT_PAUSE_MS=200 "$DISTSYNC" -c "$tmp/c.conf" export off --out "$tmp/bund/b.dsb" --full \
    >"$tmp/x.out" 2>"$tmp/x.err" &
  pid=$!
  st_pids+=("$pid")
  for _ in $(seq 600); do
    [ -s "$tmp/bund/b.dsb.tmp-$pid" ] && break
    sleep 0.05
  done
  [ -s "$tmp/bund/b.dsb.tmp-$pid" ] || bad "$sig: no data in b.dsb.tmp-$pid after 30 s"
  kill -s "$sig" "$pid"
  wait "$pid" || rc=$?
  want=$((128 + $(kill -l "$sig")))
  [ "$rc" = "$want" ] || bad "export stopped by SIG$sig: exit $rc, expected $want: $(cat "$tmp/x.err")"
  [ ! -e "$tmp/bund/b.dsb.tmp-$pid" ] || bad "export stopped by SIG$sig left b.dsb.tmp-$pid"
  [ "$(cat "$tmp/bund/b.dsb")" = old ] || bad "export stopped by SIG$sig changed b.dsb"
  grep -q 'cancelled' "$tmp/x.err" || bad "export stopped by SIG$sig does not say so: $(cat "$tmp/x.err")"
}
export_stopped TERM
export_stopped INT

# one killed by kill -9 leaves its file; the next export removes it
DISTSYNC_TEST_EXPORT_PAUSE_MS=200 "$DISTSYNC" -c "$tmp/c.conf" export off --out "$tmp/bund/b.dsb" --full \
  >/dev/null 2>&1 &
dead=$!
for _ in $(seq 600); do
  [ -s "$tmp/bund/b.dsb.tmp-$dead" ] && break
  sleep 0.05
done
kill -9 "$dead"
wait "$dead" 2>/dev/null
[ -e "$tmp/bund/b.dsb.tmp-$dead" ] || bad "kill -9 left no b.dsb.tmp-$dead (the test needs one)"
sleep 60 &
live=$!
st_pids+=("$live")
echo keep >"$tmp/bund/b.dsb.tmp-$live"
echo keep >"$tmp/bund/other.dsb.tmp-$dead"
st_expect_rc 0 "an export after the kill" "$DISTSYNC" -c "$tmp/c.conf" export off --out "$tmp/bund/b.dsb" --full
[ ! -e "$tmp/bund/b.dsb.tmp-$dead" ] || bad "the next export left the dead export's b.dsb.tmp-$dead"
[ -e "$tmp/bund/b.dsb.tmp-$live" ] || bad "the export removed b.dsb.tmp-$live, whose PID runs"
[ -e "$tmp/bund/other.dsb.tmp-$dead" ] || bad "the export removed another bundle's temporary file"
tar --zstd -tf "$tmp/bund/b.dsb" >/dev/null 2>&1 || bad "the export after the kill is not a bundle"
kill "$live" 2>/dev/null

# --out naming a folder is refused before anything is written (it wrote the
# whole bundle, then failed to rename it over the folder)
mkdir "$tmp/bund/adir"
st_expect_rc 1 "export --out a folder" "$DISTSYNC" -c "$tmp/c.conf" export off --out "$tmp/bund/adir" --full
grep -qF "$tmp/bund/adir: Is a directory (--out names the bundle file)" "$tmp/err" ||
  bad "export --out a folder: $(cat "$tmp/err")"
st_exit bundle_export_cancel
