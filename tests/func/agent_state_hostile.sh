#!/usr/bin/env bash
# The real agent (`distsync agent --root DIR` over a pipe) against hostile
# state on the target: a FIFO as .distsync/manifest, .distsync/lease,
# .distsync/lock and as a content file (HASH, SIG, COPY basis); hard links
# planted at .distsync/lease.tmp and .distsync/manifest.tmp pointing at a
# canary outside the root; an mtime near INT64_MIN (on a tmpfs, which keeps
# it). Each must end with a clear error naming the file, or succeed without
# touching the canary, and never hang (every agent runs under `timeout`).
set -uo pipefail
: "${DISTSYNC:?}" "${DS_SRC:?}"
work=$(mktemp -d "${DS_TEST_TMP:-/tmp}/agent_state_hostile.XXXXXX")
trap 'rm -rf "$work"' EXIT
fail=0
bad() { echo "FAIL: $*" >&2; fail=1; }
proto="$DS_SRC/tests/func/lib/agent_proto.py"

# run NAME ROOT SCRIPT: encodes SCRIPT, runs the agent, decodes to $work/NAME.txt
run() {
  local name=$1 root=$2 rc=0
  printf '%s\n' "$3" >"$work/$name.py"
  python3 "$proto" encode "$work/$name.bin" "$work/$name.py" || { bad "$name: encode"; return; }
  timeout 10 "$DISTSYNC" agent --root "$root" <"$work/$name.bin" >"$work/$name.out" \
    2>"$work/$name.err" || rc=$?
  [ $rc = 124 ] && bad "$name: the agent hung (killed after 10 s)"
  python3 "$proto" decode "$work/$name.out" >"$work/$name.txt"
}
# expect NAME ID REGEX: the reply to request ID matches REGEX
expect() {
  local line
  line=$(awk -v id="$2" '$1 == id' "$work/$1.txt" | head -1)
  grep -Eq -- "$3" <<<"$line" || bad "$1: reply to request $2 is '$line', want /$3/ (all: $(tr '\n' '|' <"$work/$1.txt" | head -c 600))"
}

fresh() { rm -rf "$work/root"; mkdir -p "$work/root/.distsync" "$work/root/defs"; }

# 1. FIFO as the manifest: MANIFEST_GET alone (no lease) and LEASE.
fresh
mkfifo "$work/root/.distsync/manifest"
run man_get "$work/root" 'hello(); empty("MANIFEST_GET"); empty("BYE")'
expect man_get 2 '^2 ERR .*\.distsync/manifest.*not a regular file'
run man_lease "$work/root" 'hello(); lease(); empty("BYE")'
expect man_lease 2 '^2 ERR .*manifest.*not a regular file'
[ -p "$work/root/.distsync/manifest" ] || bad "the FIFO manifest was replaced silently"

# 2. FIFO as the lease file and as the lock file.
fresh
mkfifo "$work/root/.distsync/lease"
run lease_fifo "$work/root" 'hello(); lease(); empty("BYE")'
expect lease_fifo 2 '^2 ERR .*\.distsync/lease.*not a regular file'
fresh
mkfifo "$work/root/.distsync/lock"
run lock_fifo "$work/root" 'hello(); lease(); empty("BYE")'
expect lock_fifo 2 '^2 ERR .*\.distsync/lock.*not a regular file'

# 3. FIFO as a content file: HASH, SIG, and a COPY basis.
fresh
mkfifo "$work/root/defs/pipe"
run content "$work/root" 'hello(); lease(); path_msg("HASH", "defs/pipe"); sig("defs/pipe")
begin(1, "defs/new", 4); copy(1, "defs/pipe", 0, 4); commit(1, b"abcd"); empty("BYE")'
expect content 3 '^3 ERR .*defs/pipe.*not a regular file'
expect content 4 '^4 ERR .*defs/pipe.*not a regular file'
expect content 6 '^6 FILE_ERR .*not a regular file'

# 4. Hard links at lease.tmp and manifest.tmp to a canary outside the root.
fresh
echo "precious canary" >"$work/canary"
ln "$work/canary" "$work/root/.distsync/lease.tmp"
ln "$work/canary" "$work/root/.distsync/manifest.tmp"
run links "$work/root" 'hello(); lease(); whole(1, "defs/a.txt", b"alpha\n")
empty("MANIFEST_COMMIT"); lease(op=3); empty("BYE")'
expect links 2 '^2 LEASE_OK'
expect links 5 '^5 FILE_OK'
expect links 6 '^6 OK 1'
[ "$(cat "$work/canary")" = "precious canary" ] || bad "the canary outside the root was overwritten: $(head -c 200 "$work/canary")"
[ "$(stat -c %h "$work/canary")" = 1 ] || bad "the planted links are still there"
[ "$(cat "$work/root/defs/a.txt")" = alpha ] || bad "a.txt not published"

# 5. Times beyond the 64-bit nanosecond range (tmpfs keeps them): FILE_OK
#    and HASH_OK report them saturated, not wrapped by a signed overflow.
shm=$(mktemp -d /dev/shm/agent_state_hostile.XXXXXX 2>/dev/null) || shm=""
if [ -n "$shm" ] && [ "$(stat -f -c %T "$shm")" = tmpfs ]; then
  echo old >"$shm/past.bin"
  echo new >"$shm/future.bin"
  python3 -c 'import os, sys; os.utime(sys.argv[1], (0, -9300000000)); os.utime(sys.argv[2], (0, 9300000000))' \
    "$shm/past.bin" "$shm/future.bin" || bad "cannot set out-of-range mtimes"
  run mtime "$shm" 'hello(); lease(); whole(1, "min.bin", b"x", mtime=-2**63 + 1)
path_msg("HASH", "past.bin"); path_msg("HASH", "future.bin"); empty("BYE")'
  expect mtime 5 '^5 FILE_OK -9223372036854775807 '
  expect mtime 6 '^6 HASH_OK -9223372036854775807 '
  expect mtime 7 '^7 HASH_OK 9223372036854775807 '
  rm -rf "$shm"
else
  echo "note: no tmpfs at /dev/shm: mtime case skipped"
fi

if [ $fail = 0 ]; then echo "PASS: agent_state_hostile"; exit 0; fi
echo "FAILED: agent_state_hostile" >&2
exit 1
