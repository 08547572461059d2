#!/usr/bin/env bash
# The upgrade gate under load (issue 14): 2000 simulated clients of two
# sites over 32 keep-alive connections (tests/func/lib/gate_load.py) ask,
# hold, heartbeat and report against the real daemon, which is killed -9
# in the middle and restarted on the same state. Every grant and release is
# logged; the test fails when
#  - any instant has more grants alive than a cap: global, per site, per
#    server (a spare server takes the overflow);
#  - a client gets a second token while its first is unreported, or the
#    heartbeat of a held grant says unknown after the restart;
#  - at the end the gate does not count every client succeeded and none
#    granted (no grant forgotten, none doubled, no slot leaked).
set -uo pipefail
. "$(dirname "$0")/lib/sync.bash"
. "$(dirname "$0")/lib/engine.bash"
. "$(dirname "$0")/lib/daemon.bash"
. "$(dirname "$0")/lib/api.bash"
st_init gate_load

gate_init 10000
gate_console 'max_concurrent_upgrades = 24'
cat >>"$conf" <<CONF

[site paris]
clients = par-*
max_concurrent_upgrades = 14

[site berlin]
clients = ber-*
max_concurrent_upgrades = 12
CONF
gate_rollout all 'par-* ber-*' 'lease = 15m'
for s in p1:paris:6 p2:paris:5 p3:paris:0 b1:berlin:5 b2:berlin:0; do
  IFS=: read -r name site cap <<<"$s"
  mkdir -p "$tmp/$name"
  printf '\n[server %s]\nurl = file://%s\nsite = %s\n' "$name" "$tmp/$name" "$site" >>"$conf"
  [ "$cap" = 0 ] || echo "max_concurrent_upgrades = $cap" >>"$conf"
done
gate_up gate_load 1 p1 p2 p3 b1 b2

python3 "$DS_SRC/tests/func/lib/gate_load.py" --port "$port" --token "$entok" --optoken "$optok" \
  --site par --site ber --clients 1000 --threads 32 --hold 30 --retry 5 --deadline 50 \
  --cap global:24 --cap site:par:14 --cap site:ber:12 --cap server:p1:6 --cap server:p2:5 \
  --cap server:b1:5 --started "$tmp/started" >"$tmp/load.out" 2>"$tmp/load.err" &
lpid=$!
st_pids+=("$lpid")
for _ in $(seq 1 100); do [ -e "$tmp/started" ] && break; sleep 0.1; done
[ -e "$tmp/started" ] || bad "no grant within 10 s"
sleep 0.7
kill -9 "$dpid"
wait "$dpid" 2>/dev/null
sleep 0.5
dm_start "$log" 2026-03-10T01:00:10Z 1
rc=0
wait "$lpid" || rc=$?
[ "$rc" = 0 ] || bad "the load found violations (exit $rc): $(head -c 2000 "$tmp/load.err")"
out=$(cat "$tmp/load.out")
echo "gate_load: $out"
python3 - "$out" <<'PY' || bad "the load's figures: $out"
import json, sys
r = json.loads(sys.argv[1])
assert r["clients"] == 2000 and r["conn_errors"] > 0, "the kill did not happen under load"
p = r["peak"]
# the caps were reached (the test loads them), never passed (checked per instant)
assert p["global"] == 24 or p["site:par"] == 14 or p["site:ber"] == 12, p
PY
dm_stop
st_exit gate_load
