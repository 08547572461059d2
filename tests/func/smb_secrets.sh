#!/usr/bin/env bash
# The SMB password never shows: while `distsync config check --connect`
# talks to a real smbd (slowed by tools/tcp-relay so that there is time to
# look), neither `ps` (arguments and environment), /proc/PID/cmdline nor
# /proc/PID/environ of distsync holds it, whether it came from a
# credentials file or from DISTSYNC_SMB_PASSWORD (which distsync scrubs
# from its environment as it starts); nor does the debug log (-v) of the
# connect and of a sync, nor anything in the state directory (the SQLite
# catalog with its runs and events) after that sync.
set -euo pipefail
: "${DISTSYNC:?}" "${DS_SRC:?}"
source "$DS_SRC/tests/func/lib/sync.bash"
source "$DS_SRC/tests/func/lib/smbd.bash"
st_init smb_secrets
unset DISTSYNC_SMB_USER DISTSYNC_SMB_PASSWORD DISTSYNC_SMB_DOMAIN
smbd_start "$tmp/smbd"
mkdir -p "$SMBD_SHARE_DIR/content" "$tmp/store/patches"
head -c 20000 /dev/urandom >"$tmp/store/patches/a.bin"
smbd_creds "$tmp/good.cred"

rport=$(smbd_free_port)
python3 "$DS_SRC/tools/tcp-relay" "$rport" "$SMBD_PORT" "$tmp/relay.count" --delay-ms 60 \
  >/dev/null 2>&1 &
st_pids+=($!)
for _ in $(seq 50); do
  python3 -c 'import socket,sys; socket.create_connection(("127.0.0.1", int(sys.argv[1])), 1)' \
    "$rport" 2>/dev/null && break
  sleep 0.1
done

# conf [CRED]: one smb:// server through the slow relay
conf() {
  {
    printf '[console]\nstore = %s\nstate = %s\nclasses = patches\n' "$tmp/store" "$tmp/state"
    printf '[server lyon-1]\nurl = smb://127.0.0.1:%s/dist/content\nconnect_timeout = 20s\n' "$rport"
    [ -z "${1:-}" ] || printf 'credentials = %s\n' "$1"
  } >"$tmp/t.conf"
}
# watch WHAT ARGS...: runs distsync ARGS in the background and looks at it
# (ps, /proc) until it ends, from the moment its first bytes reach the relay
# (an environment variable is in the process's environment from exec until
# distsync's main() scrubs it: that instant is not looked at); it must have
# connected.
watch() {
  local what=$1 pid seen=0 rc=0 before
  shift
  before=$(cat "$tmp/relay.count" 2>/dev/null || echo "0 0")
  "$DISTSYNC" -v -c "$tmp/t.conf" "$@" >"$tmp/out.$what" 2>&1 &
  pid=$!
  while kill -0 "$pid" 2>/dev/null; do
    if [ "$(cat "$tmp/relay.count" 2>/dev/null || echo "0 0")" = "$before" ]; then
      sleep 0.01
      continue
    fi
    {
      ps -eo pid,args
      ps eww -p "$pid" || true
      tr '\0' '\n' <"/proc/$pid/cmdline" || true
      tr '\0' '\n' <"/proc/$pid/environ" || true
    } >>"$tmp/ps.$what" 2>/dev/null
    seen=$((seen + 1))
    sleep 0.05
  done
  wait "$pid" || rc=$?
  [ "$rc" = 0 ] || bad "$what: distsync $* exit $rc: $(cat "$tmp/out.$what")"
  [ "$seen" -ge 3 ] || bad "$what: distsync ended before it could be looked at ($seen looks)"
  grep -q "connect    lyon-1: ok" "$tmp/out.$what" || bad "$what: no connect: $(cat "$tmp/out.$what")"
  grep -q -- "config check --connect" "$tmp/ps.$what" || bad "$what: ps never saw distsync"
}

conf "$tmp/good.cred"
watch file config check --connect
conf
DISTSYNC_SMB_USER=$SMBD_USER DISTSYNC_SMB_PASSWORD=$SMBD_PASSWORD watch env config check --connect
grep -q '^DISTSYNC_SMB_USER=distsync' "$tmp/ps.env" || bad "env: /proc/PID/environ was not read"

# a sync (whatever it achieves) writes the catalog, runs and events
DISTSYNC_SMB_USER=$SMBD_USER DISTSYNC_SMB_PASSWORD=$SMBD_PASSWORD \
  "$DISTSYNC" -v -c "$tmp/t.conf" sync lyon-1 >"$tmp/out.sync" 2>&1 || true
ls "$tmp/state"/* >/dev/null 2>&1 || bad "the sync left no state to look at"

for f in "$tmp"/ps.* "$tmp"/out.*; do
  grep -a -q -F -- "$SMBD_PASSWORD" "$f" && bad "the password is in $(basename "$f")"
done
grep -r -a -l -F -- "$SMBD_PASSWORD" "$tmp/state" && bad "the password is in the state directory"
st_exit smb_secrets
