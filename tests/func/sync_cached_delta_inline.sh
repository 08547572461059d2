#!/usr/bin/env bash
# A delta already in the cache is read by the sender on the loop thread,
# with no prefetch job: the second server of an update (every delta cached
# by the first) queues no worker job per file, each of which opened the
# store files and the cache entry only for the sender to open the entry
# again (a thread hand-off per file: on the cached libc6 update over
# ssh:// the sender trailed the agent). Through the real CLI under strace
# -f: no thread but the main one opens a delta-cache entry during the
# second server's sync, and the sync reports every delta cached. Skips
# when strace cannot trace.
set -uo pipefail
. "$(dirname "$0")/lib/sync.bash"
st_init sync_cached_delta_inline
if ! command -v strace >/dev/null || ! strace -f -o /dev/null true 2>/dev/null; then
  echo "SKIP: sync_cached_delta_inline: strace is missing or cannot trace here"
  exit 77
fi
store=$tmp/store n=40
mkdir -p "$store/engines" "$tmp/a" "$tmp/b"
gen() {
  python3 - "$store" "$n" "$1" <<'PY'
import os, random, sys
root, n, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
for i in range(n):
    random.seed(i)
    body = bytearray(random.randbytes(50000))
    random.seed(seed * 1000 + i)
    body[2000:2100] = random.randbytes(100)
    with open(os.path.join(root, "engines", "e%02d.bin" % i), "wb") as f:
        f.write(body)
PY
}
st_conf "$tmp/d.conf" "$store" "$tmp/state" a "file://$tmp/a" local b "file://$tmp/b" local
ds() { "$DISTSYNC" -c "$tmp/d.conf" "$@"; }
gen 1
ds sync a b >"$tmp/out" 2>&1 || bad "first sync: $(head -c 400 "$tmp/out")"
gen 2
ds sync a >"$tmp/out" 2>&1 || bad "update of a: $(head -c 400 "$tmp/out")"
strace -f -e trace=openat -o "$tmp/trace" "$DISTSYNC" -c "$tmp/d.conf" sync --no-scan --json b \
  >"$tmp/b.json" 2>"$tmp/err" || bad "update of b: $(head -c 400 "$tmp/err" "$tmp/b.json")"
st_check_converged "$store" "$tmp/b" "update of b"
python3 - "$tmp/trace" "$tmp/b.json" "$tmp/state/deltas/" "$n" <<'PY' || fail=1
import json, re, sys
trace, res, cache, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
d = json.load(open(res))["deltas"]
if d["computed"] != 0 or d["cached"] < n:
    sys.exit(f"FAIL: the update of b computed deltas or missed the cache: {d}")
lines = open(trace).read().splitlines()
main = lines[0].split()[0]
opens = [(l.split()[0], l) for l in lines if cache in l and "openat(" in l]
if not opens:
    sys.exit("FAIL: no delta-cache entry opened: trace incomplete?")
workers = [l for tid, l in opens if tid != main]
print(f"  {len(opens)} delta-cache opens, {len(workers)} on worker threads")
if workers:
    sys.exit(f"FAIL: {len(workers)} delta-cache entries opened by prefetch jobs on worker "
             f"threads for deltas already cached, e.g. {workers[0][:200]}")
PY
st_exit sync_cached_delta_inline
