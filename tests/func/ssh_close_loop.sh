#!/usr/bin/env bash
# auto's probe of the agent and the close of an ssh:// transport run on the
# engine's loop: a server that stalls there holds no libuv worker (libuv
# has four; the sender's blocks, the retain job and the closes of other
# transports need them). Against a real sshd:
#  - four agent-mode servers whose agent, once its input ends, never ends
#    its output (a wrapper that runs the real agent, then sleeps with the
#    channel's stdout open: the close waits for EOF until timeout = 20s),
#    already in sync, beside five real servers with 9 MB each to send: the
#    five converge within 14 s (a close that blocked a worker per server
#    would hold all four workers: >= 20 s; the five reach sshd through a
#    relay that holds each connection 3 s first, so that they start while
#    the four closes hang), and the four fail naming the agent that did
#    not exit;
#  - four transport = auto servers whose agent command never answers
#    HELLO (the probe waits timeout = 20s, then they fall back to SFTP and
#    sync), beside five fresh real servers: the five converge within 14 s,
#    the four converge too and their events say why SFTP;
#  - SIGTERM while a close hangs, and while a probe hangs, ends the run
#    within 6 s (a worker's close or probe waited out the 20 s).
set -uo pipefail
: "${DISTSYNC:?}" "${DS_SRC:?}"
source "$DS_SRC/tests/func/lib/sync.bash"
source "$DS_SRC/tests/func/lib/sshd.bash"
st_init ssh_close_loop
export DISTSYNC_TEST_NO_FSYNC=1
sshd_start "$tmp/sshd"
nreal=5 nhung=4 hang_s=20 prompt_s=14

# the relay of the real servers: each connection held 3 s, then forwarded
python3 - "$tmp/relay.port" "$SSHD_PORT" <<'PY' &
import os, socket, sys, threading, time
def pipe(a, b):
    try:
        while True:
            d = a.recv(65536)
            if not d:
                break
            b.sendall(d)
    except OSError:
        pass
    for s in (a, b):
        try:
            s.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
def serve(c):
    time.sleep(3)
    u = socket.create_connection(("127.0.0.1", int(sys.argv[2])))
    threading.Thread(target=pipe, args=(c, u), daemon=True).start()
    pipe(u, c)
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", 0))
s.listen(64)
open(sys.argv[1] + ".tmp", "w").write(str(s.getsockname()[1]))
os.rename(sys.argv[1] + ".tmp", sys.argv[1])
while True:
    c, _ = s.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
PY
st_pids+=("$!")
for _ in $(seq 100); do [ -s "$tmp/relay.port" ] && break; sleep 0.05; done
rport=$(cat "$tmp/relay.port") || bad "the relay did not start"

mkdir -p "$tmp/store/patches" "$tmp/state"
for i in 1 2 3; do head -c 3000000 /dev/urandom >"$tmp/store/patches/p$i.bin"; done
sshd_known_hosts "$tmp/known_hosts" "$SSHD_PORT" "$rport"
# the agent that never ends its output after its input ended
printf '#!/bin/sh\n%s agent "$@"\nexec sleep 40\n' "$DISTSYNC" >"$tmp/stuck-agent"
# the agent command that never answers
printf '#!/bin/sh\nexec sleep 40\n' >"$tmp/mute-agent"
chmod +x "$tmp/stuck-agent" "$tmp/mute-agent"

# conf FILE KIND REAL...: KIND stuck (hc1..4 with stuck-agent), mute
# (hp1..4, auto with mute-agent) or plain (hc1..4 with the real agent)
conf() {
  local f=$1 kind=$2 i
  shift 2
  printf '[console]\nstore = %s\nstate = %s\nclasses = patches\nmax_servers = 20\n' \
    "$tmp/store" "$tmp/state" >"$f"
  for i in $(seq 1 $nhung); do
    case $kind in
      stuck | plain)
        mkdir -p "$tmp/hc$i"
        printf '\n[server hc%s]\nurl = ssh://%s@127.0.0.1:%s%s\ntransport = agent\n' \
          "$i" "$SSHD_USER" "$SSHD_PORT" "$tmp/hc$i" >>"$f"
        if [ "$kind" = stuck ]; then
          printf 'agent = %s\n' "$tmp/stuck-agent" >>"$f"
        else
          printf 'agent = %s agent\n' "$DISTSYNC" >>"$f"
        fi
        ;;
      mute)
        mkdir -p "$tmp/hp$i"
        printf '\n[server hp%s]\nurl = ssh://%s@127.0.0.1:%s%s\ntransport = auto\nagent = %s\n' \
          "$i" "$SSHD_USER" "$SSHD_PORT" "$tmp/hp$i" "$tmp/mute-agent" >>"$f"
        ;;
    esac
    printf 'identity = %s\nknown_hosts = %s\ntimeout = %ss\nconnect_timeout = 25s\n' \
      "$SSH_KEY" "$tmp/known_hosts" "$hang_s" >>"$f"
  done
  for i in "$@"; do
    mkdir -p "$tmp/r$i"
    printf '\n[server s%s]\nurl = ssh://%s@127.0.0.1:%s%s\nidentity = %s\n' \
      "$i" "$SSHD_USER" "$rport" "$tmp/r$i" "$SSH_KEY" >>"$f"
    printf 'known_hosts = %s\ntransport = agent\nagent = %s agent\n' \
      "$tmp/known_hosts" "$DISTSYNC" >>"$f"
  done
}
conf "$tmp/plain.conf" plain
conf "$tmp/stuck.conf" stuck $(seq 1 $nreal)
conf "$tmp/mute.conf" mute $(seq 6 $((5 + nreal)))
"$DISTSYNC" -c "$tmp/plain.conf" scan >/dev/null || bad "scan"
now_ms() { date +%s%3N; }
reals() { for i in "$@"; do echo "$tmp/r$i"; done; }

# the four stuck-close servers start in sync: their run goes straight to
# the close
"$DISTSYNC" -c "$tmp/plain.conf" sync --all >"$tmp/plain.out" 2>&1 ||
  bad "the first sync of hc1..$nhung failed: $(tail -c 600 "$tmp/plain.out")"

st_watch_sync "$tmp/stuck.conf" "$tmp/stuck.out" $(reals $(seq 1 $nreal))
echo "$nhung closes that hang, $nreal real servers: converged after $CONV_MS ms," \
  "the run took $RUN_MS ms (exit $RC)"
for i in $(seq 1 $nreal); do st_check_converged "$tmp/store" "$tmp/r$i" "server s$i"; done
[ "$CONV_MS" -ge 0 ] && [ "$CONV_MS" -le $((prompt_s * 1000)) ] ||
  bad "the real servers converged after $CONV_MS ms (-1: only at the end), more than" \
    "$prompt_s s: the hung closes held them"
for i in $(seq 1 $nhung); do
  grep -q "server hc$i: .*the agent did not exit within $hang_s s of the end of its input" \
    "$tmp/stuck.out" || bad "hc$i: no clear close timeout: $(tail -c 800 "$tmp/stuck.out")"
done
[ "$RC" = 4 ] || bad "exit $RC with $nhung hung closes, expected 4: $(tail -c 600 "$tmp/stuck.out")"

st_watch_sync "$tmp/mute.conf" "$tmp/mute.out" $(reals $(seq 6 $((5 + nreal))))
echo "$nhung probes that hang, $nreal real servers: converged after $CONV_MS ms," \
  "the run took $RUN_MS ms (exit $RC)"
[ "$RC" = 0 ] || bad "exit $RC with $nhung mute agents (auto falls back): $(tail -c 600 "$tmp/mute.out")"
[ "$CONV_MS" -ge 0 ] && [ "$CONV_MS" -le $((prompt_s * 1000)) ] ||
  bad "the real servers converged after $CONV_MS ms (-1: only at the end), more than" \
    "$prompt_s s: the hung probes held them"
for i in $(seq 1 $nhung); do
  st_check_converged "$tmp/store" "$tmp/hp$i" "server hp$i over SFTP"
  "$DISTSYNC" -c "$tmp/mute.conf" history --events hp$i >"$tmp/ev.hp$i" 2>&1
  grep -q "transport = auto: '.*mute-agent --root .*' did not answer as a distsync agent within" \
    "$tmp/ev.hp$i" || bad "hp$i: no event saying why SFTP: $(tail -c 600 "$tmp/ev.hp$i")"
done

# SIGTERM while a close hangs, then while a probe hangs
term() { # term CONF SERVER WHAT
  local pid t0 dt
  t0=$(now_ms)
  "$DISTSYNC" -c "$1" sync "$2" >"$tmp/term.out" 2>&1 &
  pid=$!
  st_pids+=("$pid")
  sleep 2
  kill -TERM "$pid"
  RC=0
  wait "$pid" || RC=$?
  dt=$(($(now_ms) - t0))
  echo "SIGTERM while $3 hangs: exit $RC after $dt ms"
  [ "$dt" -lt 8000 ] || bad "SIGTERM while $3 hangs: the run took $dt ms (timeout ${hang_s}s)"
  [ "$RC" = 143 ] || bad "SIGTERM while $3 hangs: exit $RC, expected 143: $(cat "$tmp/term.out")"
}
term "$tmp/stuck.conf" hc1 "the close"
term "$tmp/mute.conf" hp2 "the probe"
st_exit ssh_close_loop
