#!/usr/bin/env bash
# The daemon keeps one process (one ds_sync_t, one engine) across its runs,
# and its delta jobs share retain handles (sync_rpool.c): a kept handle
# must never read an old snapshot, nor stay open between runs. Three
# run-nows in one daemon, the store at v1, v2, v3 of n files: the second
# and third runs compute n deltas each from bases only the retain store
# holds (the third's, v2, written by the second run's retain job after
# that run's worker handles were opened); after each run the daemon holds
# no worker handle (no descriptor of the retain WAL beyond the loop's and
# the retain job's), and its -v log counts the handles the batch opened
# (at most libuv's 4 worker threads) against the times a job took one.
set -uo pipefail
. "$(dirname "$0")/lib/sync.bash"
. "$(dirname "$0")/lib/engine.bash"
. "$(dirname "$0")/lib/daemon.bash"
. "$(dirname "$0")/lib/api.bash"
st_init daemon_retain_handles
export UV_THREADPOOL_SIZE=4
state=$tmp/state conf=$tmp/d.conf sock=$tmp/state/distsync.sock store=$tmp/store n=24
mkdir -p "$store/engines" "$store/patches" "$store/definitions"
echo p >"$store/patches/p.txt"
echo d >"$store/definitions/d.txt"
gen() {
  python3 - "$store" "$n" "$1" <<'PY'
import os, random, sys
root, n, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
for i in range(n):
    random.seed(i)
    body = bytearray(random.randbytes(60000))
    for s in range(1, seed + 1): # each version keeps the earlier edits
        random.seed(s * 1000 + i)
        body[5000 * s:5000 * s + 100] = random.randbytes(100)
    with open(os.path.join(root, "engines", "e%02d.bin" % i), "wb") as f:
        f.write(body)
PY
}
en_head "$conf" "$store" "$state"
en_server "$conf" s1 "$tmp/t1" local
log=$tmp/daemon.log
DISTSYNC_TEST_NOW=$(dm_epoch 2026-03-10T01:00:00Z) DISTSYNC_TEST_SPEED=1 \
  "$DISTSYNC" -v -c "$conf" daemon >>"$log" 2>&1 &
dpid=$!
st_pids+=("$dpid")
api_wait_up "$log" || st_exit daemon_retain_handles

# wal_fds: the daemon's open descriptors of the retain store's WAL.
wal_fds() {
  local f c=0
  for f in /proc/"$dpid"/fd/*; do
    [ "$(readlink "$f" 2>/dev/null)" = "$state/retain/retain.db-wal" ] && c=$((c + 1))
  done
  echo "$c"
}

for v in 1 2 3; do
  gen "$v"
  api POST /v1/run-now '{"servers":["s1"]}'
  expect 202 "run-now $v" || st_exit daemon_retain_handles
  id=$(jq_py 'j["id"]')
  run_wait "$id" ok 90 || st_exit daemon_retain_handles
  st_check_converged "$store" "$tmp/t1" "run $v"
  computed=$(jq_py 'j["deltas"]["computed"]')
  fds=$(wal_fds)
  echo "  run $v: $computed deltas computed; the daemon holds $fds descriptors of the retain WAL"
  [ "$v" = 1 ] || [ "$computed" -ge "$n" ] ||
    bad "run $v computed $computed deltas, not $n: its retained bases were not read"
  [ "$fds" -le 2 ] || bad "after run $v the daemon holds $fds descriptors of the retain WAL:" \
    "worker handles stayed open between runs"
done
python3 - "$log" "$n" <<'PY' || fail=1
import re, sys
m = [(int(a), int(b)) for a, b in
     re.findall(r"(\d+) handles? opened for the workers, taken (\d+) times?", open(sys.argv[1]).read())]
n = int(sys.argv[2])
print(f"  pool lines (opened, taken): {m}")
if len([1 for o, t in m if t >= n]) < 2 or any(o > 4 for o, t in m):
    sys.exit(f"FAIL: want two batches of {n}+ jobs, each with at most 4 handles opened: {m}")
PY
dm_stop
st_exit daemon_retain_handles
