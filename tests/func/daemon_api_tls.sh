#!/usr/bin/env bash
# TLS on the API's TCP listener (api_tls_cert =, api_tls_key =):
#  - a certificate without its key (or TLS without listen) is a
#    configuration error; a key others can read is refused at start;
#  - with both: https answers with the token (a client verifying the
#    certificate), 401 without it; plain http on the port gets no reply;
#  - the Unix socket stays plain.
set -uo pipefail
. "$(dirname "$0")/lib/sync.bash"
. "$(dirname "$0")/lib/engine.bash"
. "$(dirname "$0")/lib/daemon.bash"
. "$(dirname "$0")/lib/api.bash"
st_init daemon_api_tls
command -v openssl >/dev/null || { echo "SKIP: no openssl"; exit 77; }

state=$tmp/state
conf=$tmp/d.conf
sock=$state/distsync.sock
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
token=tok-$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')
echo "$token" >"$tmp/token" && chmod 600 "$tmp/token"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=127.0.0.1 \
  -addext subjectAltName=IP:127.0.0.1 -keyout "$tmp/key.pem" -out "$tmp/cert.pem" >/dev/null 2>&1 ||
  bad "openssl could not make a certificate"
chmod 600 "$tmp/key.pem"
en_fill "$tmp/store" 1 4096
en_head "$conf" "$tmp/store" "$state" "listen = 127.0.0.1:$port" "api_token_file = $tmp/token" \
  "api_tls_cert = $tmp/cert.pem"
en_server "$conf" s1 "$tmp/t1" local

rc=0
out=$("$DISTSYNC" -c "$conf" daemon 2>&1) || rc=$?
[ "$rc" = 2 ] && echo "$out" | grep -q "key 'api_tls_cert': give both api_tls_cert and api_tls_key" ||
  bad "a certificate without its key: exit $rc: $out"
sed -i "s|^api_tls_cert = .*|&\napi_tls_key = $tmp/key.pem|" "$conf"
sed -i '/^\[server s1\]/,$!{/^listen = /d}' "$conf"
rc=0
out=$("$DISTSYNC" -c "$conf" daemon 2>&1) || rc=$?
[ "$rc" = 2 ] && echo "$out" | grep -q "TLS is for the TCP listener: set listen = too" ||
  bad "TLS without listen: exit $rc: $out"
sed -i "s|^state = .*|&\nlisten = 127.0.0.1:$port|" "$conf"
chmod 644 "$tmp/key.pem"
rc=0
out=$(timeout 20 "$DISTSYNC" -c "$conf" daemon 2>&1) || rc=$?
[ "$rc" = 1 ] && echo "$out" | grep -q "api_tls_key $tmp/key.pem: readable by others (mode 0644).*chmod 600" ||
  bad "a key of mode 0644: exit $rc: $out"
chmod 600 "$tmp/key.pem"
"$DISTSYNC" -c "$conf" scan >/dev/null 2>&1 || bad "scan failed"

log=$tmp/daemon.log
dm_start "$log" 2026-03-10T01:00:00Z 1
api_wait_up "$log" || st_exit daemon_api_tls
grep -q "API on $sock and https://127.0.0.1:$port" "$log" || bad "the log does not say https: $(cat "$log")"

api_url=https://127.0.0.1:$port
api_hdr=(--cacert "$tmp/cert.pem" -H "Authorization: Bearer $token")
api GET /v1/servers
expect 200 "GET servers over TLS with the token"
api POST /v1/run-now '{"servers":["s1"]}'
expect 202 "run-now over TLS"
run_wait "$(jq_py 'j["id"]')" ok 30
en_converged "$tmp/store" "$tmp/t1" "s1 after a run-now over TLS"
api_hdr=(--cacert "$tmp/cert.pem")
api GET /v1/servers
expect 401 "GET servers over TLS without the token"
code=$(curl -s -m 5 -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/v1/servers" -H "Authorization: Bearer $token")
[ "$code" = 000 ] || bad "plain http on the TLS port answered $code"
code=$(curl -s -m 5 -o /dev/null -w '%{http_code}' "https://127.0.0.1:$port/v1/servers" -H "Authorization: Bearer $token")
[ "$code" = 000 ] || bad "a client that does not trust the certificate got $code"
api_url=
api GET /v1/servers
expect 200 "GET servers over the (plain) socket"

dm_stop
st_exit daemon_api_tls
