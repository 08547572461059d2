# A real Samba smbd on a loopback port for the smb:// tests (sourced).
# smbd_start DIR: installs samba and smbclient if missing (needs root),
# writes an smb.conf whose every state, lock, cache, pid, private and log
# directory is under DIR, adds one SMB user to a tdbsam passdb under DIR
# (smbpasswd -c CONF -a -s) and starts `smbd --foreground` on a free
# 127.0.0.1 port (interfaces = 127.0.0.1, bind interfaces only, no NetBIOS).
# The SMB user SMBD_USER ("distsync") is mapped by a username map to root,
# so no Unix account is created or left behind; files on the shares belong
# to root.
#
# Signing is mandatory on the server (server signing = mandatory) and the
# protocol floor is SMB2 (server min protocol = SMB2_02).
#
# Shares (backing directories under DIR):
#   dist    SMBD_SHARE_DIR          the normal share
#   dist2   SMBD_SHARE_DIR too      the same directory through another share:
#                                   a copy from a file opened on dist to one
#                                   opened on dist2 is a cross-share copy,
#                                   which libsmbclient's smbc_splice does on
#                                   the client (read + write over the wire),
#                                   because Samba 4.17 has no smb.conf or
#                                   stacking vfs module that refuses
#                                   FSCTL_SRV_COPYCHUNK on one share
#   enc     SMBD_ENC_DIR            smb encrypt = required (SMB3 only)
#
# Sets SMBD_PORT, SMBD_DIR, SMBD_CONF, SMBD_USER, SMBD_PASSWORD, SMBD_PID,
# SMBD_SHARE_DIR, SMBD_ENC_DIR. smbd is stopped by smbd_stop, which
# smbd_start chains into the EXIT trap: it always runs, even when the test
# fails. A test that cannot get an smbd (not root and samba missing, or
# smbd does not start for a reason outside the test) skips with exit 77.
SMBD_PID=""
SMBD_USER=distsync
SMBD_PASSWORD=""

smbd_stop() {
  [ -n "$SMBD_PID" ] || return 0
  # the listener and the per-connection smbd processes it forked (by id)
  local kids
  kids=$(pgrep -P "$SMBD_PID" 2>/dev/null || true)
  kill "$SMBD_PID" $kids 2>/dev/null || true
  for _ in $(seq 50); do kill -0 "$SMBD_PID" 2>/dev/null || break; sleep 0.1; done
  kill -9 "$SMBD_PID" $kids 2>/dev/null || true
  wait "$SMBD_PID" 2>/dev/null || true
  SMBD_PID=""
}

# smbd_skip MSG: a test that cannot get an smbd says why and passes as
# skipped (exit 77 is CTest's SKIP_RETURN_CODE).
smbd_skip() {
  echo "SKIP: $*"
  exit 77
}

smbd_install() {
  [ -x /usr/sbin/smbd ] && command -v smbclient >/dev/null && command -v smbpasswd >/dev/null &&
    return 0
  [ "$(id -u)" = 0 ] || smbd_skip "samba is not installed and we are not root"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    samba smbclient >/dev/null 2>&1 || smbd_skip "cannot install samba"
}

# smbd_free_port: a port nothing listens on now (the kernel's choice).
smbd_free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# smbd_write_conf DIR PORT: the smb.conf (SMBD_EXTRA, when set, ends the
# [global] section, e.g. "server signing = disabled").
smbd_write_conf() {
  local dir=$1 port=$2
  cat >"$dir/smb.conf" <<CONF
[global]
  server role = standalone server
  workgroup = DSTEST
  netbios name = DSTEST
  smb ports = $port
  interfaces = 127.0.0.1
  bind interfaces only = yes
  disable netbios = yes
  server min protocol = SMB2_02
  server signing = mandatory
  passdb backend = tdbsam:$dir/private/passdb.tdb
  username map = $dir/users.map
  map to guest = never
  restrict anonymous = 2
  pid directory = $dir/run
  lock directory = $dir/lock
  state directory = $dir/state
  cache directory = $dir/cache
  private dir = $dir/private
  ncalrpc dir = $dir/ncalrpc
  binddns dir = $dir/binddns
  log file = $dir/log/smbd.log
  max log size = 0
  log level = 1
  logging = file
  load printers = no
  printing = bsd
  printcap name = /dev/null
  disable spoolss = yes
  usershare path =
  kernel oplocks = no
  ${SMBD_EXTRA:-}

[dist]
  path = $dir/share
  read only = no
  valid users = root

[dist2]
  path = $dir/share
  read only = no
  valid users = root

[enc]
  path = $dir/enc
  read only = no
  valid users = root
  smb encrypt = required
CONF
}

# smbd_run DIR PORT: starts smbd, returns 0 once it accepts connections.
smbd_run() {
  local dir=$1 port=$2 i
  smbd_write_conf "$dir" "$port"
  /usr/sbin/smbd --foreground -s "$dir/smb.conf" \
    </dev/null >>"$dir/log/smbd.out" 2>&1 &
  SMBD_PID=$!
  for i in $(seq 100); do
    kill -0 "$SMBD_PID" 2>/dev/null || break
    if python3 -c 'import socket,sys; socket.create_connection(("127.0.0.1", int(sys.argv[1])), 1)' \
      "$port" 2>/dev/null; then
      return 0
    fi
    sleep 0.1
  done
  smbd_stop
  return 1
}

smbd_start() {
  local dir=$1 prev
  [ "$(id -u)" = 0 ] || smbd_skip "smbd needs root (the SMB user is mapped to root)"
  smbd_install
  mkdir -p "$dir"/{private,run,lock,state,cache,ncalrpc,binddns,log,share,enc}
  chmod 700 "$dir/private"
  SMBD_DIR=$dir
  SMBD_CONF=$dir/smb.conf
  SMBD_SHARE_DIR=$dir/share
  SMBD_ENC_DIR=$dir/enc
  SMBD_PASSWORD=$(head -c 18 /dev/urandom | base64 | tr -d '/+=' | head -c 20)
  echo "root = $SMBD_USER" >"$dir/users.map"
  (
    umask 077
    printf 'username = %s\npassword = %s\ndomain = DSTEST\n' "$SMBD_USER" "$SMBD_PASSWORD" \
      >"$dir/smbclient.auth"
  )
  # the EXIT trap the test set (if any), then smbd_stop
  prev=$(trap -p EXIT | sed "s/^trap -- '\(.*\)' EXIT$/\1/")
  trap "smbd_stop; $prev" EXIT
  SMBD_PORT=$(smbd_free_port)
  smbd_write_conf "$dir" "$SMBD_PORT"
  printf '%s\n%s\n' "$SMBD_PASSWORD" "$SMBD_PASSWORD" |
    smbpasswd -c "$SMBD_CONF" -a -s root >"$dir/log/smbpasswd.out" 2>&1 || {
    cat "$dir/log/smbpasswd.out" >&2
    smbd_skip "smbpasswd cannot add the SMB user"
  }
  for _ in 1 2 3; do
    smbd_run "$dir" "$SMBD_PORT" && return 0
    SMBD_PORT=$(smbd_free_port)
  done
  cat "$dir/log/smbd.out" "$dir/log/smbd.log" >&2 2>/dev/null || true
  smbd_skip "smbd did not start (log above)"
}

# smbd_restart: the same smbd (port, users, shares) again, after smbd_stop
# or with another SMBD_EXTRA.
smbd_restart() {
  smbd_stop
  smbd_run "$SMBD_DIR" "$SMBD_PORT" || {
    cat "$SMBD_DIR/log/smbd.out" "$SMBD_DIR/log/smbd.log" >&2 2>/dev/null || true
    echo "FAIL: smbd did not restart" >&2
    exit 1
  }
}

# smbd_creds FILE [USER [PASSWORD]]: a distsync credentials file (mode 0600)
# for SMBD_USER (or USER) with SMBD_PASSWORD (or PASSWORD).
smbd_creds() {
  local f=$1
  (
    umask 077
    printf 'username=%s\npassword=%s\ndomain=DSTEST\n' "${2:-$SMBD_USER}" "${3:-$SMBD_PASSWORD}" >"$f"
  )
}

# smbd_client SHARE [PORT] -c CMDS...: smbclient as SMBD_USER (the password
# through the authentication file SMBD_DIR/smbclient.auth, never on the
# command line).
smbd_client() {
  local share=$1
  shift
  local port=$SMBD_PORT
  if [ "${1:-}" != -c ] && [ -n "${1:-}" ]; then
    port=$1
    shift
  fi
  smbclient "//127.0.0.1/$share" -p "$port" -A "$SMBD_DIR/smbclient.auth" -s "$SMBD_CONF" \
    --option='client min protocol=SMB2_02' --option='client signing=required' "$@"
}

# smbd_relay COUNT [OPTION...]: tools/tcp-relay on a free port in front of
# smbd (OPTIONs such as --delay-ms N), counting the bytes each way into
# COUNT ("UP DOWN"); sets SMBD_RELAY_PORT once COUNT holds its first line.
# The relay is killed with the test's st_pids (sync.bash).
smbd_relay() {
  local count=$1
  shift
  SMBD_RELAY_PORT=$(smbd_free_port)
  python3 "$DS_SRC/tools/tcp-relay" "$SMBD_RELAY_PORT" "$SMBD_PORT" "$count" "$@" >/dev/null 2>&1 &
  st_pids+=($!)
  for _ in $(seq 50); do [ -s "$count" ] && break; sleep 0.1; done
}

# smbd_wire LOG: tests/func/lib/smb_wire.py on a free port in front of smbd,
# logging every SMB2 message into LOG; sets SMBD_WIRE_PORT once LOG exists.
# Killed with the test's st_pids (sync.bash).
smbd_wire() {
  SMBD_WIRE_PORT=$(smbd_free_port)
  python3 "$DS_SRC/tests/func/lib/smb_wire.py" "$SMBD_WIRE_PORT" "$SMBD_PORT" "$1" >/dev/null 2>&1 &
  st_pids+=($!)
  for _ in $(seq 50); do [ -e "$1" ] && break; sleep 0.1; done
}

# smbd_counter SERVER REGEX FILE: the number REGEX's group matches in the
# SMB worker's counters line of FILE ("SMB worker for server SERVER: ..."),
# -1 when there is none.
smbd_counter() {
  python3 -c 'import re,sys; m=re.search(sys.argv[1], open(sys.argv[2]).read()); print(m.group(1) if m else -1)' \
    "SMB worker for server $1: .*$2" "$3"
}

# smbd_sync_conf SERVER PORT CLASSES [LINE...]: the set-up of a test that
# syncs one store to smbd (after st_init and smbd_start): store=$tmp/store,
# target=$SMBD_SHARE_DIR/SERVER (made), the credentials $tmp/cred
# (smbd_creds), and $tmp/d.conf: the store, the state $tmp/state, one
# [server SERVER] at smb://127.0.0.1:PORT/dist/SERVER (PORT: SMBD_PORT, or
# a relay's in front of it) with CLASSES, then each LINE. Defines ds, the
# distsync CLI on $tmp/d.conf.
smbd_sync_conf() {
  local name=$1 port=$2 classes=$3 l
  shift 3
  store=$tmp/store target=$SMBD_SHARE_DIR/$name
  smbd_creds "$tmp/cred"
  mkdir -p "$target"
  {
    printf '[console]\nstore = %s\nstate = %s\n' "$store" "$tmp/state"
    printf '[server %s]\nurl = smb://127.0.0.1:%s/dist/%s\ncredentials = %s\nclasses = %s\n' \
      "$name" "$port" "$name" "$tmp/cred" "$classes"
    for l in "$@"; do printf '%s\n' "$l"; done
  } >"$tmp/d.conf"
  ds() { "$DISTSYNC" -c "$tmp/d.conf" "$@"; }
}
