#!/usr/bin/env bash
# Issue 10: -v means the same for every command that reads the configuration:
# a debug log on stderr that names the configuration file used, and for
# the commands that scan or reach servers the scan and each server's
# connection (protocol version, lease or read-only). Without -v, and with
# -q, no debug line appears. (-v printed nothing at all for these commands.)
set -uo pipefail
. "$(dirname "$0")/lib/sync.bash"
st_init cli_verbose
export DISTSYNC_TEST_NO_FSYNC=1
st_gen "$tmp/store" 0 "$tmp/known" --files 6 --max 512 >/dev/null || bad "mkstore"
mkdir -p "$tmp/t"
st_conf "$tmp/c.conf" "$tmp/store" "$tmp/state" srv "file://$tmp/t" local
ds() { "$DISTSYNC" -c "$tmp/c.conf" "$@"; }

# run NAME ARGS...: stderr of `distsync ARGS` in $tmp/NAME.err (exit ignored:
# plan and status exit 6 while work is pending)
run() {
  local name=$1
  shift
  ds "$@" >"$tmp/$name.out" 2>"$tmp/$name.err" || true
}
has() { grep -qF -- "$2" "$tmp/$1.err" || bad "$1: stderr lacks '$2': $(head -c 600 "$tmp/$1.err")"; }

for cmd in "config check" "scan" "files" "plan srv" "sync srv" "status" "verify srv" "history" "gc"; do
  name=${cmd%% *}
  # shellcheck disable=SC2086 # the command's words
  run "$name-v" -v $cmd
  has "$name-v" "debug: configuration $tmp/c.conf"
  # shellcheck disable=SC2086
  run "$name" $cmd
  # shellcheck disable=SC2086
  run "$name-q" -q $cmd
  for v in "$name" "$name-q"; do
    ! grep -q "debug:" "$tmp/$v.err" || bad "$v: debug lines without -v: $(grep debug: "$tmp/$v.err")"
  done
done
has scan-v "debug: scan: store $tmp/store"
has plan-v "debug: server srv: connected (protocol version"
grep -q "debug: server srv: connected (.*read-only)" "$tmp/plan-v.err" || bad "plan -v: not read-only"
has sync-v "lease held)"
has status-v "debug: server srv: connected"
has verify-v "debug: server srv: connected"
st_exit cli_verbose
