#!/usr/bin/env bash
# Rings defined by globs (issue 14): without size = a ring's thresholds
# count only the clients seen so far, so
#  - `config check` warns about such a ring (file, line, ring, "size =")
#    and not about a ring with size =, and still succeeds;
#  - a client seen once counts as a member for good: par-03 asks while the
#    rollout is paused (answer none, nothing else written) and ring pilot
#    has 1 member in the daemon (GET /v1/rollouts), in `distsync rollout
#    status --json` (another process reading the state) and after the
#    daemon restarts.
set -uo pipefail
. "$(dirname "$0")/lib/sync.bash"
. "$(dirname "$0")/lib/engine.bash"
. "$(dirname "$0")/lib/daemon.bash"
. "$(dirname "$0")/lib/api.bash"
st_init gate_ring_size

gate_init 1000
mkdir -p "$tmp/t1"
gate_console
cat >>"$conf" <<CONF

[site paris]
clients = par-*

[server s1]
url = file://$tmp/t1
site = paris

[package agent-7]
product = agent
version = 7.0
path = engines/agent-7.0.msi

[ring pilot]
members = par-0*

[ring wide]
members = par-*
size = 40

[rollout agent]
product = agent
version = 7.0
rings = pilot, wide
token_file = $tmp/entoken
CONF
"$DISTSYNC" -c "$conf" config check >/dev/null 2>"$tmp/check.err" || bad "config check failed: $(cat "$tmp/check.err")"
grep -q "warning: .*d.conf:[0-9]*: \[ring pilot\] members = globs without size =" "$tmp/check.err" ||
  bad "config check does not warn about ring pilot (globs, no size =): $(cat "$tmp/check.err")"
grep -q "ring wide" "$tmp/check.err" && bad "config check warns about ring wide, which has size =: $(cat "$tmp/check.err")"

"$DISTSYNC" -c "$conf" rollout pause agent --reason "hold" >/dev/null || bad "rollout pause failed"
log=$tmp/daemon.log
dm_start "$log" 2026-03-10T01:00:00Z 1
api_wait_up "$log" || st_exit gate_ring_size
api_url=http://127.0.0.1:$port
api POST /v1/upgrade/request '{"client":"par-03","product":"agent","version":"6.0"}' -H "Authorization: Bearer $entok"
[ "$(jq_py '(j["decision"], j["reason"])')" = "('none', 'rollout paused: hold')" ] || bad "par-03: $body"
members() { # where: ring pilot's members as the daemon, then the CLI, count them
  api GET /v1/rollouts/agent "" -H "Authorization: Bearer $optok"
  local d c
  d=$(jq_py 'j["rings"][0]["members"]')
  c=$("$DISTSYNC" -c "$conf" rollout status agent --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["rings"][0]["members"])')
  [ "$d $c" = "1 1" ] || bad "$1: ring pilot has $d members in the daemon, $c in rollout status --json (expected 1: par-03)"
}
members "after par-03 asked"
dm_stop
dm_start "$log.2" 2026-03-10T01:00:00Z 1
api_wait_up "$log.2" || st_exit gate_ring_size
members "after a restart"
dm_stop
st_exit gate_ring_size
