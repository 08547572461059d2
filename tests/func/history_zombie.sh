#!/usr/bin/env bash
# Red-team pass (kill -9 of the daemon during a run, in a sandbox whose
# PID 1 reaps nothing): a console killed with -9 whose exit its parent has
# not collected yet is a zombie. kill(pid, 0) still succeeds on it, so its
# run stayed 'running' in history (and in every command's view) until the
# zombie was reaped, possibly forever in a container without an init. A
# zombie holds no lock, lease or file: its run is marked interrupted as for
# a process that is gone, and the next sync converges.
set -uo pipefail
. "$(dirname "$0")/lib/sync.bash"
. "$(dirname "$0")/lib/engine.bash"
st_init history_zombie
conf=$tmp/d.conf
en_fill "$tmp/store" 4 262144 # 1 MiB at 1 Mbit/s: ~8 s
en_head "$conf" "$tmp/store" "$tmp/state"
en_server "$conf" s1 "$tmp/t1" local "bandwidth = 1Mbit"
ds() { "$DISTSYNC" -c "$conf" "$@"; }
ds scan >/dev/null 2>&1 || bad "scan failed"

python3 - "$DISTSYNC" "$conf" "$tmp" <<'PY' || bad "a killed console's run, still a zombie, is not marked interrupted"
import json, os, signal, subprocess, sys, time
ds, conf, tmp = sys.argv[1:4]
def history():
    out = subprocess.run([ds, "-c", conf, "history", "s1", "--json"], capture_output=True, text=True).stdout
    return json.loads(out) if out.strip() else []
p = subprocess.Popen([ds, "-c", conf, "sync", "s1"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
for _ in range(100):  # the run has begun
    h = history()
    if h and h[0].get("status") == "running":
        break
    time.sleep(0.1)
else:
    print("FAIL: the sync never showed as running", file=sys.stderr); sys.exit(2)
os.kill(p.pid, signal.SIGKILL)
time.sleep(0.5)  # not waited for: a zombie
state = open(f"/proc/{p.pid}/stat").read().rsplit(")", 1)[1].split()[0]
if state != "Z":
    print(f"FAIL: set-up: the killed sync is '{state}', not a zombie", file=sys.stderr); sys.exit(2)
h = history()
ok = h and h[0].get("status") == "interrupted"
if not ok:
    print(f"FAIL: history while the killed sync is a zombie: {h[0].get('status') if h else None}", file=sys.stderr)
p.wait()
sys.exit(0 if ok else 1)
PY
ds sync s1 >"$tmp/out" 2>&1 || bad "the sync after the kill failed: $(cat "$tmp/out")"
st_check_converged "$tmp/store" "$tmp/t1" "after the kill"
exit $fail
