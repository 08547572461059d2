#!/usr/bin/env bash
# Agents run under the engine's loop (uv_spawn; their exit comes back
# through uv's exit callback), not forked and waited for on worker threads
# (issue 8). Four servers' agents hang after their session (a wrapper that
# keeps running 60 s after the real agent ended: it never exits on the end
# of its input), with timeout = 12: each is killed 12 s after its close and
# its run fails saying so. A fifth server behind a slow link (2 MB at
# 500 KB/s) must not wait for them: when waiting for a child held a worker
# thread (libuv has 4), its own close queued behind the four hung ones and
# it ended only when they were killed (about 12 s after they closed; on main
# ce5e69b: 10.5 s with timeout = 8). Here it ends in its own time (under 10 s), every hung
# wrapper is gone (killed and reaped) once sync returns, and no child of
# the console is left a zombie while it runs.
set -uo pipefail
. "$(dirname "$0")/lib/sync.bash"
st_init engine_agent_spawn
export DISTSYNC_TEST_NO_FSYNC=1 DISTSYNC DS_SLOW_BPS=500000
store=$tmp/store
mkdir -p "$store/patches" "$store/engines"
head -c 2000000 /dev/urandom >"$store/patches/big.bin"
head -c 3000 /dev/urandom >"$store/engines/small.dat"
cat >"$tmp/hung_agent.py" <<'PY'
#!/usr/bin/env python3
# the real agent, then 60 s more: a child that does not end on end of input
import os, signal, subprocess, sys, time
signal.signal(signal.SIGINT, signal.SIG_IGN)
subprocess.call([os.environ["DISTSYNC"]] + sys.argv[1:])
time.sleep(60)
PY
chmod +x "$tmp/hung_agent.py"
printf '[console]\nstore = %s\nstate = %s\nmax_servers = 8\n' "$store" "$tmp/state" >"$tmp/c.conf"
for i in 1 2 3 4; do
  mkdir -p "$tmp/h$i"
  printf '\n[server h%s]\nurl = file://%s\ntransport = agent\nagent = %s\nclasses = engines\ntimeout = 12\n' \
    "$i" "$tmp/h$i" "$tmp/hung_agent.py" >>"$tmp/c.conf"
done
mkdir -p "$tmp/slow"
printf '\n[server slow]\nurl = file://%s\ntransport = agent\nagent = %s\nclasses = patches engines\n' \
  "$tmp/slow" "$DS_SRC/tests/func/lib/slow_agent.py" >>"$tmp/c.conf"
"$DISTSYNC" -c "$tmp/c.conf" scan >/dev/null 2>&1 || bad "scan failed"
"$DISTSYNC" -c "$tmp/c.conf" sync --all --json >"$tmp/out.json" 2>"$tmp/err" &
pid=$!
st_pids+=("$pid")
zombies=0
while kill -0 "$pid" 2>/dev/null; do
  # children of the console in state Z (exited, not reaped) for long
  z=$(ps -o stat= --ppid "$pid" 2>/dev/null | grep -c '^Z' || true)
  [ "${z:-0}" -gt 0 ] && zombies=$((zombies + 1))
  sleep 0.2
done
wait "$pid"
# a child is a zombie for an instant between its exit and uv's SIGCHLD
# handling; seen in 3 samples (0.6 s) it is not being reaped
[ "$zombies" -le 2 ] && zombies=0
[ "$zombies" = 0 ] || bad "a child of the console stayed a zombie ($zombies samples)"
pgrep -f "$tmp/hung_agent.py" >/dev/null && bad "a hung agent is still running after sync returned"
st_check_converged "$store" "$tmp/slow" slow
python3 - "$tmp/out.json" <<'PY' || fail=1
import json, sys
d = {s["server"]: s for s in json.load(open(sys.argv[1]))["servers"]}
ok = True
for i in range(1, 5):
    s = d[f"h{i}"]
    if s["status"] == "ok" or "did not exit within 12 s" not in (s["error"] or ""):
        print(f"FAIL: h{i}: {s['status']}: {s['error']}: want killed after 12 s", file=sys.stderr); ok = False
s = d["slow"]
print(f"slow: {s['status']} in {s['elapsed_s']:.1f} s; hung: " +
      ", ".join(f"{d[f'h{i}']['elapsed_s']:.1f}" for i in range(1, 5)) + " s")
if s["status"] != "ok":
    print(f"FAIL: slow: {s['error']}", file=sys.stderr); ok = False
elif s["elapsed_s"] >= 10:
    print(f"FAIL: slow took {s['elapsed_s']:.1f} s: it waited for the hung agents", file=sys.stderr); ok = False
sys.exit(0 if ok else 1)
PY
st_exit engine_agent_spawn
