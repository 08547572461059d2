#!/usr/bin/env bash
# The retain store's work runs on a worker thread, never on the engine's
# loop (issue 8): while one server's run retains its versions (made slow
# with the test-build hook DISTSYNC_TEST_RETAIN_DELAY_MS, a pause per
# version retained), another server's transfer keeps moving: the bytes
# arriving on its target never stall for long. Two servers retaining the
# same versions at once leave each version retained once, without error.
# Skips (exit 0) on a build without test hooks (cmake -DDS_TEST_HOOKS=ON).
set -uo pipefail
. "$(dirname "$0")/lib/sync.bash"
st_init engine_retain_offload
st_need_retain_hook engine_retain_offload
export DISTSYNC_TEST_NO_FSYNC=1 DISTSYNC_TEST_RETAIN_DELAY_MS=3000
store=$tmp/store
mkdir -p "$store/patches" "$store/engines"
for i in 1 2 3; do head -c 1000000 /dev/urandom >"$store/patches/s$i.bin"; done
head -c 12000000 /dev/urandom >"$store/engines/b.bin"
conf=$tmp/d.conf
printf '[console]\nstore = %s\nstate = %s\nmax_servers = 4\n' "$store" "$tmp/state" >"$conf"
# quick and quick2 sync the small files (3 MB at 2 MB/s), then retain them
# (3 x 3 s); slow syncs 12 MB at 2 MB/s meanwhile
for s in quick quick2 slow; do
  mkdir -p "$tmp/t-$s"
  cls=patches
  [ "$s" = slow ] && cls=engines
  printf '\n[server %s]\nurl = file://%s\ntransport = local\nclasses = %s\nbandwidth = 2MB\n' \
    "$s" "$tmp/t-$s" "$cls" >>"$conf"
done
"$DISTSYNC" -c "$conf" scan >/dev/null 2>&1 || bad "scan failed"

"$DISTSYNC" -c "$conf" sync --all >"$tmp/out" 2>&1 &
pid=$!
st_pids+=("$pid")
# samples the bytes under each target (published and in flight) every 50 ms
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
t0 = time.monotonic()
while True:
    alive = os.path.exists(f"/proc/{pid}") and open(f"/proc/{pid}/stat").read().split()[2] != "Z"
    print(f"{time.monotonic() - t0:.3f} {size(tmp + '/t-slow')} {size(tmp + '/t-quick')}", flush=True)
    if not alive: break
    time.sleep(0.05)
PY
wait "$pid" || bad "sync --all failed: $(tail -5 "$tmp/out")"
grep -i "retain" "$tmp/out" && bad "sync reported a retain problem"
for s in quick quick2; do diff -r "$store/patches" "$tmp/t-$s/patches" >/dev/null || bad "$s: not byte-exact"; done
diff -r "$store/engines" "$tmp/t-slow/engines" >/dev/null || bad "slow: not byte-exact"

# while slow's 12 MB were in flight (first byte to last), the longest time
# its target saw no new byte: the loop blocked by a retain stalls it for
# the whole retain (9 s); paced at 2 MB/s it otherwise moves every ~0.1 s
python3 - "$tmp/samples" 12000000 <<'PY' || fail=1
import sys
rows = [tuple(map(float, l.split())) for l in open(sys.argv[1]) if l.strip()]
total = int(sys.argv[2])
inflight = [(t, b) for t, b, q in rows if 0 < b < total]
stall, last_t, last_b = 0.0, None, None
for t, b, _ in rows:
    if last_b is not None and 0 < last_b < total:
        if b != last_b: last_t, last_b = t, b
        stall = max(stall, t - last_t)
    if b != last_b: last_t, last_b = t, b
quick_done = next((t for t, b, q in rows if q >= 3000000), None)
print(f"slow: in flight {inflight[0][0] if inflight else -1:.2f}-{inflight[-1][0] if inflight else -1:.2f} s, "
      f"longest stall {stall:.2f} s; quick published at {quick_done} s; "
      f"sync ended at {rows[-1][0]:.2f} s")
if not inflight:
    print("FAIL: never saw slow's transfer in flight", file=sys.stderr); sys.exit(1)
if quick_done is None or quick_done > inflight[-1][0]:
    print("FAIL: quick's retain did not overlap slow's transfer", file=sys.stderr); sys.exit(1)
if stall > 2.0:
    print(f"FAIL: slow's transfer stalled {stall:.2f} s while another run retained", file=sys.stderr)
    sys.exit(1)
PY

# every version retained once (3 small, shared by quick and quick2, 1 big)
n=$(python3 -c 'import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute("select count(*) from version").fetchone()[0])' \
  "$tmp/state/retain/retain.db")
[ "$n" = 4 ] || bad "retain store holds $n versions, want 4"
# a second sync finds them retained: nothing to retain, quick to end
t0=$(date +%s%N)
"$DISTSYNC" -c "$conf" sync --all >"$tmp/out2" 2>&1 || bad "second sync failed: $(tail -3 "$tmp/out2")"
ms=$((($(date +%s%N) - t0) / 1000000))
[ "$ms" -lt 2500 ] || bad "second sync took $ms ms: it retained again"
st_exit engine_retain_offload
