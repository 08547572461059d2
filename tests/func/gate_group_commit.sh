#!/usr/bin/env bash
# The upgrade gate's group commit against the real daemon (issue 14): the
# decisions of one loop turn share one SQLite transaction, answered after
# its commit. wrk posts requests and reports over 32 connections for 3 s
# (bench/gate.lua); GET /v1/rollouts counts the decisions answered and the
# transactions committed: fewer commits than decisions (one per request
# before), no 5xx reply, the global cap held. That no answered grant is
# lost to kill -9 is gate_load's test, which runs through the same path.
set -uo pipefail
. "$(dirname "$0")/lib/sync.bash"
. "$(dirname "$0")/lib/engine.bash"
. "$(dirname "$0")/lib/daemon.bash"
. "$(dirname "$0")/lib/api.bash"
command -v wrk >/dev/null || { echo "SKIP: no wrk (tools/setup installs it)"; exit 77; }
st_init gate_group_commit

gate_init 10000
mkdir -p "$tmp/t1" "$tmp/t2"
gate_console 'max_concurrent_upgrades = 24'
cat >>"$conf" <<CONF

[site paris]
clients = par-*

[site berlin]
clients = ber-*

[server t1]
url = file://$tmp/t1
site = paris

[server t2]
url = file://$tmp/t2
site = berlin
CONF
gate_rollout all 'par-* ber-*' 'lease = 15m'
gate_up gate_group_commit 1 t1 t2

out=$(TOKEN=$entok wrk -t2 -c32 -d3s -s "$DS_SRC/bench/gate.lua" "http://127.0.0.1:$port" 2>&1)
echo "$out" | grep -E 'Requests/sec' || true
echo "$out" | grep -q '^5xx' && bad "the daemon answered 5xx: $out"
api_url=http://127.0.0.1:$port
api GET /v1/rollouts "" -H "Authorization: Bearer $optok"
expect 200 "GET /v1/rollouts" || st_exit gate_group_commit
read -r dec com <<<"$(jq_py '"%d %d" % (j["batches"]["decisions"], j["batches"]["commits"])')"
echo "decisions $dec, commits $com"
[ "${dec:-0}" -ge 1000 ] || bad "only ${dec:-0} decisions in 3 s over 32 connections: $body"
[ "${com:-0}" -ge 1 ] && [ "${com:-0}" -lt "${dec:-0}" ] ||
  bad "$com commits for $dec decisions: no group commit"
[ "$(jq_py 'j["rollouts"][0]["granted"] <= 24')" = True ] || bad "more than 24 granted: $body"
dm_stop
st_exit gate_group_commit
