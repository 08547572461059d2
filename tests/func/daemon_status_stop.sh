#!/usr/bin/env bash
# Live statuses (GET /v1/status?live=1) waiting on an ssh:// server that is
# a silent TCP peer (it accepts and never speaks): at most 4 at once, a
# fifth is answered 503 at once (2eb27c2); at the daemon's stop each of the
# 4 is cancelled and its client gets a JSON 503 'the daemon is stopping',
# not an empty reply (c0c108e).
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
live() { # K: a live status of s1 in the background, its code and body in live.K
  curl -s -m 30 -o "$tmp/live.$1.body" -w '%{http_code}' --unix-socket "$sock" \
    "http://localhost/v1/status?live=1&servers=s1&scan=0" >"$tmp/live.$1.code" 2>/dev/null
}
cpids=()
for k in 1 2 3 4; do
  live "$k" &
  cpids+=($!)
done
sleep 1.5 # the statuses are connected to the silent peer by now
api GET '/v1/status?live=1&servers=s1&scan=0'
expect 503 "a fifth live status" && [[ $body == *"4 live status requests are under way"* ]] ||
  bad "a fifth live status: $body"
for k in 1 2 3 4; do
  kill -0 "${cpids[k - 1]}" 2>/dev/null || bad "live status $k ended before the stop: $(cat "$tmp/live.$k.code" "$tmp/live.$k.body")"
done
dm_stop
for k in 1 2 3 4; do
  wait "${cpids[k - 1]}"
  code=$(cat "$tmp/live.$k.code") body=$(cat "$tmp/live.$k.body")
  [ "$code" = 503 ] || bad "live status $k cancelled by the stop: HTTP $code, expected 503: '$body'"
  [ "$(jq_py 'j["error"]' 2>/dev/null)" = "the daemon is stopping: the live status was cancelled" ] ||
    bad "live status $k: the 503 does not say the daemon is stopping: '$body'"
done
st_exit daemon_status_stop
