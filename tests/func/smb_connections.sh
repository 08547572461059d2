#!/usr/bin/env bash
# Several SMB connections per server (issue 12): `connections = N` spreads
# single-frame files over N SMB connections, each in a process of its own
# (libsmbclient is not thread-safe), while one session keeps the lease and
# the manifest. A real smbd behind tools/tcp-relay with 40 ms round trips
# (--conns logs which TCP connection carried each chunk, and when); 30 new
# files of 4 KB, synced with connections = 1, then to another directory
# with connections = 4. Checked: with 4, four SMB connections carried the
# files (distinct TCP connections with traffic) and requests were in
# flight on several of them at once (up to 1 with connections = 1); the
# wall time is at most 0.6x that of one connection (a generous margin:
# about 0.3x measured here); both trees converge, the manifest records every
# file, and the worker's counters sum every connection's writes.
set -uo pipefail
: "${DISTSYNC:?}" "${DS_SRC:?}"
source "$DS_SRC/tests/func/lib/sync.bash"
source "$DS_SRC/tests/func/lib/smbd.bash"
st_init smb_connections
smbd_start "$tmp/smbd"
smbd_creds "$tmp/cred"
store=$tmp/store
mkdir -p "$store/engines" "$SMBD_SHARE_DIR/c1" "$SMBD_SHARE_DIR/c4"
for i in $(seq 30); do head -c 4096 /dev/urandom >"$store/engines/f$i"; done
smbd_relay "$tmp/count" --delay-ms 20 --conns "$tmp/conns"

# run N: sync server cN with connections = N; its chunks in $tmp/connsN
run() {
  local n=$1 t0 t1
  cat >"$tmp/d$n.conf" <<CONF
[console]
store = $store
state = $tmp/state$n
lease_ttl = 3600
[server c$n]
url = smb://127.0.0.1:$SMBD_RELAY_PORT/dist/c$n
credentials = $tmp/cred
classes = engines
connections = $n
CONF
  : >"$tmp/conns"
  t0=$(date +%s.%N)
  "$DISTSYNC" -c "$tmp/d$n.conf" sync "c$n" >"$tmp/out$n" 2>&1 || bad "sync c$n: $(tail -3 "$tmp/out$n")"
  t1=$(date +%s.%N)
  cp "$tmp/conns" "$tmp/conns$n"
  wall[n]=$(echo "$t1 - $t0" | bc)
  st_check_converged "$store" "$SMBD_SHARE_DIR/c$n" "connections = $n"
}
# smbd_share_count DIR: files published in DIR (state dir excluded)
smbd_share_count() { find "$1" -path "$1/.distsync" -prune -o -type f -print | wc -l; }
declare -a wall
run 1
run 4

# CONNS: "CONNECTIONS MAXIN": TCP connections that carried over 16 KB (the
# SMB sessions; distsync's NEGOTIATE probe is a short connection of its
# own), and the most connections with a request in flight at once (sent
# toward smbd, its answer not yet back)
overlap() {
  python3 - "$1" <<'PY'
import sys, collections
ev = collections.defaultdict(list)
for l in open(sys.argv[1]):
    c, t, d, n = l.split()
    ev[int(c)].append((float(t), int(d), int(n)))
busy = [c for c, e in ev.items() if sum(x[2] for x in e) > 16384]
iv = []
for c in busy:
    start = None
    for t, d, n in ev[c]:
        if d == 0 and start is None:
            start = t
        elif d == 1 and start is not None:
            iv.append((start, 1)); iv.append((t, -1)); start = None
iv.sort()
cur = best = 0
for t, k in iv:
    cur += k
    best = max(best, cur)
print(len(busy), best)
PY
}
read -r n1 in1 < <(overlap "$tmp/conns1")
read -r n4 in4 < <(overlap "$tmp/conns4")
echo "smb_connections: connections=1: ${wall[1]} s, $n1 SMB connections, at most $in1 in flight;" \
  "connections=4: ${wall[4]} s, $n4 SMB connections, at most $in4 in flight"
[ "$n1" = 1 ] || bad "connections = 1: $n1 TCP connections carried the sync (expected 1)"
[ "$in1" -le 1 ] || bad "connections = 1: $in1 requests in flight at once"
[ "$n4" = 4 ] || bad "connections = 4: $n4 TCP connections carried the sync (expected 4)"
[ "$in4" -ge 3 ] || bad "connections = 4: at most $in4 requests in flight at once (expected 3 or more)"
[ "$(echo "${wall[4]} < 0.6 * ${wall[1]}" | bc)" = 1 ] ||
  bad "connections = 4 took ${wall[4]} s, not under 0.6x the ${wall[1]} s of one connection"
# one manifest, every file in it (the helpers' commits recorded by the session)
"$DISTSYNC" -c "$tmp/d4.conf" status c4 --no-scan >"$tmp/st4" 2>&1 || bad "status: $(tail -2 "$tmp/st4")"
"$DISTSYNC" -c "$tmp/d4.conf" sync c4 >"$tmp/again" 2>&1 || bad "second sync: $(tail -3 "$tmp/again")"
grep -q 'status c4: .*30 in sync' "$tmp/st4" || bad "status c4: $(cat "$tmp/st4")"
grep -q 'sync c4: ok, 0 files' "$tmp/again" || bad "a second sync sent files: $(grep 'sync c4' "$tmp/again")"
grep -qi 'adopt' "$tmp/again" && bad "a second sync adopted files the manifest missed: $(grep -i -m2 adopt "$tmp/again")"
w=$(smbd_counter c4 'wrote ([0-9]+) bytes' "$tmp/out4")
[ "$w" -ge $((30 * 4096)) ] || bad "the worker's counters say $w bytes written for 30 x 4096 (connections not summed)"

# a helper killed mid-sync: its file is applied on the worker's own
# connection, the others go on, and the sync converges
mkdir -p "$SMBD_SHARE_DIR/k"
sed -e 's/c4\]/k]/' -e 's|/dist/c4|/dist/k|' -e "s|state4|statek|" "$tmp/d4.conf" >"$tmp/dk.conf"
"$DISTSYNC" -c "$tmp/dk.conf" sync k >"$tmp/outk" 2>&1 &
spid=$!
killed=
for _ in $(seq 100); do
  w=$(pgrep -f -- "smb-worker --url smb://127.0.0.1:$SMBD_RELAY_PORT/dist/k " | head -1 || true)
  h=$([ -n "$w" ] && pgrep -P "$w" | head -1 || true)
  if [ -n "$h" ] && [ "$(smbd_share_count "$SMBD_SHARE_DIR/k")" -ge 4 ]; then
    kill -9 "$h" && killed=$h
    break
  fi
  sleep 0.1
done
[ -n "$killed" ] || bad "no helper of the SMB worker to kill"
wait "$spid" || bad "the sync with a helper killed failed: $(tail -3 "$tmp/outk")"
grep -q 'SMB connection [0-9] ended.*applied on the worker' "$tmp/outk" ||
  bad "a helper's death is not reported: $(grep -i 'connection' "$tmp/outk" | head -3)"
"$DISTSYNC" -c "$tmp/dk.conf" sync k >"$tmp/outk2" 2>&1 || bad "resync k: $(tail -3 "$tmp/outk2")"
st_check_converged "$store" "$SMBD_SHARE_DIR/k" "a helper killed, then a resync"
st_exit smb_connections
