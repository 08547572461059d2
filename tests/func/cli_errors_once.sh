#!/usr/bin/env bash
# Issue 10: an error is reported once, where it happens, not logged and then
# wrapped again. A file that cannot be written on a target (a regular file
# where its folder should be) is one warning, through the in-process
# receiver (transport = local) and through an agent (transport = agent); a
# store that is gone, and a delta cache or retain store path that is not a
# folder, are one line each (with the reason); so is a server whose root is missing, in plan, sync, status
# (status printed it in its report and again on stderr) and verify. And output that cannot be written (a full disk: /dev/full) is
# a failure (exit 1, naming the reason), never a silent exit 0.
set -uo pipefail
. "$(dirname "$0")/lib/sync.bash"
st_init cli_errors_once
export DISTSYNC_TEST_NO_FSYNC=1
store=$tmp/store
mkdir -p "$store/patches/x" "$store/engines" "$store/definitions" "$tmp/loc/patches" "$tmp/ag/patches"
echo y >"$store/patches/x/y"
echo z >"$store/patches/z"
echo foreign >"$tmp/loc/patches/x" # where the folder patches/x must go
echo foreign >"$tmp/ag/patches/x"
st_conf "$tmp/c.conf" "$store" "$tmp/state" loc "file://$tmp/loc" local ag "file://$tmp/ag" agent \
  gone "file://$tmp/gone" local
ds() { "$DISTSYNC" -c "$tmp/c.conf" "$@"; }

# once COUNT_EXPECTED WHAT PATTERN FILE
once() {
  local n
  n=$(grep -c -- "$3" "$4")
  [ "$n" = "$1" ] || bad "$2: '$3' on stderr $n times, expected $1: $(cat "$4")"
}

for s in loc ag; do
  rc=0
  ds sync "$s" >"$tmp/$s.out" 2>"$tmp/$s.err" || rc=$?
  [ "$rc" = 4 ] || bad "sync $s with an unwritable file: exit $rc, expected 4: $(cat "$tmp/$s.err")"
  once 1 "sync $s, a failed file" "patches/x/y" "$tmp/$s.err"
  [ "$(cat "$tmp/$s/patches/z")" = z ] || bad "sync $s: the other file was not written"
done

for cmd in plan sync status verify; do
  rc=0
  ds "$cmd" gone >"$tmp/gone.out" 2>&1 || rc=$?
  [ "$rc" = 4 ] || bad "$cmd of a missing root: exit $rc, expected 4: $(cat "$tmp/gone.out")"
  once 1 "$cmd of a missing root" "target root $tmp/gone does not exist" "$tmp/gone.out"
done

mv "$store" "$tmp/store.away"
rc=0
ds scan >"$tmp/scan.out" 2>"$tmp/scan.err" || rc=$?
[ "$rc" = 1 ] || bad "scan of a missing store: exit $rc, expected 1"
once 1 "scan of a missing store" "No such file or directory" "$tmp/scan.err"
grep -q "$store" "$tmp/scan.err" || bad "scan error does not name the store: $(cat "$tmp/scan.err")"
rc=0
ds sync loc >"$tmp/sync.out" 2>"$tmp/sync.err" || rc=$?
[ "$rc" = 1 ] || bad "sync with a missing store: exit $rc, expected 1"
once 1 "sync's scan of a missing store" "No such file or directory" "$tmp/sync.err"
mv "$tmp/store.away" "$store"

rm -rf "$tmp/state/deltas"
echo not-a-folder >"$tmp/state/deltas"
rc=0
ds sync loc >"$tmp/dc.out" 2>"$tmp/dc.err" || rc=$?
[ "$rc" = 1 ] || bad "sync with state/deltas a file: exit $rc, expected 1: $(cat "$tmp/dc.err")"
once 1 "delta cache that is not a folder" "Not a directory" "$tmp/dc.err"
grep -q "$tmp/state/deltas" "$tmp/dc.err" || bad "delta cache error does not name it: $(cat "$tmp/dc.err")"
rm -f "$tmp/state/deltas"
rm -rf "$tmp/state/retain"
echo not-a-folder >"$tmp/state/retain"
rc=0
ds sync loc >"$tmp/rs.out" 2>"$tmp/rs.err" || rc=$?
[ "$rc" = 1 ] || bad "sync with state/retain a file: exit $rc, expected 1: $(cat "$tmp/rs.err")"
once 1 "retain store that is not a folder" "$tmp/state/retain" "$tmp/rs.err"
grep -q "Not a directory" "$tmp/rs.err" || bad "retain store error does not say why: $(cat "$tmp/rs.err")"
rm -f "$tmp/state/retain"

if [ -w /dev/full ]; then
  for cmd in "help" "version" "help sync" "config check" "files --json" "status --json --no-scan"; do
    rc=0
    # shellcheck disable=SC2086 # the command's words
    ds $cmd >/dev/full 2>"$tmp/full.err" || rc=$?
    [ "$rc" != 0 ] || bad "'$cmd' >/dev/full exited 0: its output was lost"
    grep -q "cannot write the output: No space left on device" "$tmp/full.err" ||
      bad "'$cmd' >/dev/full does not say why: $(cat "$tmp/full.err")"
  done
else
  echo "note: /dev/full not writable: output failure not tested"
fi
st_exit cli_errors_once
