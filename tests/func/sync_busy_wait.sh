#!/usr/bin/env bash
# A server another console holds (a valid lease file naming that console):
#  - sync reports it busy, not failed: "BUSY" in the text, "status": "busy"
#    in the JSON, exit 5, and nothing is written;
#  - sync --wait=2 waits (says so), then still exits 5;
#  - sync --wait=60 waits while the other console holds it and syncs once
#    the lease is released (exit 0, target equals the store).
#  - a server that fails (missing root) exits 4, not 5.
set -uo pipefail
. "$(dirname "$0")/lib/sync.bash"
st_init sync_busy_wait
store=$tmp/store t=$tmp/t
st_gen "$store" 0 "$tmp/known" --files 8 --max 2048 || bad "mkstore"
mkdir -p "$t/.distsync"
st_conf "$tmp/c.conf" "$store" "$tmp/state" srv "file://$t" local
ds() { "$DISTSYNC" -c "$tmp/c.conf" "$@"; }
ds scan >/dev/null 2>&1 || bad scan
hold() {
  printf 'distsync-lease 1\nconsole other-console\npid 4242\nhost otherhost\nexpiry %s\nflock 0\n' \
    $(($(date +%s) + 600)) >"$t/.distsync/lease"
}
hold
rc=0; ds sync srv >"$tmp/o" 2>"$tmp/e" || rc=$?
[ "$rc" = 5 ] || bad "busy server: exit $rc, not 5: $(cat "$tmp/o" "$tmp/e")"
grep -q "sync srv: BUSY" "$tmp/o" || bad "busy server text: $(cat "$tmp/o")"
grep -q "other-console" "$tmp/o" "$tmp/e" || bad "busy message does not name the holder"
grep -q "FAILED\|failed:" "$tmp/o" "$tmp/e" && bad "busy server reported as failed: $(cat "$tmp/o" "$tmp/e")"
[ -z "$(ls "$t" | grep -v '^\.distsync$')" ] || bad "busy server was written to"
rc=0; ds sync srv --json >"$tmp/o" 2>"$tmp/e" || rc=$?
[ "$rc" = 5 ] || bad "busy server --json: exit $rc"
grep -q '"status": *"busy"' "$tmp/o" || bad "busy JSON: $(head -c 400 "$tmp/o")"

start=$(date +%s)
rc=0; ds sync srv --wait=2 >"$tmp/o" 2>"$tmp/e" || rc=$?
[ "$rc" = 5 ] || bad "--wait=2 on a held server: exit $rc, not 5"
[ $(($(date +%s) - start)) -ge 2 ] || bad "--wait=2 did not wait"
grep -q "waiting" "$tmp/e" || bad "--wait does not say it waits: $(cat "$tmp/e")"

ds sync srv --wait=60 >"$tmp/o" 2>"$tmp/e" &
pw=$!
st_pids+=("$pw")
sleep 2
kill -0 "$pw" 2>/dev/null || bad "--wait=60 returned while the lease was held"
rm -f "$t/.distsync/lease" # the other console released it
rc=0; wait "$pw" || rc=$?
[ "$rc" = 0 ] || bad "--wait=60 after the release: exit $rc: $(cat "$tmp/o" "$tmp/e")"
st_check_converged "$store" "$t" "after --wait"

printf '\n[server gone]\nurl = file://%s/no/such/root\n' "$tmp" >>"$tmp/c.conf"
rc=0; ds sync gone >"$tmp/o" 2>"$tmp/e" || rc=$?
[ "$rc" = 4 ] || bad "failed server: exit $rc, not 4"
st_exit sync_busy_wait
