#!/usr/bin/env bash
# A cap of 0 pauses a server ("bandwidth = 0": nothing is sent, the run
# waits). SIGINT must still end such a sync in seconds: the wind-down
# (abort, manifest commit, lease release, BYE) passes the paused cap. Then,
# with the cap lifted, a rerun converges. Both transports, one paused
# before its first byte and one paused mid-file by SIGHUP.
set -uo pipefail
. "$(dirname "$0")/lib/sync.bash"
st_init engine_cancel_paused
export DISTSYNC_TEST_NO_FSYNC=1
store=$tmp/store
mkdir -p "$store/patches" "$tmp/a" "$tmp/b" "$tmp/state"
head -c 3000000 /dev/urandom >"$store/patches/big.bin"
conf() { # CAP_A CAP_B
  st_conf "$tmp/c.conf" "$store" "$tmp/state" a "file://$tmp/a" local b "file://$tmp/b" agent
  python3 - "$tmp/c.conf" "$1" "$2" <<'PY'
import sys
p, ca, cb = sys.argv[1:]
s = open(p).read()
s = s.replace("[server a]\n", "[server a]\nbandwidth = %s\n" % ca)
s = s.replace("[server b]\n", "[server b]\nbandwidth = %s\n" % cb)
open(p, "w").write(s)
PY
}
ds() { "$DISTSYNC" -c "$tmp/c.conf" "$@"; }

conf 0 2Mbit
ds scan >/dev/null 2>&1 || bad "scan"
start=$(date +%s)
"$DISTSYNC" -c "$tmp/c.conf" sync --all >"$tmp/out" 2>"$tmp/err" &
pid=$! # distsync itself, not a subshell
st_pids+=("$pid")
sleep 3
conf 0 0 # b is paused mid-file too
kill -HUP "$pid"
sleep 2
kill -INT "$pid"
rc=0
for _ in $(seq 1 300); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
if kill -0 "$pid" 2>/dev/null; then
  bad "a paused sync did not end within 30 s of SIGINT"
  kill -9 "$pid"
fi
wait "$pid" || rc=$?
took=$(($(date +%s) - start))
echo "  SIGINT of a paused sync: exit $rc after ${took} s in all"
[ "$rc" = 130 ] || bad "paused sync: exit $rc after SIGINT (want 130): $(tail -3 "$tmp/err")"
for t in a b; do
  [ ! -e "$tmp/$t/.distsync/lease" ] || bad "server $t: the lease was left behind"
done
conf off off
ds sync --all >"$tmp/out" 2>"$tmp/err" || bad "rerun failed: $(tail -3 "$tmp/err")"
st_check_converged "$store" "$tmp/a" "a after the rerun"
st_check_converged "$store" "$tmp/b" "b after the rerun"
st_exit engine_cancel_paused
