# A real OpenSSH sshd on a loopback port for the ssh:// tests (sourced).
# sshd_start DIR: installs openssh-server if missing (needs root), makes a
# throwaway ed25519 host key and client key, an authorized_keys for the
# current user only, and starts sshd -D on a free 127.0.0.1 port. Sets
# SSHD_PORT, SSHD_DIR, SSHD_USER, SSH_KEY (client private key),
# SSHD_HOSTKEY (its .pub is the host key), SSHD_PID. sshd is stopped by
# sshd_stop, which sshd_start chains into the EXIT trap: it always runs,
# even when the test fails.
SSHD_PID=""
SSHD_MORE_PIDS=()

sshd_stop() {
  local p
  for p in "${SSHD_MORE_PIDS[@]}"; do
    kill "$p" $(pgrep -P "$p" 2>/dev/null || true) 2>/dev/null || true
  done
  for p in "${SSHD_MORE_PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  SSHD_MORE_PIDS=()
  [ -n "$SSHD_PID" ] || return 0
  # the listener and the per-connection sshd processes it forked (by id)
  local kids
  kids=$(pgrep -P "$SSHD_PID" 2>/dev/null || true)
  kill "$SSHD_PID" $kids 2>/dev/null || true
  for _ in $(seq 50); do kill -0 "$SSHD_PID" 2>/dev/null || break; sleep 0.1; done
  kill -9 "$SSHD_PID" $kids 2>/dev/null || true
  wait "$SSHD_PID" 2>/dev/null || true
  SSHD_PID=""
}

# sshd_skip MSG: a test that cannot get an sshd says why and passes as
# skipped (exit 77 is CTest's SKIP_RETURN_CODE).
sshd_skip() {
  echo "SKIP: $*"
  exit 77
}

sshd_install() {
  [ -x /usr/sbin/sshd ] && command -v ssh-keygen >/dev/null && return 0
  [ "$(id -u)" = 0 ] || sshd_skip "openssh-server is not installed and we are not root"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    openssh-server openssh-client >/dev/null 2>&1 || sshd_skip "cannot install openssh-server"
}

# sshd_free_port: a port nothing listens on now (the kernel's choice).
sshd_free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# sshd_run DIR HOSTKEY PORT [HOSTKEY2]: starts sshd, returns 0 once it
# listens. A second host key (say ECDSA) makes the server offer both.
# SSHD_EXTRA, when set, ends the config (e.g. a Match block).
sshd_run() {
  local dir=$1 hostkey=$2 port=$3 hostkey2=${4:-}
  cat >"$dir/sshd_config" <<CONF
Port $port
ListenAddress 127.0.0.1
HostKey $hostkey
${hostkey2:+HostKey $hostkey2}
PidFile $dir/sshd.pid
AuthorizedKeysFile $dir/authorized_keys.%u
StrictModes no
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
UsePAM no
UseDNS no
MaxStartups 100:30:200
MaxSessions 100
Subsystem sftp internal-sftp
LogLevel VERBOSE
${SSHD_EXTRA:-}
CONF
  : >"$dir/sshd.log"
  /usr/sbin/sshd -D -f "$dir/sshd_config" -E "$dir/sshd.log" &
  SSHD_PID=$!
  for _ in $(seq 100); do
    grep -q "Server listening" "$dir/sshd.log" 2>/dev/null && return 0
    kill -0 "$SSHD_PID" 2>/dev/null || break
    sleep 0.05
  done
  wait "$SSHD_PID" 2>/dev/null || true
  SSHD_PID=""
  return 1
}

sshd_start() {
  local dir=$1
  sshd_install
  mkdir -p "$dir" /run/sshd
  SSHD_DIR=$dir
  SSHD_USER=$(id -un)
  SSHD_HOSTKEY=$dir/host_ed25519
  SSH_KEY=$dir/client_ed25519
  ssh-keygen -q -t ed25519 -N '' -C distsync-test-host -f "$SSHD_HOSTKEY"
  ssh-keygen -q -t ed25519 -N '' -C distsync-test-client -f "$SSH_KEY"
  cp "$SSH_KEY.pub" "$dir/authorized_keys.$SSHD_USER"
  # the EXIT trap the test set (if any), then sshd_stop
  local prev
  prev=$(trap -p EXIT | sed "s/^trap -- '\(.*\)' EXIT$/\1/")
  trap "sshd_stop; $prev" EXIT
  for _ in 1 2 3; do
    SSHD_PORT=$(sshd_free_port)
    sshd_run "$dir" "$SSHD_HOSTKEY" "$SSHD_PORT" && return 0
  done
  cat "$dir/sshd.log" >&2
  echo "FAIL: sshd did not start" >&2
  exit 1
}

# sshd_restart [HOSTKEY2]: the same sshd (port, host key, users) again,
# after sshd_stop or to change its host key files.
sshd_restart() {
  sshd_stop
  sshd_run "$SSHD_DIR" "$SSHD_HOSTKEY" "$SSHD_PORT" "${1:-}" || {
    cat "$SSHD_DIR/sshd.log" >&2
    echo "FAIL: sshd did not restart" >&2
    exit 1
  }
}

# sshd_start_more DIR: one more sshd (after sshd_start) with the same host
# key and users on another free port, set in SSHD_MORE_PORT; sshd_stop
# stops it too.
sshd_start_more() {
  local dir=$1 first=$SSHD_PID port
  mkdir -p "$dir"
  cp "$SSHD_DIR/authorized_keys.$SSHD_USER" "$dir/"
  for _ in 1 2 3; do
    port=$(sshd_free_port)
    if sshd_run "$dir" "$SSHD_HOSTKEY" "$port"; then
      SSHD_MORE_PIDS+=("$SSHD_PID")
      SSHD_PID=$first
      SSHD_MORE_PORT=$port
      return 0
    fi
  done
  SSHD_PID=$first
  cat "$dir/sshd.log" >&2
  echo "FAIL: another sshd did not start" >&2
  exit 1
}

# sshd_fp PUBFILE: the SHA256 fingerprint OpenSSH prints for a public key.
sshd_fp() {
  ssh-keygen -l -E sha256 -f "$1" | awk '{print $2}'
}

# sshd_known_hosts FILE [PORT...]: appends the host key as [127.0.0.1]:PORT
# for each PORT (a relay's in front of sshd, another sshd's), SSHD_PORT when
# none is given.
sshd_known_hosts() {
  local f=$1 p
  shift
  [ $# -gt 0 ] || set -- "$SSHD_PORT"
  for p in "$@"; do
    echo "[127.0.0.1]:$p $(cut -d' ' -f1,2 "$SSHD_HOSTKEY.pub")" >>"$f"
  done
}
