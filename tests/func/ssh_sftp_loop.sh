#!/usr/bin/env bash
# Issue 11's "one loop thread drives many SSH servers at once, with no
# thread per server", for SFTP mode: the receiver is stepped on the
# engine's loop (transport_sftp.c), where it had a thread per server
# before (11 or 13 threads for 8 servers against 6 for one).
#
# Eight roots behind one real sshd, transport = sftp, synced in one run,
# against one root alone. Asserted:
#  - every root converges, each gets its .distsync/manifest;
#  - the console's peak thread count (/proc/PID/task, sampled every 20 ms)
#    is no higher with 8 SFTP servers than with 1.
set -uo pipefail
: "${DISTSYNC:?}" "${DS_SRC:?}"
source "$DS_SRC/tests/func/lib/sync.bash"
source "$DS_SRC/tests/func/lib/sshd.bash"
st_init ssh_sftp_loop
export DISTSYNC_TEST_NO_FSYNC=1
sshd_start "$tmp/sshd"
n=8

mkdir -p "$tmp/store/patches/sub" "$tmp/state"
for i in 1 2 3 4 5 6; do head -c 300000 /dev/urandom >"$tmp/store/patches/p$i.bin"; done
head -c $((4 << 20)) /dev/urandom >"$tmp/store/patches/sub/big.bin"
sshd_known_hosts "$tmp/known_hosts"
conf() { # conf FILE ROOT_INDEX...
  local f=$1 i
  shift
  printf '[console]\nstore = %s\nstate = %s\nclasses = patches\nmax_servers = 20\n' \
    "$tmp/store" "$tmp/state" >"$f"
  for i in "$@"; do
    mkdir -p "$tmp/r$i"
    printf '\n[server s%s]\nurl = ssh://%s@127.0.0.1:%s%s\ntransport = sftp\n' \
      "$i" "$SSHD_USER" "$SSHD_PORT" "$tmp/r$i" >>"$f"
    printf 'identity = %s\nknown_hosts = %s\n' "$SSH_KEY" "$tmp/known_hosts" >>"$f"
  done
}
conf "$tmp/one.conf" 0
conf "$tmp/all.conf" $(seq 1 $n)
"$DISTSYNC" -c "$tmp/all.conf" scan >/dev/null || bad "scan"

ST_WATCH_S=0.02 # the thread count sampled every 20 ms

st_watch_sync "$tmp/one.conf" "$tmp/one.out"
one=$MAXTHREADS
[ "$RC" = 0 ] || bad "one SFTP server: exit $RC: $(tail -c 600 "$tmp/one.out")"
st_check_converged "$tmp/store" "$tmp/r0" "server s0"
echo "1 SFTP server: at most $one threads, $RUN_MS ms"

st_watch_sync "$tmp/all.conf" "$tmp/all.out"
echo "$n SFTP servers: at most $MAXTHREADS threads, $RUN_MS ms (exit $RC)"
[ "$RC" = 0 ] || bad "$n SFTP servers: exit $RC: $(tail -c 600 "$tmp/all.out")"
for i in $(seq 1 $n); do
  st_check_converged "$tmp/store" "$tmp/r$i" "server s$i"
  [ -s "$tmp/r$i/.distsync/manifest" ] || bad "s$i: no manifest on the server"
done
[ "$MAXTHREADS" -le "$one" ] ||
  bad "$MAXTHREADS threads with $n SFTP servers, $one with one: a thread per SFTP server"
st_exit ssh_sftp_loop
