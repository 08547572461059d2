#!/usr/bin/env bash
# SIGHUP to a running `distsync sync` re-reads the configuration's caps
# (issue 8): a broken file is reported once, naming file:line, and the old
# cap stays (the sync goes on); a good file with a higher cap applies to
# the transfer already running (3 MB at 256 kbit/s would take 94 s; after
# the reload to 50 Mbit/s it ends within seconds), byte-exact.
set -uo pipefail
. "$(dirname "$0")/lib/sync.bash"
st_init engine_reload
export DISTSYNC_TEST_NO_FSYNC=1
store=$tmp/store
mkdir -p "$store/patches" "$tmp/t"
head -c 3000000 /dev/urandom >"$store/patches/f.bin"
st_conf "$tmp/c.conf" "$store" "$tmp/state" c "file://$tmp/t" agent
printf 'bandwidth = 256kbit\n' >>"$tmp/c.conf"
cp "$tmp/c.conf" "$tmp/good.conf"
"$DISTSYNC" -c "$tmp/c.conf" scan >/dev/null 2>&1
"$DISTSYNC" -c "$tmp/c.conf" sync --all --json --no-scan >"$tmp/out" 2>"$tmp/err" &
pid=$!
st_pids+=("$pid")
sleep 2
line=$(($(wc -l <"$tmp/c.conf") + 1))
echo "this is not ini" >>"$tmp/c.conf"
kill -HUP "$pid"
sleep 1.5
kill -0 "$pid" 2>/dev/null || bad "a broken config on SIGHUP ended the sync: $(cat "$tmp/err")"
n=$(grep -c "c.conf:$line:.*caps stay" "$tmp/err")
[ "$n" = 1 ] || bad "broken config: want one error naming c.conf:$line, got $n: $(cat "$tmp/err")"
sed 's/256kbit/50Mbit/' "$tmp/good.conf" >"$tmp/c.conf"
t0=$(date +%s%N)
kill -HUP "$pid"
rc=0
wait "$pid" || rc=$?
ms=$((($(date +%s%N) - t0) / 1000000))
echo "after the reload to 50 Mbit/s the sync ended in $ms ms (exit $rc)"
[ "$rc" = 0 ] || bad "sync exit $rc: $(cat "$tmp/err")"
[ "$ms" -lt 20000 ] || bad "the new cap did not apply to the running transfer ($ms ms)"
grep -q '"status": *"ok"' "$tmp/out" || bad "run not ok: $(cat "$tmp/out")"
st_check_converged "$store" "$tmp/t" "after reload"
st_exit engine_reload
