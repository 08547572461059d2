#!/usr/bin/env bash
# A reload and the API's TCP listener (issue 13):
#  - SIGHUP reads api_token_file again: the new token is accepted and the
#    old one gets 401 (the token never appears in the log);
#  - a changed listen = is not applied: one error line names the file,
#    line and key and says the API stays where it is until a restart; the
#    old port keeps answering, the new one is not bound;
#  - POST /v1/reload with a token file made unreadable keeps the token in
#    use, with an error line naming the file and the reason.
set -uo pipefail
. "$(dirname "$0")/lib/sync.bash"
. "$(dirname "$0")/lib/engine.bash"
. "$(dirname "$0")/lib/daemon.bash"
. "$(dirname "$0")/lib/api.bash"
st_init daemon_api_reload

state=$tmp/state
conf=$tmp/d.conf
sock=$state/distsync.sock
port=$(free_port)
port2=$(free_port)
tok1=tok1-$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')
tok2=tok2-$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')
en_fill "$tmp/store" 1 4096
en_head "$conf" "$tmp/store" "$state" "listen = 127.0.0.1:$port" "api_token_file = $tmp/token"
en_server "$conf" s1 "$tmp/t1" local
(umask 077 && echo "$tok1" >"$tmp/token")

# tcp PORT TOKEN: GET /v1/servers over TCP; sets code ("000": no answer).
tcp() {
  code=$(curl -s -m 10 -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $2" "http://127.0.0.1:$1/v1/servers")
}

log=$tmp/daemon.log
dm_start "$log" 2026-03-10T01:00:00Z 1
api_wait_up "$log" || st_exit daemon_api_reload
tcp "$port" "$tok1"
[ "$code" = 200 ] || bad "the first token before the reload: HTTP $code"

echo "$tok2" >"$tmp/token"
sed -i "s|^listen = .*|listen = 127.0.0.1:$port2|" "$conf"
kill -HUP "$dpid"
dm_wait "$log" 'daemon: reloaded' 10
dm_wait "$log" "error: daemon: reload of $conf:[0-9]+: \[console\] listen = 127.0.0.1:$port2 is not applied: the API stays on .* and TCP until the daemon restarts" 5
tcp "$port" "$tok2"
[ "$code" = 200 ] || bad "the new token after SIGHUP: HTTP $code (the token file was not read again)"
tcp "$port" "$tok1"
[ "$code" = 401 ] || bad "the old token after SIGHUP: HTTP $code, expected 401"
tcp "$port2" "$tok2"
[ "$code" = 000 ] || bad "the new listen = was bound on a reload (HTTP $code): the log says it is not"

chmod 644 "$tmp/token"
api POST /v1/reload
expect 202 "POST /v1/reload"
dm_wait "$log" "error: daemon: reload of $conf: api_token_file $tmp/token: readable by others .*; the API keeps its old token" 10
tcp "$port" "$tok2"
[ "$code" = 200 ] || bad "the token in use after a reload with a bad token file: HTTP $code"
grep -q -e "$tok1" -e "$tok2" "$log" && bad "a token appears in the log"
dm_stop
st_exit daemon_api_reload
