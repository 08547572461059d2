#!/usr/bin/env bash
# A reload and the API's TCP listener (issue 13):
#  - SIGHUP reads api_token_file again: the new token is accepted and the
#    old one gets 401 (the token never appears in the log);
#  - a changed listen = moves the listener: the new port answers with the
#    new token, the old one refuses connections, the socket stays; a
#    keep-alive connection made before the move is still answered (or
#    ends cleanly);
#  - a listen = that cannot be bound (a port in use) keeps the old
#    listener, with an error line naming the file, line, key and reason;
#  - TLS turned on at the same address: https answers, plain http no more;
#  - POST /v1/reload with a token file made unreadable keeps the token in
#    use, with config check's error for it (file, line, key, the reason).
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
port3=$(free_port)
tok1=tok1-$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')
tok2=tok2-$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')
en_fill "$tmp/store" 1 4096
en_head "$conf" "$tmp/store" "$state" "listen = 127.0.0.1:$port" "api_token_file = $tmp/token"
en_server "$conf" s1 "$tmp/t1" local
(umask 077 && echo "$tok1" >"$tmp/token")

# tcp PORT TOKEN [SCHEME CURL_ARGS...]: GET /v1/servers over TCP; sets code
# ("000": no answer).
tcp() {
  code=$(curl -s -m 10 -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $2" "${3:-http}://127.0.0.1:$1/v1/servers" "${@:4}")
}

log=$tmp/daemon.log
dm_start "$log" 2026-03-10T01:00:00Z 1
api_wait_up "$log" || st_exit daemon_api_reload
tcp "$port" "$tok1"
[ "$code" = 200 ] || bad "the first token before the reload: HTTP $code"

# a client connected to the old listener (keep-alive) across the move:
# its next request on that connection is answered, or the connection ends
# cleanly (no reset, no hang)
python3 - "$port" "$tok1" "$tmp/go" >"$tmp/keep.out" 2>&1 <<'PY' &
import http.client, os, sys, time
port, tok, go = int(sys.argv[1]), sys.argv[2], sys.argv[3]
c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
c.request("GET", "/v1/servers", headers={"Authorization": "Bearer " + tok})
r = c.getresponse(); r.read()
print("first", r.status, flush=True)
for _ in range(200):
    if os.path.exists(go):
        break
    time.sleep(0.05)
try:
    c.request("GET", "/v1/sites", headers={"Authorization": "Bearer " + tok})
    r = c.getresponse(); r.read()
    print("second", r.status, flush=True)
except (http.client.RemoteDisconnected, BrokenPipeError):
    print("second closed", flush=True)
PY
keep=$!
st_pids+=("$keep")
for _ in $(seq 1 50); do grep -q first "$tmp/keep.out" && break; sleep 0.1; done
echo "$tok2" >"$tmp/token"
sed -i "s|^listen = .*|listen = 127.0.0.1:$port2|" "$conf"
kill -HUP "$dpid"
dm_wait "$log" 'daemon: reloaded' 10
dm_wait "$log" "daemon: reload: the API now listens on http://127.0.0.1:$port2 \(was 127.0.0.1:$port\)" 5
touch "$tmp/go"
wait "$keep"
# the old token is refused (401) on that connection, as on any other now
grep -qx "first 200" "$tmp/keep.out" && grep -qxE "second (401|closed)" "$tmp/keep.out" ||
  bad "a keep-alive connection to the old listener across the move: $(tr '\n' '|' <"$tmp/keep.out")"
tcp "$port2" "$tok2"
[ "$code" = 200 ] || bad "the new listen = with the new token after SIGHUP: HTTP $code"
tcp "$port2" "$tok1"
[ "$code" = 401 ] || bad "the old token on the new listener: HTTP $code, expected 401"
tcp "$port" "$tok2"
[ "$code" = 000 ] || bad "the old listen = still answers after the move (HTTP $code)"
api GET /v1/servers
expect 200 "GET servers over the socket after the move"

# a port in use: the listener stays where it is
python3 -c 'import socket,sys,time; s=socket.socket(); s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(); print("up", flush=True); time.sleep(60)' "$port3" >"$tmp/hold.out" 2>&1 &
hold=$!
st_pids+=("$hold")
for _ in $(seq 1 50); do grep -q up "$tmp/hold.out" && break; sleep 0.1; done
sed -i "s|^listen = .*|listen = 127.0.0.1:$port3|" "$conf"
kill -HUP "$dpid"
dm_wait "$log" "error: daemon: reload: $conf:[0-9]+: \[console\] listen = 127.0.0.1:$port3: address already in use; the API stays on $sock and 127.0.0.1:$port2" 10
tcp "$port2" "$tok2"
[ "$code" = 200 ] || bad "the listener after a reload whose port is in use: HTTP $code"
kill "$hold" 2>/dev/null
wait "$hold" 2>/dev/null

# TLS turned on at the same address
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=127.0.0.1 \
  -addext subjectAltName=IP:127.0.0.1 -keyout "$tmp/key.pem" -out "$tmp/cert.pem" >/dev/null 2>&1 ||
  bad "openssl could not make a certificate"
chmod 600 "$tmp/key.pem"
sed -i "s|^listen = .*|listen = 127.0.0.1:$port2\napi_tls_cert = $tmp/cert.pem\napi_tls_key = $tmp/key.pem|" "$conf"
kill -HUP "$dpid"
dm_wait "$log" "daemon: reload: the API now listens on https://127.0.0.1:$port2 \(was 127.0.0.1:$port2\)" 10
tcp "$port2" "$tok2" https --cacert "$tmp/cert.pem"
[ "$code" = 200 ] || bad "https after TLS was turned on by a reload: HTTP $code"
tcp "$port2" "$tok2"
[ "$code" = 000 ] || bad "plain http after TLS was turned on by a reload: HTTP $code"

chmod 644 "$tmp/token"
api POST /v1/reload
expect 202 "POST /v1/reload"
dm_wait "$log" "error: daemon: reload: $conf:[0-9]+: \[console\] key 'api_token_file': $tmp/token: mode 0644, group or others may use it \(chmod 600 it\); the API keeps its old token" 10
tcp "$port2" "$tok2" https --cacert "$tmp/cert.pem"
[ "$code" = 200 ] || bad "the token in use after a reload with a bad token file: HTTP $code"
grep -q -e "$tok1" -e "$tok2" "$log" && bad "a token appears in the log"
dm_stop
st_exit daemon_api_reload
