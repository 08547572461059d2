#!/usr/bin/env bash
# A reload and the API's TCP listener (issue 13):
#  - SIGHUP reads api_token_file again: the new token is accepted and the
#    old one gets 401 (the token never appears in the log);
#  - a changed listen = moves the listener: the new port answers with the
#    new token, the old one refuses connections, the socket stays; a
#    connection the old listener accepted finishes its request in flight
#    (answered with "Connection: close") and closes, an idle one closes at
#    once: nothing more is served on the old address;
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

# two clients connected to the old listener across the move (raw sockets,
# to see what the server does with the connection):
#  - idle: one request answered before the move, then nothing sent; the
#    move must close it at once (main kept it open until h2o's keep-alive
#    timeout, 10 s);
#  - busy: a request whose body is half sent at the move; its body
#    completes after the move, so it is handled then (with the new token),
#    answered with "Connection: close", and the connection closes.
python3 - "$port" "$tok1" "$tok2" "$tmp/go" >"$tmp/keep.out" 2>&1 <<'PY' &
import os, socket, sys, time
port, tok1, tok2, go = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]

def response(s):
    """One HTTP/1.1 response: (status, headers dict, body)."""
    buf = b""
    while b"\r\n\r\n" not in buf:
        d = s.recv(65536)
        if not d:
            return None, {}, b""
        buf += d
    head, body = buf.split(b"\r\n\r\n", 1)
    lines = head.decode().split("\r\n")
    hdr = {k.strip().lower(): v.strip() for k, v in (l.split(":", 1) for l in lines[1:])}
    n = int(hdr.get("content-length", 0))
    while len(body) < n:
        d = s.recv(65536)
        if not d:
            break
        body += d
    return int(lines[0].split()[1]), hdr, body

def eof_within(s, secs):
    """Seconds until the server ends the connection (recv gives b"" or a
    reset), or None when it stays open for secs."""
    s.settimeout(secs)
    t0 = time.monotonic()
    try:
        while s.recv(65536):
            pass
    except socket.timeout:
        return None
    except ConnectionResetError:
        pass
    return time.monotonic() - t0

idle = socket.create_connection(("127.0.0.1", port), timeout=10)
idle.sendall(("GET /v1/servers HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer %s\r\n\r\n" % tok1).encode())
st, hdr, _ = response(idle)
print("idle first", st, hdr.get("connection"), flush=True)
busy = socket.create_connection(("127.0.0.1", port), timeout=10)
body = b'{"padding": "0123456789"}'
busy.sendall(("GET /v1/servers HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer %s\r\n"
              "Content-Length: %d\r\n\r\n" % (tok2, len(body))).encode() + body[:10])
print("busy half sent", flush=True)
for _ in range(200):
    if os.path.exists(go):
        break
    time.sleep(0.05)
t = eof_within(idle, 4)
print("idle", "open after 4 s" if t is None else "closed", flush=True)
busy.sendall(body[10:])
st, hdr, _ = response(busy)
print("busy answered", st, hdr.get("connection"), flush=True)
t = eof_within(busy, 4)
print("busy", "open after 4 s" if t is None else "closed", flush=True)
PY
keep=$!
st_pids+=("$keep")
for _ in $(seq 1 50); do grep -q "busy half sent" "$tmp/keep.out" && break; sleep 0.1; done
echo "$tok2" >"$tmp/token"
sed -i "s|^listen = .*|listen = 127.0.0.1:$port2|" "$conf"
kill -HUP "$dpid"
dm_wait "$log" 'daemon: reloaded' 10
dm_wait "$log" "daemon: reload: the API now listens on http://127.0.0.1:$port2 \(was 127.0.0.1:$port\)" 5
dm_wait "$log" "daemon: reload: [0-9]+ connections? to the old listener closes? after the request in flight" 5
touch "$tmp/go"
wait "$keep"
grep -qx "idle first 200 keep-alive" "$tmp/keep.out" || bad "the idle client's first request: $(tr '\n' '|' <"$tmp/keep.out")"
grep -qx "idle closed" "$tmp/keep.out" ||
  bad "an idle keep-alive connection to the old listener stays open after the move: $(tr '\n' '|' <"$tmp/keep.out")"
grep -qx "busy answered 200 close" "$tmp/keep.out" ||
  bad "the request in flight on the old listener at the move is not answered with Connection: close: $(tr '\n' '|' <"$tmp/keep.out")"
grep -qx "busy closed" "$tmp/keep.out" ||
  bad "the old listener's connection stays open after its request in flight: $(tr '\n' '|' <"$tmp/keep.out")"
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
