#!/usr/bin/env bash
# Cross-site request forgery on the daemon's API. The README's way to reach
# the web page through the Unix socket (ssh -L 8750:STATE/distsync.sock, then
# http://localhost:8750/) asks no token, so any page the operator's browser
# visits could POST to http://localhost:8750/v1/freeze (a text/plain "simple"
# request needs no CORS preflight). A browser sends Origin on such a
# request: the daemon refuses one that is not the listener's own
# scheme://host (403, nothing changes), over the socket and over TCP with
# the token; same-origin (the page's own calls) and no Origin (curl, the
# CLI) still work.
set -uo pipefail
. "$(dirname "$0")/lib/sync.bash"
. "$(dirname "$0")/lib/engine.bash"
. "$(dirname "$0")/lib/daemon.bash"
. "$(dirname "$0")/lib/api.bash"
st_init daemon_api_csrf

gate_init 16
en_fill "$tmp/store" 2 4096
gate_console
cat >>"$conf" <<CONF

[server s1]
url = file://$tmp/t1
create_root = yes
CONF
log=$tmp/daemon.log
dm_start "$log" 2026-03-10T01:00:00Z 1
api_wait_up "$log" || st_exit daemon_api_csrf

frozen() { api GET /v1/servers; jq_py 'j["servers"][0]["frozen"] is not None'; }
freeze='{"servers":["s1"],"reason":"csrf"}'
# over the socket, as a browser on a forwarded port would send it
api POST /v1/freeze "$freeze" -H 'Content-Type: text/plain' -H 'Origin: http://evil.example'
expect 403 "socket: a freeze from another origin"
[ "$(frozen)" = False ] || bad "socket: a cross-origin freeze froze s1"
api POST /v1/run-now '{"all":true}' -H 'Origin: null'
expect 403 "socket: a run-now from Origin: null"
api POST /v1/freeze "$freeze" -H 'Origin: http://localhost'
expect 200 "socket: a same-origin freeze (Origin http://localhost, Host localhost)"
[ "$(frozen)" = True ] || bad "socket: the same-origin freeze did not freeze s1"
api POST /v1/thaw '{"all":true}'
expect 200 "socket: a thaw without Origin (curl)"
[ "$(frozen)" = False ] || bad "socket: the thaw did not thaw s1"

# over TCP with the operator's token
api_url=http://127.0.0.1:$port
api_hdr=(-H "Authorization: Bearer $optok")
api POST /v1/freeze "$freeze" -H 'Origin: http://evil.example'
expect 403 "tcp: a freeze from another origin, with the token"
api POST /v1/freeze "$freeze" -H "Origin: http://127.0.0.1:$port"
expect 200 "tcp: a same-origin freeze"
api_url=
[ "$(frozen)" = True ] || bad "tcp: the same-origin freeze did not freeze s1"
dm_stop
st_exit daemon_api_csrf
