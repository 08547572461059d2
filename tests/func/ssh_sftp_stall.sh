#!/usr/bin/env bash
# SFTP mode (transport = sftp): a server that stops answering mid-run (its
# per-connection sshd and internal-sftp stopped with SIGSTOP, the TCP
# connection left open) fails at its timeout (io_timeout = 3s) naming the
# silence, while a second SFTP server synced in the same run, on the same
# engine loop, converges: the stalled receiver holds neither the loop nor
# the other server. The run ends well within the timeout plus the close's.
set -uo pipefail
: "${DISTSYNC:?}" "${DS_SRC:?}"
source "$DS_SRC/tests/func/lib/sync.bash"
source "$DS_SRC/tests/func/lib/sshd.bash"
st_init ssh_sftp_stall
export DISTSYNC_TEST_NO_FSYNC=1
sshd_start "$tmp/sshd"
first=$SSHD_PID
sshd_start_more "$tmp/sshd2" # a second sshd: only the first one stops
store=$tmp/store conf=$tmp/d.conf
mkdir -p "$store/patches" "$tmp/ts" "$tmp/tg" "$tmp/state"
for i in $(seq -w 1 12); do head -c $((256 << 10)) /dev/urandom >"$store/patches/f$i.bin"; done
sshd_known_hosts "$tmp/known_hosts" "$SSHD_PORT" "$SSHD_MORE_PORT"
server() { # NAME PORT ROOT EXTRA
  printf '\n[server %s]\nurl = ssh://%s@127.0.0.1:%s%s\ntransport = sftp\n' "$1" "$SSHD_USER" "$2" "$3"
  printf 'identity = %s\nknown_hosts = %s\nio_timeout = 3s\nretries = 0\n%s\n' \
    "$SSH_KEY" "$tmp/known_hosts" "$4"
}
{
  printf '[console]\nstore = %s\nstate = %s\nclasses = patches\n' "$store" "$tmp/state"
  server s "$SSHD_PORT" "$tmp/ts" "bandwidth = 2Mbit"
  server g "$SSHD_MORE_PORT" "$tmp/tg" "bandwidth = 4Mbit"
} >"$conf"
ds() { "$DISTSYNC" -c "$conf" "$@"; }
ds scan >/dev/null || bad "scan"

t0=$(date +%s.%N)
ds sync --all --json >"$tmp/s.json" 2>"$tmp/s.err" &
pid=$!
st_pids+=("$pid")
for _ in $(seq 300); do
  [ "$(find "$tmp/ts/patches" -name 'f*.bin' 2>/dev/null | wc -l)" -ge 2 ] && break
  sleep 0.05
done
kids=$(pgrep -P "$first" 2>/dev/null || true)
[ -n "$kids" ] || bad "no per-connection sshd to stop"
stopped=$(for k in $kids; do echo "$k"; pgrep -P "$k" 2>/dev/null; done)
kill -STOP $stopped 2>/dev/null
rc=0
wait "$pid" || rc=$?
t1=$(date +%s.%N)
kill -CONT $stopped 2>/dev/null
wall=$(echo "$t1 - $t0" | bc)
echo "run with a stalled SFTP server: exit $rc in $wall s"
[ "$rc" != 0 ] || bad "the stalled server's run succeeded"
python3 -c 'import json, sys
for s in json.load(open(sys.argv[1]))["servers"]:
    print("  server %s: %s after %.1f s" % (s["server"], s["status"], s["elapsed_s"]))' "$tmp/s.json"
st_check_converged "$store" "$tmp/tg" "the other SFTP server"
python3 - "$tmp/s.json" <<'PY' || fail=1
import json, sys
d = {s["server"]: s for s in json.load(open(sys.argv[1]))["servers"]}
def bad(m):
    print("FAIL:", m, file=sys.stderr)
    sys.exit(1)
if d["g"]["status"] != "ok":
    bad("server g: %s" % d["g"])
if d["s"]["status"] == "ok" or "no response from the target for 3 s" not in json.dumps(d["s"]):
    bad("server s does not fail on the silence: %s" % d["s"])
PY
[ "$(echo "$wall < 30" | bc -l)" = 1 ] || bad "the stalled run took $wall s (timeout 3 s)"
st_exit ssh_sftp_stall
