#!/usr/bin/env bash
# Nothing blocks the engine's loop thread (issue 8): while one server's run
# computes a delta whose basis only the retain store holds (a 24 MiB file
# rebuilt in place, a byte changed every 4 KiB: its old version is gone
# from the store), another server's capped transfer keeps moving: the
# bytes arriving on its target never stall for long. Before, that delta
# was computed inline on the loop thread and every other server stood
# still for the whole computation (seconds). The delta server goes through
# the agent, so its run waits on the worker with no fd to watch and
# watches its pipes again when the job is back (the engine once reused a
# closing poll handle there: libuv aborted in uv__finish_close). The
# engine's own probe (-v, "the loop's longest stall") must stay under 1 s.
set -uo pipefail
. "$(dirname "$0")/lib/sync.bash"
. "$(dirname "$0")/lib/engine.bash"
st_init engine_delta_retained_stall
store=$tmp/store conf=$tmp/d.conf
mkdir -p "$store/engines" "$store/patches" "$store/definitions"
echo p >"$store/patches/p.txt"
echo d >"$store/definitions/d.txt"
gen() { # gen REBUILT: 24 MiB pseudo-random; REBUILT=1 changes a byte every 4 KiB
  python3 - "$store/engines/big.bin" "$1" <<'PY'
import random, sys
b = bytearray(random.Random(3).randbytes(24 << 20))
if sys.argv[2] == "1":
    b[100::4096] = bytes(x ^ 0xA5 for x in b[100::4096])
open(sys.argv[1] + ".tmp", "wb").write(b)
PY
  mv "$store/engines/big.bin.tmp" "$store/engines/big.bin"
}
gen 0
en_head "$conf" "$store" "$tmp/state" "max_servers = 4"
printf '\n[server delta]\nurl = file://%s\ntransport = agent\nclasses = engines\n' "$tmp/t-delta" >>"$conf"
printf '\n[server other]\nurl = file://%s\ntransport = local\nclasses = patches\nbandwidth = 2MB\n' \
  "$tmp/t-other" >>"$conf"
st_full_deltas "$conf" # the delta must take seconds (a quick one would not)
mkdir -p "$tmp/t-delta" "$tmp/t-other"
ds() { "$DISTSYNC" -c "$conf" "$@"; }
ds scan >/dev/null 2>&1 && ds sync --all >"$tmp/out1" 2>&1 || bad "first sync: $(tail -3 "$tmp/out1")"
# the rebuild (delta server) and 12 MB of new content for the other server
# (6 s at 2 MB/s)
gen 1
head -c 12000000 /dev/urandom >"$store/patches/s.bin"
ds scan >/dev/null 2>&1 || bad "scan v2"

"$DISTSYNC" -v -c "$conf" sync --all --json >"$tmp/out.json" 2>"$tmp/err" &
pid=$!
st_pids+=("$pid")
# every 50 ms: the bytes under other's target, big.bin's inode on delta's,
# whether other's s.bin is published
python3 - "$pid" "$tmp" >"$tmp/samples" <<'PY'
import os, sys, time
pid, tmp = int(sys.argv[1]), sys.argv[2]
def size(d):
    n = 0
    for root, _, files in os.walk(d):
        for f in files:
            try: n += os.lstat(os.path.join(root, f)).st_size
            except OSError: pass
    return n
def ino(p):
    try: return os.stat(p).st_ino
    except OSError: return 0
t0 = time.monotonic()
while True:
    alive = os.path.exists(f"/proc/{pid}") and open(f"/proc/{pid}/stat").read().split()[2] != "Z"
    print(f"{time.monotonic() - t0:.3f} {size(tmp + '/t-other')} {ino(tmp + '/t-delta/engines/big.bin')} "
          f"{int(os.path.exists(tmp + '/t-other/patches/s.bin'))}", flush=True)
    if not alive: break
    time.sleep(0.05)
PY
wait "$pid" || bad "sync --all failed: $(grep -v debug "$tmp/err" | head -c 600)"
python3 -c 'import json,sys; d=json.load(open(sys.argv[1]))["deltas"]; print(f"  deltas: {d}"); sys.exit(0 if d["computed"] == 1 else 1)' \
  "$tmp/out.json" || bad "want exactly one delta computed: $(head -c 300 "$tmp/out.json")"
st_check_converged "$store/engines" "$tmp/t-delta/engines" "delta"
diff -r "$store/patches" "$tmp/t-other/patches" >/dev/null || bad "other: not byte-exact"

# from the start of the sync until other's s.bin is published, the longest
# time its target saw no new byte. Paced at 2 MB/s it moves every ~0.5 s
# (the pacer's burst); a loop blocked by the delta stalls it for the
# whole computation (seconds; on the old engine also before it began).
python3 - "$tmp/samples" <<'PY' || fail=1
import sys
rows = [tuple(map(float, l.split())) for l in open(sys.argv[1]) if l.strip()]
pub = next((t for t, _, i, _ in rows if i != rows[0][2]), None)
done = next((t for t, _, _, d in rows if d), None)
first = next((t for t, b, _, _ in rows if b != rows[0][1]), None)
if done is None:
    sys.exit("FAIL: never saw other's s.bin published")
stall, last_t, last_b = 0.0, rows[0][0], rows[0][1]
for t, b, _, _ in rows:
    if t > done:
        break
    if b != last_b:
        last_t, last_b = t, b
    stall = max(stall, t - last_t)
print(f"  other: first byte at {first} s, s.bin published at {done:.2f} s, longest stall before it {stall:.2f} s; "
      f"delta's big.bin published at {pub} s; sync ended at {rows[-1][0]:.2f} s")
if stall > 2.0:
    sys.exit(f"FAIL: other's transfer stalled {stall:.2f} s while the delta server computed its delta")
if pub is None or first is None or pub < first:
    sys.exit("FAIL: the delta did not overlap other's transfer (published before it began)")
PY
# the engine's own probe (-v: "the loop's longest stall") agrees
python3 - "$tmp/err" <<'PY' || fail=1
import re, sys
m = re.findall(r"the loop's longest stall ([0-9.]+) ms", open(sys.argv[1]).read())
if not m:
    sys.exit("FAIL: no stall figure in the -v log")
print(f"  the loop's longest stall (engine probe): {max(map(float, m)):.1f} ms")
if max(map(float, m)) >= 1000:
    sys.exit(f"FAIL: the engine's loop stalled {max(map(float, m)):.1f} ms")
PY
st_exit "another server moves while a retained basis's delta computes"
