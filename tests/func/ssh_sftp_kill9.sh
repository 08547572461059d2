#!/usr/bin/env bash
# kill -9 in SFTP mode (transport = sftp, real OpenSSH sshd with a shell
# account: replaces are mv -f): the console, whose in-process SFTP receiver
# dies with it, killed at random points of a sync, and the server's side of
# the connection (the per-connection sshd) killed mid-sync. After each kill
# every visible target file is absent, an old version or the new one
# (sha256 against all versions ever generated), files the server had stay;
# the rerun (the same console takes its own lease back) converges (diff -r)
# and leaves nothing in .distsync/tmp; a cut connection fails the server
# with exit 4 and a message naming it, never a crash.
# DS_SEED=N replays the random points; KILLS=N console kills (default 3).
set -uo pipefail
: "${DISTSYNC:?}" "${DS_SRC:?}"
source "$DS_SRC/tests/func/lib/sync.bash"
source "$DS_SRC/tests/func/lib/sshd.bash"
st_init ssh_sftp_kill9
sshd_start "$tmp/sshd"
seed=${DS_SEED:-$$}
RANDOM=$seed
kills=${KILLS:-3}
echo "seed $seed (DS_SEED=$seed replays)"
store=$tmp/store known=$tmp/known target=$tmp/t-ssh
mkdir -p "$target" "$tmp/state"
sshd_known_hosts "$tmp/known_hosts"
cat >"$tmp/d.conf" <<CONF
[console]
store = $store
state = $tmp/state
classes = patches engines definitions

[server s]
url = ssh://$SSHD_USER@127.0.0.1:$SSHD_PORT$target
identity = $SSH_KEY
known_hosts = $tmp/known_hosts
transport = sftp
prune = yes
CONF
ds() { "$DISTSYNC" -c "$tmp/d.conf" "$@"; }
st_gen "$store" 0 "$known" --files 30 --max 2048 || bad "mkstore"
gen=0
now_ms() { date +%s%3N; }

full_sync() {
  local t0 rc=0
  t0=$(now_ms)
  ds sync s --force --json >"$tmp/out" 2>"$tmp/err" || rc=$?
  dur_ms=$(($(now_ms) - t0))
  [ $rc = 0 ] || bad "$1: rerun exited $rc: $(head -c 600 "$tmp/err")"
  st_check_converged "$store" "$target" "$1"
}
next_gen() {
  gen=$((gen + 1))
  st_gen "$store" "$gen" "$known" || bad "mkstore gen $gen"
  ds scan >/dev/null 2>&1 || bad "scan gen $gen"
}
sleep_ms() { sleep "$(printf '%d.%03d' $(($1 / 1000)) $(($1 % 1000)))"; }

# A kill comes at a random point of the first two thirds of the last
# full sync's time (st_kill_delay), so that most kills land while the sync
# still runs; after a kill that came too late, within two thirds of it.
kill_console() {
  local delay pid
  st_kill_delay
  st_list "$target" "$tmp/before"
  "$DISTSYNC" -c "$tmp/d.conf" sync s --force --json >"$tmp/kout" 2>"$tmp/kerr" &
  pid=$!
  st_pids+=("$pid")
  sleep_ms "$delay"
  kill -9 "$pid" 2>/dev/null
  wait "$pid" 2>/dev/null
  if [ $? = 137 ]; then midrun=$((midrun + 1)); else st_kill_missed; fi
  attempts=$((attempts + 1))
  st_check_versions "$target" "$known" "gen $gen, console killed after ${delay} ms"
  st_check_kept "$target" "$tmp/before" "$store" "gen $gen, console killed after ${delay} ms"
  full_sync "gen $gen after a console kill at ${delay} ms"
  [ -z "$(ls "$target/.distsync" | grep -v -x -e manifest -e tmp)" ] ||
    bad "gen $gen: state files left after the rerun: $(ls "$target/.distsync")"
}

# kill_link: the server side of the connection dies mid-sync
kill_link() {
  local delay pid rc=0 kids
  st_kill_delay
  st_list "$target" "$tmp/before"
  "$DISTSYNC" -c "$tmp/d.conf" sync s --force --json >"$tmp/kout" 2>"$tmp/kerr" &
  pid=$!
  st_pids+=("$pid")
  sleep_ms "$delay"
  kids=$(pgrep -P "$SSHD_PID" 2>/dev/null || true)
  [ -n "$kids" ] && kill -9 $kids 2>/dev/null
  wait "$pid" || rc=$?
  if [ $rc != 0 ]; then midrun=$((midrun + 1)); else st_kill_missed; fi
  attempts=$((attempts + 1))
  if [ $rc -ge 128 ]; then
    bad "console died with signal $((rc - 128)) when the connection was cut"
  elif [ $rc != 0 ] && [ $rc != 4 ]; then
    bad "connection cut: exit $rc, expected 4: $(head -c 400 "$tmp/kerr")"
  elif [ $rc = 4 ] && ! grep -q "server s" "$tmp/kout" "$tmp/kerr"; then
    bad "connection cut: no error names the server: $(head -c 400 "$tmp/kerr")"
  fi
  st_check_versions "$target" "$known" "gen $gen, connection cut after ${delay} ms"
  st_check_kept "$target" "$tmp/before" "$store" "gen $gen, connection cut after ${delay} ms"
  full_sync "gen $gen after a connection cut at ${delay} ms"
}

ds scan >/dev/null 2>&1 || bad "first scan"
dur_ms=600 midrun=0 attempts=0
kill_console # during the first, whole-file sync
for k in $(seq "$kills"); do
  [ "$fail" = 0 ] || break
  next_gen
  kill_console
done
for k in 1 2; do
  [ "$fail" = 0 ] || break
  next_gen
  kill_link
done
echo "kills that landed mid-sync: $midrun of $attempts"
[ $((midrun * 2)) -ge "$attempts" ] || bad "only $midrun of $attempts kills landed during a sync"
st_exit ssh_sftp_kill9
