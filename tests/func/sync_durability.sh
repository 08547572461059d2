#!/usr/bin/env bash
# Durability, through the real CLI under strace (both transports):
#  - every directory the receiver creates on a target (.distsync, its tmp,
#    and each new parent of a published file, however deep) is made durable
#    in its own parent: an fsync of the parent follows the mkdirat;
#  - DISTSYNC_TEST_NO_FSYNC is honoured only by a test build
#    (cmake -DDS_TEST_HOOKS=ON, which `distsync version` reports): a release
#    build still fsyncs with the variable set.
# Skips (exit 0) when strace is missing or cannot trace.
set -uo pipefail
. "$(dirname "$0")/lib/sync.bash"
st_init sync_durability
if ! command -v strace >/dev/null || ! strace -f -o /dev/null true 2>/dev/null; then
  echo "SKIP: sync_durability: strace is missing or cannot trace here"
  exit 0
fi
store=$tmp/store
mkdir -p "$store/patches/kb/2026/11" "$store/engines/x64/v2"
head -c 5000 /dev/urandom >"$store/patches/kb/2026/11/kb1.msu"
head -c 7000 /dev/urandom >"$store/engines/x64/v2/engine.bin"

# check_dirs TRACE WHAT: each successful mkdirat under the target is followed
# by an fsync of its parent directory in the same process.
check_dirs() {
  python3 - "$1" "$2" "$3" <<'PY' || fail=1
import re, sys
trace, what, root = sys.argv[1], sys.argv[2], sys.argv[3]
lines = open(trace).read().splitlines()
made, missing = 0, []
for i, l in enumerate(lines):
    m = re.match(r'(\d+)\s+mkdirat\(\d+<([^>]*)>, "([^"]+)", \S+\) = 0', l)
    if not m or not m.group(2).startswith(root):
        continue
    made += 1
    pid, parent = m.group(1), m.group(2)
    pat = re.compile(r'%s\s+fsync\(\d+<%s>\) = 0' % (pid, re.escape(parent)))
    if not any(pat.match(x) for x in lines[i + 1:]):
        missing.append(f"{parent}/{m.group(3)}")
if made < 5:
    sys.exit(f"FAIL: {what}: only {made} directories created under {root}: trace incomplete?")
if missing:
    sys.exit(f"FAIL: {what}: new directories never fsynced into their parent: {missing}")
PY
}

for tr in local agent; do
  t=$tmp/t-$tr
  mkdir -p "$t"
  st_conf "$tmp/$tr.conf" "$store" "$tmp/state-$tr" srv "file://$t" "$tr"
  "$DISTSYNC" -c "$tmp/$tr.conf" scan >/dev/null 2>&1 || bad "$tr: scan"
  (unset DISTSYNC_TEST_NO_FSYNC
   strace -f -y -e trace=mkdirat,fsync -o "$tmp/trace-$tr" \
     "$DISTSYNC" -c "$tmp/$tr.conf" sync srv >/dev/null 2>"$tmp/err-$tr") || bad "$tr: sync: $(head -c 300 "$tmp/err-$tr")"
  st_check_converged "$store" "$t" "$tr"
  check_dirs "$tmp/trace-$tr" "$tr" "$(cd "$t" && pwd -P)"
done

# DISTSYNC_TEST_NO_FSYNC: honoured only when the binary says it is a test build.
t=$tmp/t-env
mkdir -p "$t"
st_conf "$tmp/env.conf" "$store" "$tmp/state-env" srv "file://$t" local
"$DISTSYNC" -c "$tmp/env.conf" scan >/dev/null 2>&1 || bad "env: scan"
DISTSYNC_TEST_NO_FSYNC=1 strace -f -y -e trace=fsync -o "$tmp/trace-env" \
  "$DISTSYNC" -c "$tmp/env.conf" sync srv >/dev/null 2>"$tmp/err-env" || bad "env: sync: $(head -c 300 "$tmp/err-env")"
# fsyncs of published content (state files always sync: the target's under
# .distsync, the console's under its state directory, e.g. STATE/targets/)
n=$(grep 'fsync(' "$tmp/trace-env" | grep -v '/\.distsync' | grep -vc "<$tmp/state-env")
if "$DISTSYNC" version | grep -q "test hooks: on"; then
  echo "  test build: DISTSYNC_TEST_NO_FSYNC=1 honoured, $n content fsync calls"
  [ "$n" = 0 ] || bad "a test build ignored DISTSYNC_TEST_NO_FSYNC ($n fsync calls)"
else
  echo "  release build: DISTSYNC_TEST_NO_FSYNC=1 ignored, $n content fsync calls"
  [ "$n" -ge 2 ] || bad "a release build honoured DISTSYNC_TEST_NO_FSYNC (only $n fsync calls)"
fi
st_exit "sync_durability"
