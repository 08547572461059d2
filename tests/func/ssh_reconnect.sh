#!/usr/bin/env bash
# A dropped SSH connection mid-run is retried with backoff and the run
# resumes (real OpenSSH sshd): 12 files of 256 KiB of random bytes go to an
# ssh:// server capped at 2 Mbit/s (~13 s); once a few files are committed
# the per-connection sshd is killed (kill -9, so the agent loses its
# channel mid-file). The sync must still succeed (exit 0, byte-exact
# target), the run's events must show the drop ("reconnecting") and the
# new connection ("reconnected"), no file may be created twice (the files
# committed before the drop are in the manifest or adopted, never sent
# again), and the run's wire bytes stay below everything plus two files
# (the file in flight is sent again). retries = 0 on the same drop fails
# the server naming it.
# With SSH_RECONNECT_MODE=sftp (ssh_sftp_reconnect.sh) the server is
# `transport = sftp`: the kill also takes its internal-sftp, mid-file.
set -uo pipefail
: "${DISTSYNC:?}" "${DS_SRC:?}"
source "$DS_SRC/tests/func/lib/sync.bash"
source "$DS_SRC/tests/func/lib/sshd.bash"
mode=${SSH_RECONNECT_MODE:-agent}
name=ssh_reconnect
[ "$mode" = agent ] || name=ssh_${mode}_reconnect
st_init "$name"
export DISTSYNC_TEST_NO_FSYNC=1
sshd_start "$tmp/sshd"
store=$tmp/store target=$tmp/t conf=$tmp/d.conf
mkdir -p "$store/patches" "$target" "$tmp/state"
nfiles=12 fsize=$((256 << 10))
for i in $(seq -w 1 $nfiles); do head -c $fsize /dev/urandom >"$store/patches/f$i.bin"; done
sshd_known_hosts "$tmp/known_hosts"
cat >"$conf" <<CONF
[console]
store = $store
state = $tmp/state
classes = patches

[server s]
url = ssh://$SSHD_USER@127.0.0.1:$SSHD_PORT$target
identity = $SSH_KEY
known_hosts = $tmp/known_hosts
$([ "$mode" = agent ] && echo "agent = $DISTSYNC agent" || echo "transport = $mode")
bandwidth = 2Mbit
max_files = 2
CONF
ds() { "$DISTSYNC" -c "$conf" "$@"; }
ds scan >/dev/null || bad "scan"

# cut_after N: once N files are on the target, kill the per-connection sshd
cut_after() {
  local n=0 kids
  for _ in $(seq 300); do
    n=$(find "$target/patches" -name 'f*.bin' 2>/dev/null | wc -l)
    [ "$n" -ge "$1" ] && break
    sleep 0.05
  done
  kids=$(pgrep -P "$SSHD_PID" 2>/dev/null || true)
  [ -n "$kids" ] || { bad "no per-connection sshd to kill"; return; }
  kill -9 $kids
  echo "cut the connection with $n files on the target"
}

rc=0
ds sync s --json >"$tmp/s1.json" 2>"$tmp/s1.err" &
pid=$!
st_pids+=("$pid")
cut_after 3
wait "$pid" || rc=$?
[ "$rc" = 0 ] || bad "sync with a dropped connection exited $rc: $(head -c 600 "$tmp/s1.err")"
st_check_converged "$store" "$target" "after the reconnect"
ds history s --events --json --limit 1 >"$tmp/h1.json" || bad "history failed"
python3 - "$tmp/h1.json" "$nfiles" "$fsize" <<'PY' || fail=1
import json, sys
runs = json.load(open(sys.argv[1]))
nfiles, fsize = int(sys.argv[2]), int(sys.argv[3])
ev = runs[0]["events"]
outs = [e["outcome"] for e in ev]
def bad(m):
    print("FAIL:", m, file=sys.stderr)
    sys.exit(1)
if "reconnecting" not in outs:
    bad("no 'reconnecting' event: %s" % outs)
if "reconnected" not in outs:
    bad("no 'reconnected' event: %s" % outs)
cut = outs.index("reconnecting")
before = [e["path"] for e in ev[:cut] if e["kind"] == "file" and e["outcome"] == "created"]
created = [e["path"] for e in ev if e["kind"] == "file" and e["outcome"] == "created"]
if len(before) < 2:
    bad("only %d files committed before the cut" % len(before))
again = sorted(set(p for p in created if created.count(p) > 1))
if again:
    bad("files sent again after the reconnect: %s" % again)
wire = runs[0]["bytes_wire"]
if wire > (nfiles + 2) * fsize:
    bad("%d wire bytes for %d files of %d: committed files were resent" % (wire, nfiles, fsize))
print("committed before the cut: %d, run wire bytes %d (data %d)" % (len(before), wire, nfiles * fsize))
PY

# retries = 0: the same drop fails the server, naming it
rm -rf "$target" && mkdir -p "$target"
sed -i 's/^classes = patches$/classes = patches\nretries = 0/' "$conf"
rc=0
ds sync s --json >"$tmp/s2.json" 2>"$tmp/s2.err" &
pid=$!
st_pids+=("$pid")
cut_after 3
wait "$pid" || rc=$?
[ "$rc" = 4 ] || bad "retries = 0: a dropped connection exited $rc, expected 4"
grep -q "server s" "$tmp/s2.err" "$tmp/s2.json" || bad "retries = 0: no error names server s"
# said in words (new-admin pass: it was "read: transport read")
grep -q "the connection was cut" "$tmp/s2.err" "$tmp/s2.json" ||
  bad "retries = 0: the error does not say the connection was cut: $(head -c 600 "$tmp/s2.err" "$tmp/s2.json")"
grep -q "transport read" "$tmp/s2.err" "$tmp/s2.json" && bad "retries = 0: libssh2 transport read shown: $(head -c 600 "$tmp/s2.json")"
st_exit "$name"
