#!/usr/bin/env bash
# The delta jobs whose basis only the retain store holds share a few retain
# handles: each worker thread's job takes one kept from an earlier job
# instead of opening the store (SQLite open, its WAL, the schema check) and
# closing it again. Through the real CLI under strace -f: a server holding
# v1 of n files, the store at v2 (v1 only retained), its sync computes n
# deltas from retained bases, and the worker threads open the retain
# store's WAL at most once per thread of libuv's pool (4) plus once for the
# retain job's handle; before, once per delta (n). (The WAL, because
# SQLite reuses a closed connection's descriptor of the database file but
# opens the WAL for each connection.) The -v log counts the
# handles opened and how often a job took one. Skips when strace cannot
# trace.
set -uo pipefail
. "$(dirname "$0")/lib/sync.bash"
st_init sync_retain_handles
if ! command -v strace >/dev/null || ! strace -f -o /dev/null true 2>/dev/null; then
  echo "SKIP: sync_retain_handles: strace is missing or cannot trace here"
  exit 77
fi
export UV_THREADPOOL_SIZE=4
store=$tmp/store n=40
mkdir -p "$store/engines" "$tmp/a"
gen() {
  python3 - "$store" "$n" "$1" <<'PY'
import os, random, sys
root, n, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
for i in range(n):
    random.seed(i)
    body = bytearray(random.randbytes(50000))
    random.seed(seed * 1000 + i)
    body[2000 * seed:2000 * seed + 100] = random.randbytes(100)
    with open(os.path.join(root, "engines", "e%02d.bin" % i), "wb") as f:
        f.write(body)
PY
}
st_conf "$tmp/d.conf" "$store" "$tmp/state" a "file://$tmp/a" local
ds() { "$DISTSYNC" -c "$tmp/d.conf" "$@"; }
gen 1
ds sync a >"$tmp/out" 2>&1 || bad "first sync: $(head -c 400 "$tmp/out")"
gen 2 # v1 leaves the store: only the retain store holds the bases
ds scan >"$tmp/out" 2>&1 || bad "scan: $(head -c 400 "$tmp/out")"
strace -f -e trace=openat -o "$tmp/trace" "$DISTSYNC" -v -c "$tmp/d.conf" sync --no-scan --json a \
  >"$tmp/a.json" 2>"$tmp/err" || bad "update of a: $(head -c 400 "$tmp/err" "$tmp/a.json")"
st_check_converged "$store" "$tmp/a" "update of a"
python3 - "$tmp/trace" "$tmp/a.json" "$tmp/state/retain/retain.db-wal" "$n" "$tmp/err" <<'PY' || fail=1
import json, re, sys
trace, res, wal, n, err = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5]
d = json.load(open(res))["deltas"]
if d["computed"] < n:
    sys.exit(f"FAIL: the update computed {d['computed']} deltas, not {n}: {d}")
lines = open(trace).read().splitlines()
main = lines[0].split()[0]
opens = [l.split()[0] for l in lines if f'"{wal}"' in l and "openat(" in l]
workers = [t for t in opens if t != main]
print(f"  {len(opens)} opens of the retain WAL, {len(workers)} on worker threads, "
      f"{len(set(workers))} threads, for {d['computed']} deltas")
if len(opens) == len(workers):
    sys.exit("FAIL: the main thread never opened the retain store: trace incomplete?")
if len(workers) > 4 + 1:
    sys.exit(f"FAIL: worker threads opened the retain store {len(workers)} times for "
             f"{d['computed']} retained-basis deltas (at most 4 jobs at once, and the retain job)")
m = re.findall(r"(\d+) handles? opened for the workers, taken (\d+) times?", open(err).read())
if not m or int(m[0][0]) > 4 or int(m[0][1]) < n:
    sys.exit(f"FAIL: the log does not say at most 4 handles were opened for {n} jobs: {m}")
PY
st_exit sync_retain_handles
