#!/usr/bin/env bash
# Issue 13: progress counts what the far end received, not what was handed
# to the transport. An ssh:// server in agent mode (real sshd on loopback)
# gets one 24 MiB file under a 16 Mbit/s cap through the daemon; GET
# /v1/runs/ID is polled every 50 ms and compared with the size of the
# agent's tmp file (what the receiver wrote). The agent is stopped
# (SIGSTOP) for 3 s mid-file: sshd and TCP keep taking bytes until the
# channel window (2 MB) is full, and main's progress ran on by that much.
# At every poll bytes_done may lead the tmp file by at most one data frame
# (the receiver writes a frame once it has it whole: half a second of the
# cap, 1 MB here) plus 512 KiB (the agent's stdin pipe, sshd's window
# steps); main led by over 3 MB while the agent was stopped.
set -uo pipefail
: "${DISTSYNC:?}" "${DS_SRC:?}"
. "$DS_SRC/tests/func/lib/sync.bash"
. "$DS_SRC/tests/func/lib/engine.bash"
. "$DS_SRC/tests/func/lib/daemon.bash"
. "$DS_SRC/tests/func/lib/api.bash"
. "$DS_SRC/tests/func/lib/sshd.bash"
st_init ssh_progress_far
export DISTSYNC_TEST_NO_FSYNC=1
sshd_start "$tmp/sshd"
sshd_known_hosts "$tmp/known_hosts"

state=$tmp/state conf=$tmp/d.conf sock=$tmp/state/distsync.sock
size=$((24 * 1024 * 1024)) frame=1000000 slack=$((512 * 1024))
mkdir -p "$tmp/store/patches" "$tmp/store/engines" "$tmp/store/definitions" "$tmp/t1"
head -c "$size" /dev/urandom >"$tmp/store/patches/big.bin"
en_head "$conf" "$tmp/store" "$state"
cat >>"$conf" <<CONF

[server s1]
url = ssh://$SSHD_USER@127.0.0.1:$SSHD_PORT$tmp/t1
transport = agent
identity = $SSH_KEY
known_hosts = $tmp/known_hosts
agent = $DISTSYNC agent
classes = patches engines definitions
bandwidth = 16Mbit
CONF

log=$tmp/daemon.log
dm_start "$log" 2026-03-10T00:00:00Z 1
api_wait_up "$log" || st_exit ssh_progress_far
api POST /v1/run-now '{"servers":["s1"]}'
expect 202 "run-now"
id=$(jq_py 'j["id"]')
# polls: "bytes_done tmp_size stopped" per line; the agent is stopped from
# the first poll past 6 MB for 3 s
python3 - "$sock" "$id" "$tmp/t1/.distsync/tmp" "$tmp/t1" >"$tmp/samples" 2>"$tmp/poll.err" <<'PY'
import http.client, json, os, signal, socket, subprocess, sys, time
sockp, rid, tmpdir, root = sys.argv[1:5]
class Conn(http.client.HTTPConnection):
    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX)
        self.sock.connect(sockp)
def written():
    """What the agent wrote: its tmp file, or the file once published."""
    try:
        n = sum(os.path.getsize(os.path.join(tmpdir, f)) for f in os.listdir(tmpdir))
    except OSError:
        n = -1
    try:
        return max(n, os.path.getsize(os.path.join(root, "patches", "big.bin")))
    except OSError:
        return n
def agent():
    out = subprocess.run(["pgrep", "-f", "agent --root " + root], capture_output=True, text=True)
    pids = [int(p) for p in out.stdout.split()]
    return pids[0] if pids else None
stopped = None
for _ in range(2000):
    c = Conn("localhost", timeout=10)
    c.request("GET", "/v1/runs/" + rid)
    j = json.loads(c.getresponse().read())
    c.close()
    w = written()
    p = j["progress"]
    if p["files_done"] == 0:
        print(p["bytes_done"], w, 1 if stopped else 0, flush=True)
    if j["state"] not in ("queued", "running"):
        break
    if stopped is None and p["bytes_done"] > 6000000 and agent():
        pid = agent()
        os.kill(pid, signal.SIGSTOP)
        stopped = (pid, time.monotonic())
        print("stopped", pid, file=sys.stderr, flush=True)
    elif stopped and stopped[0] and time.monotonic() - stopped[1] > 3:
        os.kill(stopped[0], signal.SIGCONT)
        stopped = (0, 0)
        print("continued", file=sys.stderr, flush=True)
    time.sleep(0.05)
PY
grep -q stopped "$tmp/poll.err" || bad "the agent was never stopped: $(cat "$tmp/poll.err") $(tail -3 "$tmp/samples" | tr '\n' '|')"
read -r worst worst_stopped n <<<"$(python3 - "$tmp/samples" <<'PY'
import sys
worst = ws = n = 0
for line in open(sys.argv[1]):
    p, w, s = map(int, line.split())
    if w < 0:
        continue
    n += 1
    worst = max(worst, p - w)
    if s:
        ws = max(ws, p - w)
print(worst, ws, n)
PY
)"
echo "polls: $n; largest lead of progress over the tmp file: $worst B (while the agent was stopped: $worst_stopped B); bound $((frame + slack)) B"
[ "$n" -ge 20 ] || bad "too few polls within the file ($n)"
[ "$worst" -le $((frame + slack)) ] ||
  bad "progress led what the agent wrote by $worst B (stopped: $worst_stopped B), more than a frame ($frame) + $slack"
run_wait "$id" ok 90
api GET "/v1/runs/$id"
[ "$(jq_py 'j["progress"]["bytes_done"] == j["progress"]["bytes_total"] == '"$size")" = True ] ||
  bad "the run did not end with bytes_done = bytes_total = $size: $body"
cmp -s "$tmp/store/patches/big.bin" "$tmp/t1/patches/big.bin" || bad "the file differs on the target"
dm_stop
st_exit ssh_progress_far
