#!/usr/bin/env bash
# The agent's memory stays bounded whatever a console pipelines (issue 7
# item 11): hostile read-only requests (160 and 320 SIG of a 16 MiB file
# with the smallest blocks, LIST of a 300,000-file tree, pipelined) are
# written at once into the real `distsync agent`, whose output is read
# slowly at first; its peak RSS (VmHWM) must stay <= 64 MiB, and every
# request must still get its complete reply.
set -euo pipefail
: "${DISTSYNC:?}" "${DS_TEST_TMP:=/tmp}"
work="$DS_TEST_TMP/agent_memory.$$"
rm -rf "$work"
mkdir -p "$work/root/big" "$work/tree"
trap 'rm -rf "$work"' EXIT
fail() { echo "agent_memory: FAIL: $*" >&2; exit 1; }
limit_kb=$((64 * 1024))

# drive.py ROOT KIND N: runs the agent, sends HELLO + N requests of KIND,
# reads the replies (slowly for the first 8 MiB), prints "peak_kb replies".
cat >"$work/drive.py" <<'PY'
import os, struct, subprocess, sys, threading, time
root, kind, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
def s(x): x = x.encode(); return struct.pack(">H", len(x)) + x
def frame(t, i, p): return struct.pack(">IBBHI", len(p), t, 0, 0, i) + p
req = frame(1, 1, struct.pack(">IHH", 0x44534150, 1, 1) + s("mem-console") + s("test"))
for i in range(n):
    if kind == "sig":   # SIG big/file, block 256, strong 32: the largest signature
        req += frame(6, i + 2, s("big/file") + struct.pack(">IB", 256, 32))
    else:               # LIST of the whole tree
        req += frame(4, i + 2, s(""))
agent = subprocess.Popen([os.environ["DISTSYNC"], "agent", "--root", root],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE)
def writer():
    agent.stdin.write(req)
    agent.stdin.flush()    # stdin stays open: the agent ends when we close it
threading.Thread(target=writer, daemon=True).start()
def hwm():
    for line in open("/proc/%d/status" % agent.pid):
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0
buf, got, done, peak, t0 = bytearray(), 0, set(), 0, time.time()
while len(done) < n:
    chunk = agent.stdout.read1(64 << 10)
    if not chunk:
        sys.exit("agent ended early after %d bytes" % got)
    got += len(chunk)
    if got < (8 << 20):
        time.sleep(0.002)  # a slow console at first
    buf += chunk
    o = 0
    while o + 12 <= len(buf):
        ln, t, fl, _, i = struct.unpack(">IBBHI", buf[o:o + 12])
        if o + 12 + ln > len(buf):
            break
        if t == 0x8a:
            sys.exit("ERR reply to request %d" % i)
        if i >= 2 and not fl & 1:
            done.add(i)
        o += 12 + ln
    del buf[:o]
    peak = max(peak, hwm())
peak = max(peak, hwm())
agent.stdin.close()
rc = agent.wait()
print(peak, len(done), got, rc, round(time.time() - t0, 1))
PY

python3 - "$work/root/big/file" <<'PY'
import sys
with open(sys.argv[1], "wb") as f:
    f.write(bytes((i * 7919 + (i >> 11)) & 255 for i in range(1 << 20)) * 16)  # 16 MiB
PY
python3 - "$work/tree" <<'PY'
import os, sys
root = sys.argv[1]
for d in range(300):
    os.mkdir("%s/d%03d" % (root, d))
    for f in range(1000):   # long names: a listing of ~40 MB
        os.close(os.open("%s/d%03d/f%04d-%s" % (root, d, f, "x" * 96), os.O_CREAT | os.O_WRONLY))
PY

check() { # check ROOT KIND N
  local out peak replies rc
  out=$(python3 "$work/drive.py" "$1" "$2" "$3") || fail "$2 x $3: driver failed"
  read -r peak replies _ rc _ <<<"$out"
  echo "agent_memory: $2 x $3: peak RSS ${peak} kB, $replies replies (bytes, exit, seconds: $out)"
  [ "$replies" = "$3" ] || fail "$2 x $3: $replies complete replies"
  [ "$rc" = 0 ] || fail "$2 x $3: agent exit $rc"
  [ "$peak" -le "$limit_kb" ] || fail "$2 x $3: agent peak RSS ${peak} kB > $limit_kb kB"
}
check "$work/root" sig 160
check "$work/root" sig 320
check "$work/tree" list 1
check "$work/tree" list 8
echo "agent_memory: ok"
