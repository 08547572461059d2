#!/usr/bin/env bash
# The daemon's API over TCP ([console] listen =, api_token_file =):
#  - listen without api_token_file is a configuration error;
#  - a token file group or others can read, a symlink, or a token under 16
#    characters: the daemon refuses to start with config check's message
#    (file, line, key, the file and the reason);
#  - without the token, or with a wrong one, every request is 401 with
#    {"error"} and changes nothing (no run, no freeze, target untouched);
#  - with it, every endpoint answers as on the socket; a run-now completes;
#  - the token never appears in the daemon's log.
set -uo pipefail
. "$(dirname "$0")/lib/sync.bash"
. "$(dirname "$0")/lib/engine.bash"
. "$(dirname "$0")/lib/daemon.bash"
. "$(dirname "$0")/lib/api.bash"
st_init daemon_api_tcp

state=$tmp/state
conf=$tmp/d.conf
sock=$state/distsync.sock
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
token=tok-$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')
en_fill "$tmp/store" 2 4096
en_head "$conf" "$tmp/store" "$state"
en_server "$conf" s1 "$tmp/t1" local
"$DISTSYNC" -c "$conf" scan >/dev/null 2>&1 || bad "scan failed"
sed -i "s|^state = .*|&\nlisten = 127.0.0.1:$port|" "$conf"

rc=0
out=$("$DISTSYNC" -c "$conf" daemon 2>&1) || rc=$?
[ "$rc" = 2 ] && echo "$out" | grep -q "d.conf:[0-9]*: \[console\] key 'listen': .*api_token_file" ||
  bad "listen without api_token_file: exit $rc: $out"

echo "$token" >"$tmp/token"
chmod 644 "$tmp/token"
sed -i "s|^listen = .*|&\napi_token_file = $tmp/token|" "$conf"
rc=0
out=$(timeout 20 "$DISTSYNC" -c "$conf" daemon 2>&1) || rc=$?
[ "$rc" = 1 ] && echo "$out" | grep -q "d.conf:[0-9]*: \[console\] key 'api_token_file': $tmp/token: mode 0644, group or others may use it (chmod 600 it)" ||
  bad "a token file of mode 0644: exit $rc: $out"
# the daemon reads the token file as config check does (one reader): a
# symlink and a short token are refused at start, naming file and reason
chmod 600 "$tmp/token"
ln -s "$tmp/token" "$tmp/token.link"
sed -i "s|^api_token_file = .*|api_token_file = $tmp/token.link|" "$conf"
rc=0
out=$(timeout 10 "$DISTSYNC" -c "$conf" daemon 2>&1) || rc=$?
[ "$rc" = 1 ] && echo "$out" | grep -q "d.conf:[0-9]*: \[console\] key 'api_token_file': $tmp/token.link: Too many levels of symbolic links" ||
  bad "a symlinked token file: exit $rc: $out"
sed -i "s|^api_token_file = .*|api_token_file = $tmp/token|" "$conf"
echo short-token >"$tmp/token"
rc=0
out=$(timeout 10 "$DISTSYNC" -c "$conf" daemon 2>&1) || rc=$?
[ "$rc" = 1 ] && echo "$out" | grep -q "d.conf:[0-9]*: \[console\] key 'api_token_file': $tmp/token: the token is shorter than 16 characters" ||
  bad "a token of 11 characters: exit $rc: $out"
echo "$token" >"$tmp/token"
[ ! -e "$sock" ] || bad "the refused daemon left its socket"

chmod 600 "$tmp/token"
log=$tmp/daemon.log
dm_start "$log" 2026-03-10T01:00:00Z 1
api_wait_up "$log" || st_exit daemon_api_tcp
grep -q "API on $sock and http://127.0.0.1:$port" "$log" || bad "the log does not name both listeners"

api_url=http://127.0.0.1:$port
for auth in none "Bearer wrong" "Bearer ${token}x" "Basic $token" "Bearer"; do
  hdr=()
  [ "$auth" = none ] || hdr=(-H "Authorization: $auth")
  api GET /v1/servers "" "${hdr[@]}"
  expect 401 "GET servers, authorization '$auth'"
  api POST /v1/run-now '{"servers":["s1"]}' "${hdr[@]}"
  expect 401 "run-now, authorization '$auth'"
  api POST /v1/freeze '{"servers":["s1"]}' "${hdr[@]}"
  expect 401 "freeze, authorization '$auth'"
  api POST /v1/reload "" "${hdr[@]}"
  expect 401 "reload, authorization '$auth'"
done
grep -q '^www-authenticate: Bearer' <(curl -s -i "$api_url/v1/runs") || bad "a 401 without WWW-Authenticate: Bearer"
sleep 1
[ -z "$(find "$tmp/t1" -type f)" ] || bad "an unauthenticated run-now wrote to the target"
[ "$(dm_runs s1)" = 0 ] || bad "an unauthenticated run-now ran"

api_hdr=(-H "Authorization: Bearer $token")
for p in servers sites schedules runs schedules/preview; do
  api GET "/v1/$p"
  expect 200 "GET $p with the token"
done
api GET /v1/runs
[ "$(jq_py 'j["runs"]')" = "[]" ] || bad "an unauthenticated request queued a run: $body"
api GET /v1/servers
[ "$(jq_py 'j["servers"][0]["frozen"]')" = None ] || bad "an unauthenticated freeze froze s1"
api POST /v1/run-now '{"servers":["s1"]}'
expect 202 "run-now with the token"
run_wait "$(jq_py 'j["id"]')" ok 30
en_converged "$tmp/store" "$tmp/t1" "s1 after a run-now over TCP"
api GET /v1/nothing
expect 404 "an unknown path with the token"

# the socket needs no token
api_url=
api GET /v1/servers
expect 200 "GET servers over the socket"

dm_stop
grep -q "$token" "$log" && bad "the token is in the daemon's log"
st_exit daemon_api_tcp
