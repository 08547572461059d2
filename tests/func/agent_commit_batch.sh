#!/usr/bin/env bash
# The agent publishes commits in batches (src/target/apply_batch.c), through
# the real CLI and a real `distsync agent` (file:// with transport = agent),
# traced with strace (fsync not disabled):
#  - 150 new files, then the same 150 rewritten (deltas), each sync costs
#    far fewer fsync + syncfs calls than files (one file at a time was two
#    fsyncs per file: 300 per sync);
#  - durability order, for every rename of a tmp file into place: a syncfs,
#    or an fsync of that tmp file, after its last write and before the
#    rename; and a syncfs, or an fsync of the destination directory, after
#    the rename and before the agent's next reply (a write to its stdout);
#  - the targets converge.
# Each fsync, fdatasync and syncfs is delayed 20 ms (strace's inject), a slow
# disk: frames then wait while the agent syncs, as on a loaded or slow
# target. Without it, an agent that keeps up with its input finds it empty
# after every file and publishes each alone (its batches are what waits), so
# the count depended on the machine's load (36 and 170 calls for 150 files
# seen on an idle machine).
# Skips when strace cannot trace.
set -uo pipefail
. "$(dirname "$0")/lib/sync.bash"
st_init agent_commit_batch
if ! command -v strace >/dev/null || ! strace -f -o /dev/null true 2>/dev/null; then
  echo "SKIP: agent_commit_batch: strace is missing or cannot trace here"
  exit 77
fi
unset DISTSYNC_TEST_NO_FSYNC
store=$tmp/store t=$tmp/t n=150
mkdir -p "$store/patches/a" "$store/patches/b" "$t"
gen() {
  python3 - "$store" "$n" "$1" <<'PY'
import os, random, sys
root, n, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
for i in range(n):
    random.seed(i)
    body = bytearray(random.randbytes(3000))
    random.seed(seed * 100000 + i)
    body[100:140] = random.randbytes(40)
    with open(os.path.join(root, "patches", "ab"[i % 2], "f%03d.bin" % i), "wb") as f:
        f.write(body)
PY
}
st_conf "$tmp/d.conf" "$store" "$tmp/state" srv "file://$t" agent

# check TRACE WHAT: the counts and the order above, in the agent's lines
check() {
  python3 - "$1" "$2" "$n" "$(cd "$t" && pwd -P)" <<'PY' || fail=1
import re, sys
trace, what, n, root = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
import glob
agents = [f for f in glob.glob(trace + ".*")
          if re.search(r'execve\(.*"agent"', open(f).read())]
if len(agents) != 1:
    sys.exit(f"FAIL: {what}: {len(agents)} agent processes in the traces, want 1")
ev = []
for l in open(agents[0]).read().splitlines():
    m = re.match(r'(\w+)\((\d+)<([^>]*)>(.*)', l)
    if m and not re.search(r'= -1 E', l):
        ev.append((m.group(1), int(m.group(2)), m.group(3), m.group(4)))
tmpdir = root + "/.distsync/tmp"
content_syncs = [e for e in ev if e[0] == "syncfs" or
                 (e[0] in ("fsync", "fdatasync") and not e[2].startswith(root + "/.distsync"))
                 or (e[0] in ("fsync", "fdatasync") and e[2].startswith(tmpdir + "/"))]
renames = [i for i, e in enumerate(ev) if e[0] in ("renameat", "renameat2") and e[2] == tmpdir]
if len(renames) != n:
    sys.exit(f"FAIL: {what}: {len(renames)} renames out of .distsync/tmp, want {n}")
bad = []
for i in renames:
    name = re.match(r', "([^"]+)", (\d+)<([^>]*)>', ev[i][3])
    tmpname, dest = name.group(1), name.group(3)
    last_write = max((j for j in range(i) if ev[j][0] in ("write", "pwrite64")
                      and ev[j][2] == tmpdir + "/" + tmpname), default=-1)
    if last_write < 0:
        bad.append(f"{tmpname}: no write seen"); continue
    if not any(ev[j][0] == "syncfs" or (ev[j][0] in ("fsync", "fdatasync") and ev[j][2] == tmpdir + "/" + tmpname)
               for j in range(last_write + 1, i)):
        bad.append(f"{dest}: {tmpname} renamed without a sync after its last write")
    reply = next((j for j in range(i + 1, len(ev)) if ev[j][0] == "write" and ev[j][1] == 1), len(ev))
    if not any(ev[j][0] == "syncfs" or (ev[j][0] in ("fsync", "fdatasync") and ev[j][2] == dest)
               for j in range(i + 1, reply)):
        bad.append(f"{dest}: replied before the rename of {tmpname} was made durable")
if bad:
    sys.exit(f"FAIL: {what}: {len(bad)} ordering faults: {bad[:3]}")
print(f"  {what}: {n} files published with {len(content_syncs)} fsync/syncfs calls")
if len(content_syncs) > n // 5:
    sys.exit(f"FAIL: {what}: {len(content_syncs)} fsync/syncfs calls for {n} files (want <= {n // 5})")
PY
}

for round in 1 2; do
  gen "$round"
  "$DISTSYNC" -c "$tmp/d.conf" scan >/dev/null 2>&1 || bad "scan $round"
  strace -ff -y -e trace=execve,write,pwrite64,fsync,fdatasync,syncfs,renameat,renameat2 \
    -e inject=fsync,fdatasync,syncfs:delay_exit=20000 \
    -o "$tmp/trace$round" "$DISTSYNC" -c "$tmp/d.conf" sync srv >"$tmp/out" 2>&1 ||
    bad "sync $round: $(head -c 400 "$tmp/out")"
  st_check_converged "$store" "$t" "sync $round"
  check "$tmp/trace$round" "sync $round"
done
st_exit agent_commit_batch
