#!/usr/bin/env bash
# A gate call refused after its batch began leaves no batch open: GET
# /v1/rollouts/NAME of an unknown rollout (404), a POST /v1/upgrade/request
# with a field missing (400). The next client request starts its own
# batch, which reads the rollouts' control rows back from the state, so a
# pause made meanwhile by `distsync rollout pause` (another process,
# writing the state directly) holds that request (decision none, "rollout
# paused"), not a grant.
set -uo pipefail
. "$(dirname "$0")/lib/sync.bash"
. "$(dirname "$0")/lib/engine.bash"
. "$(dirname "$0")/lib/daemon.bash"
. "$(dirname "$0")/lib/api.bash"
st_init gate_rollouts_404

gate_init 1000
mkdir -p "$tmp/t1"
gate_console
cat >>"$conf" <<CONF

[site paris]
clients = par-*

[server s1]
url = file://$tmp/t1
site = paris
CONF
gate_rollout wide 'par-*' 'lease = 15m'
gate_up gate_rollouts_404 1 s1
api_url=http://127.0.0.1:$port
api GET /v1/rollouts/nosuch "" -H "Authorization: Bearer $optok"
expect 404 "GET /v1/rollouts/nosuch"
"$DISTSYNC" -c "$conf" rollout pause agent --reason "hold" >/dev/null || bad "rollout pause failed"
api POST /v1/upgrade/request '{"client":"par-03","product":"agent","version":"6.0"}' -H "Authorization: Bearer $entok"
[ "$(jq_py '(j["decision"], j["reason"])')" = "('none', 'rollout paused: hold')" ] ||
  bad "a request after the pause (and a 404 before it) was not held: $body"
"$DISTSYNC" -c "$conf" rollout resume agent >/dev/null || bad "rollout resume failed"
api POST /v1/upgrade/request '{"client":"par-04","product":"agent"}' -H "Authorization: Bearer $entok"
expect 400 "a request without its version"
"$DISTSYNC" -c "$conf" rollout pause agent --reason "again" >/dev/null || bad "rollout pause failed"
api POST /v1/upgrade/request '{"client":"par-05","product":"agent","version":"6.0"}' -H "Authorization: Bearer $entok"
[ "$(jq_py '(j["decision"], j["reason"])')" = "('none', 'rollout paused: again')" ] ||
  bad "a request after the second pause (and a 400 before it) was not held: $body"
dm_stop
st_exit gate_rollouts_404
