#!/usr/bin/env bash
# A live status under way when the daemon stops (c0c108e): its thread is
# cancelled and the client gets a JSON 503 'the daemon is stopping', not an
# empty reply. The status waits on an ssh:// server that is a silent TCP
# peer (it accepts and never speaks), so it is still under way at the stop.
set -uo pipefail
. "$(dirname "$0")/lib/sync.bash"
. "$(dirname "$0")/lib/engine.bash"
. "$(dirname "$0")/lib/daemon.bash"
. "$(dirname "$0")/lib/api.bash"
st_init daemon_status_stop

state=$tmp/state conf=$tmp/d.conf sock=$tmp/state/distsync.sock
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
python3 -c 'import socket,sys,time
s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(); print("up", flush=True)
c=[]
while True: c.append(s.accept())' "$port" >"$tmp/silent.out" 2>&1 &
st_pids+=($!)
for _ in $(seq 50); do grep -q up "$tmp/silent.out" 2>/dev/null && break; sleep 0.1; done
ssh-keygen -q -t ed25519 -N '' -f "$tmp/key" || bad "ssh-keygen"
: >"$tmp/known_hosts"
en_fill "$tmp/store" 1 4096
en_head "$conf" "$tmp/store" "$state"
printf '\n[server s1]\nurl = ssh://u@127.0.0.1:%s/srv\nidentity = %s\nknown_hosts = %s\nclasses = patches engines definitions\n' \
  "$port" "$tmp/key" "$tmp/known_hosts" >>"$conf"

log=$tmp/daemon.log
dm_start "$log" 2026-03-10T00:00:00Z 1
api_wait_up "$log" || st_exit daemon_status_stop
curl -s -m 30 -o "$tmp/live.body" -w '%{http_code}' --unix-socket "$sock" \
  "http://localhost/v1/status?live=1&servers=s1&scan=0" >"$tmp/live.code" 2>"$tmp/live.err" &
cpid=$!
sleep 1.5 # the status is connected to the silent peer by now
kill -0 "$cpid" 2>/dev/null || bad "the live status ended before the stop: $(cat "$tmp/live.code" "$tmp/live.body")"
dm_stop
wait "$cpid"
code=$(cat "$tmp/live.code") body=$(cat "$tmp/live.body")
[ "$code" = 503 ] || bad "the live status cancelled by the stop: HTTP $code, expected 503: '$body' $(cat "$tmp/live.err")"
[ "$(jq_py 'j["error"]' 2>/dev/null)" = "the daemon is stopping: the live status was cancelled" ] ||
  bad "the 503 does not say the daemon is stopping: '$body'"
st_exit daemon_status_stop
