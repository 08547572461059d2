#!/usr/bin/env bash
# `distsync verify` runs its servers on the engine's loop (issue 8): several
# servers verify at once (max_servers), their agents under uv_spawn, reaped
# through uv's exit callback; no thread waits on a child.
# Five servers: four whose agent takes 4 s to start (a wrapper that sleeps,
# then runs the real agent) and one whose agent hangs after its session
# (keeps running 60 s after the real agent ended) with timeout = 6, so it
# is killed 6 s after its close and its verify fails saying so. One slow
# server also has a drifted file. One after another this takes at least
# 4 x 4 s + 6 s = 22 s (main: forked agents, waitpid); in parallel about
# the slowest one, under 15 s here. The results are as before: drift found
# and named, the clean servers ok, exit 4 (a server failed); the hung agent
# is gone once verify returns and no child of the console stays a zombie.
set -uo pipefail
. "$(dirname "$0")/lib/sync.bash"
st_init engine_verify_parallel
export DISTSYNC_TEST_NO_FSYNC=1 DISTSYNC
store=$tmp/store
mkdir -p "$store/patches" "$store/engines"
for i in 1 2 3; do head -c 200000 /dev/urandom >"$store/patches/p$i.bin"; done
head -c 3000 /dev/urandom >"$store/engines/small.dat"
cat >"$tmp/slow_start.py" <<'PY'
#!/usr/bin/env python3
# the real agent after 4 s
import os, signal, sys, time
signal.signal(signal.SIGINT, signal.SIG_IGN)
time.sleep(4)
os.execv(os.environ["DISTSYNC"], [os.environ["DISTSYNC"]] + sys.argv[1:])
PY
cat >"$tmp/hung_agent.py" <<'PY'
#!/usr/bin/env python3
# the real agent, then 60 s more: a child that does not end on end of input
import os, signal, subprocess, sys, time
signal.signal(signal.SIGINT, signal.SIG_IGN)
subprocess.call([os.environ["DISTSYNC"]] + sys.argv[1:])
time.sleep(60)
PY
chmod +x "$tmp/slow_start.py" "$tmp/hung_agent.py"
# conf FILE WRAP: the five servers, agents started by WRAP (none: the agent)
conf() {
  local i
  printf '[console]\nstore = %s\nstate = %s\nmax_servers = 8\n' "$store" "$tmp/state" >"$1"
  for i in 1 2 3 4; do
    printf '\n[server s%s]\nurl = file://%s\ntransport = agent\nclasses = patches engines\n' \
      "$i" "$tmp/s$i" >>"$1"
    [ -n "$2" ] && printf 'agent = %s\n' "$tmp/slow_start.py" >>"$1"
  done
  printf '\n[server hung]\nurl = file://%s\ntransport = agent\nclasses = patches engines\ntimeout = 6\n' \
    "$tmp/hung" >>"$1"
  [ -n "$2" ] && printf 'agent = %s\n' "$tmp/hung_agent.py" >>"$1"
  return 0
}
mkdir -p "$tmp/s1" "$tmp/s2" "$tmp/s3" "$tmp/s4" "$tmp/hung"
conf "$tmp/plain.conf" ""
conf "$tmp/c.conf" wrap
"$DISTSYNC" -c "$tmp/plain.conf" sync --all >/dev/null 2>"$tmp/sync.err" || bad "sync failed: $(tail -3 "$tmp/sync.err")"
f=$tmp/s3/patches/p2.bin # drift: same size, mtime put back
touch -r "$f" "$tmp/stamp"
printf 'XXXX' | dd of="$f" bs=1 seek=1000 conv=notrunc 2>/dev/null
touch -r "$tmp/stamp" "$f"

t0=$(date +%s%N)
"$DISTSYNC" -c "$tmp/c.conf" verify --all --json >"$tmp/out.json" 2>"$tmp/err" &
pid=$!
st_pids+=("$pid")
zombies=0
while kill -0 "$pid" 2>/dev/null; do
  z=$(ps -o stat= --ppid "$pid" 2>/dev/null | grep -c '^Z' || true)
  [ "${z:-0}" -gt 0 ] && zombies=$((zombies + 1))
  sleep 0.2
done
rc=0
wait "$pid" || rc=$?
ms=$((($(date +%s%N) - t0) / 1000000))
# an instant between a child's exit and uv's SIGCHLD handling is not a
# zombie left behind; 3 samples (0.6 s) would be
[ "$zombies" -le 2 ] || bad "a child of the console stayed a zombie ($zombies samples)"
pgrep -f "$tmp/hung_agent.py" >/dev/null && bad "the hung agent is still running after verify returned"
[ "$rc" = 4 ] || bad "verify exited $rc, want 4 (the hung server failed): $(tail -3 "$tmp/err")"
echo "verify of 5 servers (4 agents starting in 4 s, one hung 6 s): $ms ms"
[ "$ms" -lt 15000 ] || bad "verify took $ms ms: the servers were verified one after another (>= 22 s)"
python3 - "$tmp/out.json" <<'PY' || fail=1
import json, sys
d = {s["server"]: s for s in json.load(open(sys.argv[1]))["servers"]}
ok = True
def want(c, msg):
    global ok
    if not c:
        print("FAIL: " + msg, file=sys.stderr)
        ok = False
for s in ("s1", "s2", "s4"):
    want(d[s]["status"] == "ok" and d[s]["verified"] == 4, f"{s}: {d[s]}")
s3 = d["s3"]
want(s3["status"] == "drift" and [x["path"] for x in s3["drifted"]] == ["patches/p2.bin"]
     and s3["verified"] == 3, f"s3: want patches/p2.bin drifted: {s3}")
h = d["hung"]
want(h["status"] == "failed" and "did not exit within 6 s" in (h["error"] or ""),
     f"hung: want failed, killed after 6 s: {h}")
print("elapsed: " + ", ".join(f"{k} {v['elapsed_s']:.1f} s" for k, v in sorted(d.items())))
sys.exit(0 if ok else 1)
PY
st_exit engine_verify_parallel
