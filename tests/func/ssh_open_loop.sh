#!/usr/bin/env bash
# The SSH open (DNS, connect, handshake, host key, auth, exec channel) runs
# on the engine's loop, with no thread per server and nothing that holds
# the others. Four servers point at a fake sshd, a listener that accepts
# the TCP connection and never sends a banner (so their handshakes hang
# until connect_timeout = 25s); five real servers behind a real sshd
# (transport = agent) sync in the same run, listed after the four. Every
# lookup is held 1.5 s by the test hook DISTSYNC_TEST_DNS_DELAY_MS (a slow
# resolver). Asserted:
#  - the five real roots converge within 15 s (an open that blocked a
#    worker per server would wait for the four hung ones: >= 25 s);
#  - the four hung servers fail at connect_timeout, naming the server and
#    the handshake;
#  - the console's threads (/proc/PID/task, sampled every 50 ms) are no
#    more in the 9-server run than in a run of one real server;
#  - SIGTERM during a hung handshake ends the run at once as cancelled.
set -uo pipefail
: "${DISTSYNC:?}" "${DS_SRC:?}"
source "$DS_SRC/tests/func/lib/sync.bash"
source "$DS_SRC/tests/func/lib/sshd.bash"
st_init ssh_open_loop
export DISTSYNC_TEST_NO_FSYNC=1 DISTSYNC_TEST_DNS_DELAY_MS=1500
sshd_start "$tmp/sshd"
nreal=5 nhung=4 hung_s=25 prompt_s=15

# the fake sshd: accepts, holds every connection, never sends a byte
python3 - "$tmp/tarpit.port" <<'PY' &
import socket, sys, time
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", 0))
s.listen(64)
open(sys.argv[1] + ".tmp", "w").write(str(s.getsockname()[1]))
import os
os.rename(sys.argv[1] + ".tmp", sys.argv[1])
held = []
while True:
    c, _ = s.accept()
    held.append(c)
PY
st_pids+=("$!")
for _ in $(seq 100); do [ -s "$tmp/tarpit.port" ] && break; sleep 0.05; done
tport=$(cat "$tmp/tarpit.port") || bad "the fake sshd did not start"

mkdir -p "$tmp/store/patches" "$tmp/state"
for i in 1 2 3; do head -c 200000 /dev/urandom >"$tmp/store/patches/p$i.bin"; done
sshd_known_hosts "$tmp/known_hosts"
conf() { # conf FILE HUNG REAL...
  local f=$1 hung=$2
  shift 2
  printf '[console]\nstore = %s\nstate = %s\nclasses = patches\nmax_servers = 20\n' \
    "$tmp/store" "$tmp/state" >"$f"
  for i in $(seq 1 "$hung"); do
    printf '\n[server hung%s]\nurl = ssh://%s@127.0.0.1:%s/nowhere\nidentity = %s\n' \
      "$i" "$SSHD_USER" "$tport" "$SSH_KEY" >>"$f"
    printf 'known_hosts = %s\ntransport = agent\nconnect_timeout = %ss\n' \
      "$tmp/known_hosts" "$hung_s" >>"$f"
  done
  for i in "$@"; do
    mkdir -p "$tmp/r$i"
    printf '\n[server s%s]\nurl = ssh://%s@127.0.0.1:%s%s\nidentity = %s\n' \
      "$i" "$SSHD_USER" "$SSHD_PORT" "$tmp/r$i" "$SSH_KEY" >>"$f"
    printf 'known_hosts = %s\ntransport = agent\nagent = %s agent\n' \
      "$tmp/known_hosts" "$DISTSYNC" >>"$f"
  done
}
conf "$tmp/one.conf" 0 0
conf "$tmp/d.conf" "$nhung" $(seq 1 $nreal)
"$DISTSYNC" -c "$tmp/d.conf" scan >/dev/null || bad "scan"
now_ms() { date +%s%3N; }

st_watch_sync "$tmp/one.conf" "$tmp/one.out" "$tmp/r0"
one_threads=$MAXTHREADS
[ "$RC" = 0 ] || bad "one server: exit $RC: $(tail -c 600 "$tmp/one.out")"
echo "1 server: at most $one_threads threads, $RUN_MS ms"

st_watch_sync "$tmp/d.conf" "$tmp/all.out" $(for i in $(seq 1 $nreal); do echo "$tmp/r$i"; done)
echo "$((nreal + nhung)) servers ($nhung hung): at most $MAXTHREADS threads," \
  "the $nreal real roots converged after $CONV_MS ms, the run took $RUN_MS ms (exit $RC)"
[ "$RC" = 4 ] || bad "exit $RC with $nhung hung servers, expected 4: $(tail -c 600 "$tmp/all.out")"
for i in $(seq 1 $nreal); do st_check_converged "$tmp/store" "$tmp/r$i" "server s$i"; done
[ "$CONV_MS" -ge 0 ] && [ "$CONV_MS" -le $((prompt_s * 1000)) ] ||
  bad "the real servers converged after $CONV_MS ms (-1: only at the end), more than" \
    "$prompt_s s: the hung opens held them"
for i in $(seq 1 $nhung); do
  grep -q "server hung$i: .*SSH handshake: no answer within connect_timeout = ${hung_s}s" \
    "$tmp/all.out" || bad "hung$i: no clear handshake timeout: $(tail -c 800 "$tmp/all.out")"
done
[ "$RUN_MS" -ge $((hung_s * 1000)) ] || bad "the run ended after $RUN_MS ms, before connect_timeout"
[ "$MAXTHREADS" -le "$one_threads" ] ||
  bad "$MAXTHREADS threads with $((nreal + nhung)) servers, $one_threads with one: threads grow" \
    "with the servers"

# SIGTERM while a handshake hangs: the open stops at once (exit 143,
# "cancelled"), not at connect_timeout
t0=$(now_ms)
"$DISTSYNC" -c "$tmp/d.conf" sync hung1 >"$tmp/term.out" 2>&1 &
pid=$!
st_pids+=("$pid")
sleep 1.5
kill -TERM "$pid"
RC=0
wait "$pid" || RC=$?
dt=$(($(now_ms) - t0))
echo "SIGTERM during a hung handshake: exit $RC after $dt ms"
[ "$RC" = 143 ] || bad "SIGTERM during the open: exit $RC, expected 143: $(cat "$tmp/term.out")"
[ "$dt" -lt 6000 ] || bad "SIGTERM during the open: the run took $dt ms (connect_timeout ${hung_s}s)"
grep -q "server hung1: cancelled" "$tmp/term.out" || bad "no 'cancelled': $(cat "$tmp/term.out")"
st_exit ssh_open_loop
