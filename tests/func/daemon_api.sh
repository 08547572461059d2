#!/usr/bin/env bash
# The daemon's HTTP API over its Unix socket (issue 13), against the real
# daemon on the test clock (no fire comes during the test):
#  - the socket is STATE/distsync.sock, mode 0660;
#  - GET servers (config, frozen, last run, the file status report as the
#    console last left each server), sites (caps now), schedules (next and
#    last fire), schedule previews (the same JSON as `schedule next --json`),
#    runs;
#  - POST run-now: queued, then ok; the target converges; history records
#    it; a run-now of a frozen server says frozen and writes nothing;
#    freeze and thaw through the API are what `distsync status` sees;
#  - reload: a good file is applied, a broken one is a 422 naming file:line
#    and the daemon goes on;
#  - every bad input is a 4xx {"error": "..."} that says what is wrong and
#    changes nothing (no run, no freeze, no history).
set -uo pipefail
. "$(dirname "$0")/lib/sync.bash"
. "$(dirname "$0")/lib/engine.bash"
. "$(dirname "$0")/lib/daemon.bash"
. "$(dirname "$0")/lib/api.bash"
st_init daemon_api

state=$tmp/state
conf=$tmp/d.conf
sock=$state/distsync.sock
en_fill "$tmp/store" 3 4096
en_head "$conf" "$tmp/store" "$state" "bandwidth = 8Mbit"
printf '\n[site east]\nbandwidth = Mon-Sun 00:00-24:00 2Mbit\ntz = UTC\n' >>"$conf"
en_server "$conf" s1 "$tmp/t1" local
en_server "$conf" s2 "$tmp/t2" local "site = east"
printf '\n[schedule nightly]\nwhen = daily 02:00\ntz = UTC\nservers = s1 s2\n' >>"$conf"
"$DISTSYNC" -c "$conf" scan >/dev/null 2>&1 || bad "scan failed"

log=$tmp/daemon.log
dm_start "$log" 2026-03-10T01:00:00Z 1
api_wait_up "$log" || st_exit daemon_api
[ -S "$sock" ] || bad "no socket at $sock"
[ "$(stat -c %a "$sock")" = 660 ] || bad "socket mode $(stat -c %a "$sock"), expected 660"

rc=0
out=$(timeout 20 "$DISTSYNC" -c "$conf" daemon 2>&1) || rc=$?
[ "$rc" = 1 ] && echo "$out" | grep -q "API socket $sock: another daemon is serving on it" ||
  bad "a second daemon on the same state: exit $rc: $out"
[ -S "$sock" ] || bad "the second daemon removed the first one's socket"

# ---- GET ----
api GET /v1/servers
expect 200 "GET servers" &&
  [ "$(jq_py '[(s["server"], s["site"], s["frozen"], s["last_run"], s["report"]) for s in j["servers"]]')" = \
    "[('s1', None, None, None, None), ('s2', 'east', None, None, None)]" ] ||
  bad "GET servers before any sync: $body"
api GET /v1/sites
expect 200 "GET sites" &&
  [ "$(jq_py '(j["console"]["bandwidth"]["now_bps"], j["sites"][0]["site"], j["sites"][0]["servers"], j["sites"][0]["bandwidth"]["now_bps"])')" = \
    "(8000000, 'east', ['s2'], 2000000)" ] || bad "GET sites (caps now): $body"
api GET /v1/schedules
expect 200 "GET schedules" &&
  [ "$(jq_py '(j["schedules"][0]["schedule"], j["schedules"][0]["next_fire"], j["schedules"][0]["last_fire"]["outcome"])')" = \
    "('nightly', '2026-03-10T02:00:00Z', 'skipped')" ] || bad "GET schedules: $body"
api GET '/v1/schedules/nightly/preview?count=3&from=2026-03-28T12:00:00Z'
want=$("$DISTSYNC" -c "$conf" schedule next nightly --count 3 --from 2026-03-28T12:00:00Z --json)
expect 200 "preview" && [ "$body" = "$want" ] || bad "preview: '$body', schedule next --json: '$want'"
api GET '/v1/schedules/preview?count=2&from=2026-03-28T12:00:00Z'
want=$("$DISTSYNC" -c "$conf" schedule next --count 2 --from 2026-03-28T12:00:00Z --json)
expect 200 "preview of all" && [ "$body" = "$want" ] || bad "preview all: '$body' vs '$want'"
api GET /v1/runs
expect 200 "GET runs" && [ "$(jq_py 'j["runs"]')" = "[]" ] || bad "GET runs before any: $body"

# ---- bad inputs: 4xx, and nothing changes ----
big=$(python3 -c 'print("{\"servers\":[\"s1\"],\"pad\":\"" + "x" * 70000 + "\"}")')
huge=$tmp/huge.json
python3 -c 'print("[" + "1," * 700000 + "1]")' >"$huge"
while IFS='|' read -r m p data want what; do
  api "$m" "$p" "$data"
  expect "$want" "$what"
done <<EOF
POST|/v1/run-now|{bad|400|bad JSON
POST|/v1/run-now|[1,2]|400|a body that is not an object
POST|/v1/run-now|{"servers":"s1"}|400|servers not an array
POST|/v1/run-now|{"servers":[1]}|400|a server that is not a string
POST|/v1/run-now|{"servers":["nope"]}|400|unknown server
POST|/v1/run-now|{"sites":["west"]}|400|unknown site
POST|/v1/run-now|{"servers":["s1"],"classes":["nope"]}|400|unknown class
POST|/v1/run-now|{"servers":["s1"],"speed":1}|400|unknown field
POST|/v1/run-now|{"servers":["s1"],"servers":["s2"]}|400|duplicate key
POST|/v1/run-now|{}|400|no server named
POST|/v1/run-now|{"all":"yes"}|400|all not a boolean
POST|/v1/run-now|{"all":true,"servers":["s1"]}|400|all with servers
POST|/v1/freeze|{"servers":["s1"],"until":"2020-01-01T00:00:00Z"}|400|until in the past
POST|/v1/freeze|{"servers":["s1"],"until":"soon"}|400|until not a time
POST|/v1/freeze|{"servers":["s1"],"reason":7}|400|reason not a string
POST|/v1/freeze|{"all":true}|400|freeze all
POST|/v1/thaw|{"servers":["nope"]}|400|thaw of an unknown server
POST|/v1/reload|{"now":1}|400|reload with a field
POST|/v1/runs/nope/cancel||404|cancel of an unknown run
GET|/v1/runs/nope||404|an unknown run
GET|/v1/schedules/nope/preview||404|preview of an unknown schedule
GET|/v1/schedules/nightly/preview?count=0||400|count 0
GET|/v1/schedules/nightly/preview?count=x||400|count not a number
GET|/v1/schedules/nightly/preview?from=yesterday||400|from not a time
GET|/v1/schedules/nightly/preview?from=%zz||400|a bad escape
GET|/v1/history?limit=x||400|history limit not a number
GET|/v1/history?events=2||400|history events not 0 or 1
GET|/v1/nothing||404|unknown path
GET|/v2/servers||404|not under /v1
GET|/v1/run-now||405|GET of a POST path
DELETE|/v1/servers||405|DELETE
POST|/v1/servers|{}|405|POST of a GET path
PUT|/v1/freeze|{}|405|PUT
EOF
api POST /v1/run-now "$big"
expect 413 "a 70 KB body"
code=$(curl -s -m 20 -o "$tmp/api.out" -w '%{http_code}' --unix-socket "$sock" \
  --data-binary @"$huge" http://localhost/v1/run-now)
[ "$code" = 413 ] || bad "a 1.4 MB body: HTTP $code, expected 413"
api GET /v1/servers
[ "$code" = 200 ] || bad "the daemon does not answer after the bad requests: $code"
api GET /v1/runs
[ "$(jq_py 'len(j["runs"])')" = 0 ] || bad "a bad request queued a run: $body"
api GET /v1/servers
[ "$(jq_py '[s["frozen"] for s in j["servers"]]')" = "[None, None]" ] || bad "a bad request froze a server"
[ "$(dm_runs s1)" = 0 ] || bad "a bad request ran a sync of s1"
[ -z "$(find "$tmp/t1" "$tmp/t2" -type f)" ] || bad "a bad request wrote to a target"
grep -q 'run now-' "$log" && bad "a bad request logged a run: $(grep 'run now-' "$log")"
kill -0 "$dpid" || bad "the daemon died"

# ---- run-now ----
api POST /v1/run-now '{"servers":["s1"]}'
expect 202 "run-now s1" || st_exit daemon_api
id=$(jq_py 'j["id"]')
[ "$(jq_py '(j["state"] in ("queued", "running"), j["trigger"], [s["server"] for s in j["servers"]])')" = \
  "(True, 'manual', ['s1'])" ] || bad "run-now reply: $body"
run_wait "$id" ok 30
[ "$(jq_py '(j["servers"][0]["result"], j["progress"]["files_done"] >= 3, j["progress"]["bytes_wire"] > 0)')" = \
  "('ok', True, True)" ] || bad "the ended run: $body"
en_converged "$tmp/store" "$tmp/t1" "s1 after run-now"
[ -z "$(find "$tmp/t2" -type f)" ] || bad "run-now of s1 wrote s2"
[ "$("$DISTSYNC" -c "$conf" history s1 --json | python3 -c 'import json,sys; r=json.load(sys.stdin); print(len(r), r[0]["trigger"], r[0]["status"])')" = \
  "1 manual ok" ] || bad "history of s1 after run-now: $("$DISTSYNC" -c "$conf" history s1 --json)"
api GET /v1/servers
[ "$(jq_py '(j["servers"][0]["last_run"]["status"], j["servers"][0]["report"]["counts"]["in_sync"], j["servers"][0]["report"]["counts"]["missing"], j["servers"][1]["report"])')" = \
  "('ok', 5, 0, None)" ] || bad "GET servers after the run: $body"
api GET /v1/runs
[ "$(jq_py '[r["id"] for r in j["runs"]]')" = "['$id']" ] || bad "GET runs lists: $body"
api GET '/v1/history?servers=s1,s2&limit=5'
expect 200 "GET history" && [ "$(jq_py '[(r["server"], r["trigger"], r["status"]) for r in j]')" = \
  "[('s1', 'manual', 'ok')]" ] || bad "GET history: $body"
api POST "/v1/runs/$id/cancel"
expect 409 "cancel of an ended run"

# ---- freeze and thaw ----
api POST /v1/freeze '{"sites":["east"],"reason":"disk swap","until":"4h"}'
expect 200 "freeze east" && [ "$(jq_py 'j["frozen"]')" = "['s2']" ] || bad "freeze reply: $body"
out=$("$DISTSYNC" -c "$conf" status s2 2>/dev/null) # exit 6: work pending
echo "$out" | grep -q '^  frozen: server s2 is frozen until .*(disk swap)' ||
  bad "status does not see the API's freeze: $out"
api POST /v1/run-now '{"sites":["east"]}'
expect 202 "run-now east"
id2=$(jq_py 'j["id"]')
run_wait "$id2" ok 30
[ "$(jq_py 'j["servers"][0]["result"]')" = frozen ] || bad "a frozen server's result: $body"
[ -z "$(find "$tmp/t2" -type f)" ] || bad "run-now wrote to a frozen server"
api POST /v1/thaw '{"servers":["s1","s2"]}'
expect 200 "thaw" && [ "$(jq_py '(j["thawed"], j["not_frozen"])')" = "(['s2'], ['s1'])" ] ||
  bad "thaw reply: $body"
api GET /v1/servers
[ "$(jq_py '[s["frozen"] for s in j["servers"]]')" = "[None, None]" ] || bad "thawed, GET servers: $body"

# ---- reload ----
cp "$conf" "$tmp/good.conf"
echo 'bandwidth = lots' >>"$conf"
api POST /v1/reload
expect 422 "reload of a broken file" &&
  echo "$body" | grep -q "d.conf:[0-9]*: \[schedule nightly\] key 'bandwidth'\|d.conf:[0-9]*:.*bandwidth" ||
  bad "the reload error does not name file:line and key: $body"
cp "$tmp/good.conf" "$conf"
sed -i 's/^bandwidth = 8Mbit/bandwidth = 4Mbit/' "$conf"
api POST /v1/reload
expect 202 "reload"
dm_wait "$log" 'reload: bandwidth caps of .* applied' 10
api GET /v1/sites
[ "$(jq_py 'j["console"]["bandwidth"]["now_bps"]')" = 4000000 ] || bad "after reload, GET sites: $body"

dm_stop
[ ! -e "$sock" ] || bad "the socket stays after the daemon stopped"
st_exit daemon_api
