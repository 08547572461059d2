#!/usr/bin/env bash
# Issue 10: the documented exit statuses (distsync(1) EXIT STATUS, each
# command's --help), one case each that no other test covers, and the
# cheap ones again so this table reads as the whole contract:
#   0 ok; 1 console failure (the catalog cannot be opened: gc, history,
#   files, status); 2 usage or config (unknown command, unknown server, a bad
#   config, trust of a file:// server or an unknown one); 4 a server failed or
#   unreachable (plan, sync, verify of a missing root; trust of an ssh://
#   server that refuses the connection); 6 status with work pending.
# Elsewhere: 3 (status_exit, verify_drift), 4 and 6 of status and its JSON
# (status_exit), 5 (sync_busy_wait), 23 (scan_unreadable), 25 (prune_guard),
# 130/143 (sync_cancel), 4 for a changed host key and 2 with no terminal
# (ssh_hostkey), 1 when stdout cannot be written (cli_errors_once).
set -uo pipefail
. "$(dirname "$0")/lib/sync.bash"
st_init cli_exit_codes
export DISTSYNC_TEST_NO_FSYNC=1
st_gen "$tmp/store" 0 "$tmp/known" --files 4 --max 256 >/dev/null || bad "mkstore"
mkdir -p "$tmp/t"
st_conf "$tmp/c.conf" "$tmp/store" "$tmp/state" srv "file://$tmp/t" local gone "file://$tmp/gone" local
printf '\n[server far]\nurl = ssh://distsync@127.0.0.1:1/srv\nconnect_timeout = 5s\n' >>"$tmp/c.conf"
printf '[console]\nstore = %s\nstate = %s\nbogus = 1\n' "$tmp/store" "$tmp/state" >"$tmp/bad.conf"

# expect CODE NEEDLE ARGS...: `distsync ARGS` exits CODE and says NEEDLE
expect() {
  local want=$1 needle=$2 rc=0
  shift 2
  timeout 60 "$DISTSYNC" "$@" >"$tmp/out" 2>&1 || rc=$?
  [ "$rc" = "$want" ] || bad "distsync $*: exit $rc, want $want: $(head -c 400 "$tmp/out")"
  grep -qF -- "$needle" "$tmp/out" || bad "distsync $*: output lacks '$needle': $(head -c 400 "$tmp/out")"
}
c=(-c "$tmp/c.conf")

expect 0 "valid" "${c[@]}" config check
expect 2 "bogus" -c "$tmp/bad.conf" config check
expect 2 "unknown command 'sycn'" "${c[@]}" sycn
expect 2 "nosuch" "${c[@]}" sync nosuch
expect 0 "scan:" "${c[@]}" scan
expect 6 "srv" "${c[@]}" status srv --no-scan
expect 0 "srv" "${c[@]}" plan srv --no-scan
expect 0 "sync srv: ok" "${c[@]}" sync srv --no-scan
expect 0 "srv" "${c[@]}" status srv --no-scan
for cmd in plan sync verify; do
  expect 4 "server gone: target root $tmp/gone does not exist" "${c[@]}" "$cmd" gone
done
expect 2 "trust srv: not an ssh:// server" "${c[@]}" trust srv
expect 2 "nosuch" "${c[@]}" trust nosuch
expect 4 "trust far: distsync@127.0.0.1:1: connect: Connection refused" "${c[@]}" trust far --yes

mv "$tmp/state/catalog.db" "$tmp/catalog.away"
mkdir "$tmp/state/catalog.db" # a catalog that cannot be opened
for cmd in gc history files "status --no-scan"; do
  # shellcheck disable=SC2086 # the command's words
  expect 1 "$tmp/state/catalog.db: cannot open" "${c[@]}" $cmd
done
st_exit cli_exit_codes
