#!/usr/bin/env bash
# Each server's result line is printed as that server ends, not when the
# whole batch ends (issue 8): `sync fast slow`, with slow capped to
# 1 Mbit/s for about 4 s of data and fast uncapped, prints "sync fast: ok"
# while the process is still syncing slow (its stdout a file, not a
# terminal: plain lines). Both lines are there at the end, once each; with
# --json the output stays one document (no line before the end).
set -uo pipefail
. "$(dirname "$0")/lib/sync.bash"
st_init sync_result_stream
export DISTSYNC_TEST_NO_FSYNC=1
store=$tmp/store
mkdir -p "$store/patches" "$tmp/t-fast" "$tmp/t-slow" "$tmp/j-fast" "$tmp/j-slow"
head -c 500000 /dev/urandom >"$store/patches/p.bin"
for k in t j; do
  st_conf "$tmp/$k.conf" "$store" "$tmp/state-$k" fast "file://$tmp/$k-fast" agent \
    slow "file://$tmp/$k-slow" agent
  printf 'bandwidth = 1Mbit\n' >>"$tmp/$k.conf" # the last server: slow
done

# run CONF OUT [ARGS]: starts a sync in the background; sets pid
run() {
  "$DISTSYNC" -c "$1" sync fast slow "${@:3}" >"$2" 2>"$2.err" &
  pid=$!
  st_pids+=("$pid")
}
# first_line OUT PATTERN: waits (up to 30 s) for PATTERN in OUT; prints
# "running" when the sync was still running when it appeared, "ended" when
# it had ended, nothing when it never appeared
first_line() {
  for _ in $(seq 1 3000); do
    if grep -q "$2" "$1"; then
      kill -0 "$pid" 2>/dev/null && echo running || echo ended
      return
    fi
    kill -0 "$pid" 2>/dev/null || { grep -q "$2" "$1" && echo ended; return; }
    sleep 0.01
  done
}

run "$tmp/t.conf" "$tmp/out"
seen=$(first_line "$tmp/out" '^sync fast: ok')
[ "$seen" = running ] || bad "the fast server's line came ${seen:-never}, not while the slow server synced: $(cat "$tmp/out" "$tmp/out.err" | head -c 600)"
grep -q '^sync slow: ok' "$tmp/out" && bad "the slow server's line was out with the fast one's: $(cat "$tmp/out")"
wait "$pid" || bad "sync failed: $(head -c 600 "$tmp/out.err")"
[ "$(grep -c '^sync fast: ok' "$tmp/out")" = 1 ] || bad "fast: not exactly one result line: $(cat "$tmp/out")"
[ "$(grep -c '^sync slow: ok' "$tmp/out")" = 1 ] || bad "slow: not exactly one result line: $(cat "$tmp/out")"
st_check_converged "$store" "$tmp/t-fast" fast
st_check_converged "$store" "$tmp/t-slow" slow

# --json: one document, written at the end
run "$tmp/j.conf" "$tmp/jout" --json
sleep 2
[ -s "$tmp/jout" ] && bad "--json printed before the batch ended: $(head -c 300 "$tmp/jout")"
wait "$pid" || bad "sync --json failed: $(head -c 600 "$tmp/jout.err")"
python3 - "$tmp/jout" <<'PY' || bad "--json is not one document with both servers: $(head -c 600 "$tmp/jout")"
import json, sys
d = json.load(open(sys.argv[1]))
assert sorted(s["server"] for s in d["servers"]) == ["fast", "slow"], d
PY
st_exit sync_result_stream
