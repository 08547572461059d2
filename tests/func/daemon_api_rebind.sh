#!/usr/bin/env bash
# DNS rebinding on the daemon's socket. The README's way to reach the web
# page (ssh -L 8750:STATE/distsync.sock, then http://localhost:8750/) asks
# no token. A page the operator's browser visits at http://evil.example:8750/
# can make evil.example resolve to 127.0.0.1: its own GETs then reach the
# socket, same-origin, with "Host: evil.example:8750", and read the status.
# The socket answers only a Host that is this machine's own (localhost,
# 127.0.0.1, [::1], any port, or [console] listen's host); any other gets a
# JSON 421 with no data. curl and the CLI (Host: localhost) still work.
set -uo pipefail
. "$(dirname "$0")/lib/sync.bash"
. "$(dirname "$0")/lib/engine.bash"
. "$(dirname "$0")/lib/daemon.bash"
. "$(dirname "$0")/lib/api.bash"
st_init daemon_api_rebind

gate_init 16
en_fill "$tmp/store" 2 4096
gate_console
# listen on 127.0.0.2, which is not in the fixed list: its Host is
# accepted only through [console] listen's own host
sed -i "s/^listen = 127\.0\.0\.1:/listen = 127.0.0.2:/" "$conf"
cat >>"$conf" <<CONF

[server secret-s1]
url = file://$tmp/t1
create_root = yes
CONF
log=$tmp/daemon.log
dm_start "$log" 2026-03-10T01:00:00Z 1
api_wait_up "$log" || st_exit daemon_api_rebind

for h in evil.example:8750 evil.example localhost.evil.example:8750 127.0.0.1.evil.example \
  'localhost:87x0' '[::1]x:8750' 'localhost:8750:1'; do
  for p in /v1/servers /v1/status /; do
    api GET "$p" '' -H "Host: $h"
    expect 421 "GET $p with Host: $h (a rebinding page)"
    grep -q secret-s1 <<<"$body" && bad "GET $p with Host: $h shows the servers: $body"
  done
  api POST /v1/freeze '{"servers":["secret-s1"],"reason":"rebind"}' -H "Host: $h" \
    -H "Origin: http://$h"
  expect 421 "POST /v1/freeze with Host and Origin $h"
done
api GET /v1/servers '' -H 'Host: 127.0.0.1:8750'
expect 200 "Host 127.0.0.1:8750 (a forwarded port)"
api GET /v1/servers '' -H 'Host: [::1]:8750'
expect 200 "Host [::1]:8750"
api GET /v1/servers '' -H 'Host: LocalHost:8750'
expect 200 "Host LocalHost:8750"
api GET /v1/servers '' -H 'Host: localhost'
expect 200 "Host localhost"
api GET /v1/servers '' -H "Host: 127.0.0.1:$port"
expect 200 "Host 127.0.0.1:$port"
api GET /v1/servers '' -H "Host: 127.0.0.2:$port"
expect 200 "Host = [console] listen"
api GET /v1/servers '' -H "Host: 127.0.0.3:$port"
expect 421 "Host 127.0.0.3 (neither local by name nor [console] listen's)"
api GET /v1/servers
expect 200 "curl --unix-socket's own Host"
grep -q secret-s1 <<<"$body" || bad "GET /v1/servers over the socket: $body"
[ "$(jq_py 'j["servers"][0]["frozen"] is None')" = True ] || bad "a rebinding POST froze secret-s1: $body"
st_expect_rc 0 "the CLI through the daemon (runs)" "$DISTSYNC" -c "$conf" runs --json
dm_stop
st_exit daemon_api_rebind
