#!/usr/bin/env bash
# The upgrade gate's API on the daemon's TCP listener (issue 14), against
# the real daemon:
#  - request: grant (server, path, version, expires_in; the same grant
#    again for the same client), a spare server when the first is full,
#    wait (position) at the global cap, none "up to date";
#  - heartbeat extends a lease; report frees the slot and counts it;
#    priority (operator token) moves a waiting client to the front;
#    GET /v1/rollouts and /v1/rollouts/NAME count per ring and state;
#  - clients authenticate with the rollout's enrolment token: the operator's
#    token is refused on their endpoints and theirs on the operator's;
#    another rollout's token is 403 (a request for another product, a
#    heartbeat, report or download of another rollout's grant) and changes
#    nothing;
#  - every bad input (bad JSON, unknown field, wrong type, missing field,
#    body over the limit, unknown token, a report with another client's
#    token, a bad outcome) is a 4xx {"error"} and changes nothing.
set -uo pipefail
. "$(dirname "$0")/lib/sync.bash"
. "$(dirname "$0")/lib/engine.bash"
. "$(dirname "$0")/lib/daemon.bash"
. "$(dirname "$0")/lib/api.bash"
st_init gate_api

gate_init 100000
mkdir -p "$tmp/t1" "$tmp/t2"
head -c 1000 /dev/urandom >"$tmp/store/engines/tool-2.0.bin"
entok2=en2-$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')
(umask 077 && echo "$entok2" >"$tmp/entoken2")
gate_console 'max_concurrent_upgrades = 3'
cat >>"$conf" <<CONF

[site paris]
clients = par-*

[server s1]
url = file://$tmp/t1
site = paris
max_concurrent_upgrades = 2

[server s2]
url = file://$tmp/t2
site = paris
CONF
gate_rollout wide 'par-*' 'min_success = 95%' 'max_failure = 5%' 'lease = 15m'
cat >>"$conf" <<CONF

[package tool-2]
product = tool
version = 2.0
path = engines/tool-2.0.bin

[rollout tool]
product = tool
version = 2.0
rings = wide
token_file = $tmp/entoken2
CONF
gate_up gate_api 1 s1 s2
api_url=http://127.0.0.1:$port
EN=(-H "Authorization: Bearer $entok")
EN2=(-H "Authorization: Bearer $entok2")
OP=(-H "Authorization: Bearer $optok")

# counts: granted waiting succeeded failed expired of rollout agent
counts() {
  api GET /v1/rollouts/agent "" "${OP[@]}"
  [ "$code" = 200 ] || { bad "GET rollouts/agent: $code $body"; return; }
  jq_py '(j["granted"], j["waiting"], j["succeeded"], j["failed"], j["expired"])'
}
req() { api POST /v1/upgrade/request "{\"client\":\"$1\",\"product\":\"agent\",\"version\":\"${2:-6.0}\"}" "${EN[@]}"; }

# ---- every endpoint ----
req par-01
expect 200 "request par-01" &&
  [ "$(jq_py '(j["decision"], j["version"], j["server"], j["path"], j["expires_in"], len(j["token"]))')" = \
    "('grant', '7.0', 's1', 'engines/agent-7.0.msi', 900, 32)" ] || bad "grant for par-01: $body"
t1=$(jq_py 'j["token"]')
req par-01
[ "$(jq_py 'j["token"]')" = "$t1" ] || bad "a second request of par-01 is not the same grant: $body"
req par-02
[ "$(jq_py '(j["decision"], j["server"])')" = "('grant', 's1')" ] || bad "grant for par-02: $body"
t2=$(jq_py 'j["token"]')
req par-03
[ "$(jq_py '(j["decision"], j["server"])')" = "('grant', 's2')" ] || bad "par-03 (s1 full: spare s2): $body"
req par-04
[ "$(jq_py '(j["decision"], j["position"], j["retry_after"] > 0)')" = "('wait', 1, True)" ] ||
  bad "par-04 at the global cap: $body"
req par-05
[ "$(jq_py '(j["decision"], j["position"])')" = "('wait', 2)" ] || bad "par-05: $body"
req par-06 7.0
[ "$(jq_py '(j["decision"], j["reason"])')" = "('none', 'up to date')" ] || bad "par-06 on 7.0: $body"
c=$(counts)
[ "$c" = "(3, 2, 1, 0, 0)" ] || bad "counts after the requests (par-06 on 7.0 counts as succeeded): $c"

api POST /v1/upgrade/heartbeat "{\"token\":\"$t1\"}" "${EN[@]}"
expect 200 "heartbeat" && [ "$(jq_py 'j["expires_in"]')" = 900 ] || bad "heartbeat: $body"

api POST /v1/upgrade/priority '{"client":"par-05"}' "${OP[@]}"
expect 200 "priority par-05"
req par-05
[ "$(jq_py '(j["decision"], j["position"])')" = "('wait', 1)" ] || bad "par-05 after priority: $body"

before=$(counts)
# ---- bad inputs: a 4xx {"error"} that changes nothing ----
bad_in() { # CODE PATH BODY WHAT [AUTH...]
  local c=$1 p=$2 b=$3 w=$4
  shift 4
  api POST "$p" "$b" "$@"
  expect "$c" "$w"
}
bad_in 400 /v1/upgrade/request '{"client":' "bad JSON" "${EN[@]}"
bad_in 400 /v1/upgrade/request '["par-07"]' "an array" "${EN[@]}"
bad_in 400 /v1/upgrade/request '{"client":"par-07","product":"agent","version":"6.0","x":1}' "unknown field" "${EN[@]}"
echo "$body" | grep -q "unknown field 'x'" || bad "unknown field not named: $body"
bad_in 400 /v1/upgrade/request '{"client":7,"product":"agent","version":"6.0"}' "client of the wrong type" "${EN[@]}"
echo "$body" | grep -q "client: expected a string" || bad "wrong type not named: $body"
bad_in 400 /v1/upgrade/request '{"client":"par-07","product":"agent"}' "no version" "${EN[@]}"
echo "$body" | grep -q "version: missing" || bad "missing field not named: $body"
bad_in 400 /v1/upgrade/request '{"client":"par 07!","product":"agent","version":"6.0"}' "bad client ID" "${EN[@]}"
bad_in 400 /v1/upgrade/request '{"client":"par-07","product":"nope","version":"6.0"}' "unknown product" "${EN[@]}"
big=$(python3 -c 'print("{\"client\":\"" + "a" * 70000 + "\"}")')
bad_in 413 /v1/upgrade/request "$big" "body over the limit" "${EN[@]}"
bad_in 404 /v1/upgrade/heartbeat '{"token":"0123456789abcdef0123456789abcdef"}' "unknown token" "${EN[@]}"
bad_in 403 /v1/upgrade/report "{\"token\":\"$t2\",\"outcome\":\"success\",\"version\":\"7.0\",\"client\":\"par-01\"}" \
  "a report of another client's token" "${EN[@]}"
bad_in 403 /v1/upgrade/heartbeat "{\"token\":\"$t2\",\"client\":\"par-01\"}" "a heartbeat of another client's token" "${EN[@]}"
bad_in 400 /v1/upgrade/report "{\"token\":\"$t2\",\"outcome\":\"meh\",\"version\":\"7.0\"}" "bad outcome" "${EN[@]}"
bad_in 404 /v1/upgrade/priority '{"client":"par-99"}' "priority of a client that waits nowhere" "${OP[@]}"
# authentication: no token, the operator's on a client endpoint, the client's on the operator's
bad_in 401 /v1/upgrade/request '{"client":"par-07","product":"agent","version":"6.0"}' "no token"
bad_in 401 /v1/upgrade/request '{"client":"par-07","product":"agent","version":"6.0"}' "operator token" "${OP[@]}"
bad_in 401 /v1/upgrade/priority '{"client":"par-04"}' "enrolment token on priority" "${EN[@]}"
# a rollout's token is good for its own product and grants only
bad_in 403 /v1/upgrade/request '{"client":"par-07","product":"agent","version":"6.0"}' \
  "rollout tool's token asking for product agent" "${EN2[@]}"
echo "$body" | grep -q "not rollout agent's" || bad "the 403 does not name the rollout: $body"
bad_in 403 /v1/upgrade/request '{"client":"par-07","product":"tool","version":"1.0"}' \
  "rollout agent's token asking for product tool" "${EN[@]}"
bad_in 403 /v1/upgrade/heartbeat "{\"token\":\"$t1\"}" "a heartbeat of an agent grant with tool's token" "${EN2[@]}"
bad_in 403 /v1/upgrade/report "{\"token\":\"$t2\",\"outcome\":\"failure\",\"version\":\"6.0\"}" \
  "a report of an agent grant with tool's token" "${EN2[@]}"
api GET "/v1/upgrade/package/$t1" "" "${EN2[@]}"
expect 403 "a download of an agent grant with tool's token"
api GET /v1/rollouts/tool "" "${OP[@]}"
[ "$(jq_py '(j["granted"], j["waiting"], j["succeeded"], j["failed"], j["expired"])')" = "(0, 0, 0, 0, 0)" ] ||
  bad "requests with the wrong rollout's token changed rollout tool: $body"
api POST /v1/upgrade/request '{"client":"par-08","product":"tool","version":"2.0"}' "${EN2[@]}"
expect 200 "rollout tool's token for product tool" &&
  [ "$(jq_py '(j["decision"], j["reason"])')" = "('none', 'up to date')" ] || bad "par-08 on tool 2.0: $body"
api GET /v1/rollouts "" "${EN[@]}"
expect 401 "enrolment token on GET rollouts"
api GET /v1/rollouts/nope "" "${OP[@]}"
expect 404 "GET an unknown rollout"
[ "$(counts)" = "$before" ] || bad "bad inputs changed the counts: $before, then $(counts)"
req par-04
[ "$(jq_py '(j["decision"], j["position"])')" = "('wait', 2)" ] || bad "bad inputs changed the queue: $body"

# ---- report frees the slot ----
api POST /v1/upgrade/report "{\"token\":\"$t1\",\"outcome\":\"success\",\"version\":\"7.0\",\"detail\":\"ok\"}" "${EN[@]}"
expect 200 "report par-01"
api POST /v1/upgrade/heartbeat "{\"token\":\"$t1\"}" "${EN[@]}"
expect 404 "heartbeat after the report"
req par-05
[ "$(jq_py '(j["decision"], j["server"])')" = "('grant', 's1')" ] || bad "par-05 after par-01's report: $body"
api GET /v1/rollouts "" "${OP[@]}"
expect 200 "GET rollouts" &&
  [ "$(jq_py '[(r["name"], r["granted"], r["waiting"], r["succeeded"], r["rings"][0]["name"], r["rings"][0]["succeeded"]) for r in j["rollouts"]]')" = \
    "[('agent', 3, 1, 2, 'wide', 2), ('tool', 0, 0, 1, 'wide', 1)]" ] || bad "GET rollouts: $body"
grep -q "$entok\|$optok" "$log" && bad "a token is in the daemon's log"
dm_stop
st_exit gate_api
