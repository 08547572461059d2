#!/usr/bin/env bash
# A slow link is never a failure (issue 8, "Engine tests": the 64 kbit/s
# server whose sync outlasts a lease period). `lease_ttl = 6`, two file://
# servers capped at 64kbit, each sent one 144 kB incompressible file: 18 s
# at the cap, three lease periods. One is in-process; the other's agent
# sits behind a 128 kbit/s link (lib/slow_agent.py at 16000 B/s), twice
# the cap, as a WAN link under its cap would. The lease renewals must jump
# the queued data (a renewal queued behind the file arrives after the
# lease expired, and the publish fails):
#  - the sync succeeds and both targets equal the store (manifest too);
#  - it took over two lease periods (the cap held, so the renewals were
#    needed) and not absurdly long;
#  - a watcher sampling the targets' lease files never saw an expired
#    lease, and saw its expiry renewed at least twice;
#  - history records ok runs with at least the file's bytes on the wire.
set -uo pipefail
. "$(dirname "$0")/lib/sync.bash"
. "$(dirname "$0")/lib/engine.bash"
st_init engine_slowlink
store=$tmp/store conf=$tmp/d.conf
en_fill "$store" 1 144000
en_head "$conf" "$store" "$tmp/state" "lease_ttl = 6"
en_server "$conf" loc "$tmp/t/loc" local "bandwidth = 64kbit"
en_server "$conf" ag "$tmp/t/ag" agent "bandwidth = 64kbit" "agent = $DS_SRC/tests/func/lib/slow_agent.py"
export DS_SLOW_BPS=16000
"$DISTSYNC" -c "$conf" scan >/dev/null 2>&1 || bad "scan"

en_watch "$tmp/stop" "$tmp/watch" "$tmp/t/loc" "$tmp/t/ag"
t0=$(now_ms)
rc=0
"$DISTSYNC" -c "$conf" sync --all --no-scan >"$tmp/out" 2>"$tmp/err" || rc=$?
ms=$(($(now_ms) - t0))
touch "$tmp/stop"
wait "$watch_pid"
echo "sync --all: exit $rc in $ms ms (144 kB at 64kbit: 18 s; lease_ttl 6 s)"
[ "$rc" = 0 ] || bad "sync exited $rc: $(head -c 600 "$tmp/err")"
[ "$ms" -ge 12000 ] || bad "the sync took $ms ms, under two lease periods: the 64kbit cap did not hold, the test proves nothing"
[ "$ms" -le 60000 ] || bad "the sync took $ms ms for 18 s of data at the cap"
en_converged "$store" "$tmp/t/loc" "loc"
en_converged "$store" "$tmp/t/ag" "ag"

python3 - "$tmp/watch" "$tmp/t/loc" "$tmp/t/ag" <<'PY' || fail=1
import json, sys
w = json.load(open(sys.argv[1]))
print(f"watcher: {w['samples']} samples, expiries seen {w['expiries']}")
if w["stale"]:
    sys.exit("FAIL: a lease was seen expired during the sync: " + "; ".join(w["stale"][:3]))
for root in sys.argv[2:]:
    if w["expiries"].get(root, 0) < 3:
        sys.exit(f"FAIL: {root}: lease expiry renewed {w['expiries'].get(root, 0) - 1} times during an 18 s sync with lease_ttl 6")
PY

"$DISTSYNC" -c "$conf" history --json >"$tmp/hist" 2>"$tmp/herr" || bad "history --json failed: $(head -c 300 "$tmp/herr")"
python3 "$ENGINE_CHECK" runs "$tmp/hist" loc ag >"$tmp/runs" || bad "reading history"
while read -r srv st start end wire; do
  echo "run $srv: $st, $((end - start)) s, $wire bytes on the wire"
  [ "$st" = ok ] || bad "$srv: history says '$st', want ok"
  [ "$wire" -ge 144000 ] || bad "$srv: history records $wire wire bytes for a 144000-byte incompressible file"
done <"$tmp/runs"
st_exit engine_slowlink
