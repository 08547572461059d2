#!/usr/bin/env bash
# A basis truncated by another process while the receiver applies a zpatch
# against it (issue 9): the receiver used to mmap the basis, and touching a
# page past the new end of the file raised SIGBUS; the local receiver runs
# on a thread of the console's own process, so the signal killed the whole
# `distsync sync`. Now it reads the basis with pread and a short read fails
# that one file cleanly.
#
# A 70 MiB file (three zpatch segments, each against a window of the basis)
# is rebuilt: a byte changed every 4 KiB, no chunk in common. The server is
# file:// with the in-process receiver, capped at 128 kbit/s so the zpatch
# (~130 KB) streams for seconds; once the receiver has started writing the
# new version, the test truncates the target's old file (the basis) to 0.
# Asserted: the sync exits with a failure status, not a signal; its output
# names the file and says it changed while it was read; the target keeps no
# tmp file and no lease, its manifest decodes; a second sync (no cap)
# converges.
set -uo pipefail
. "$(dirname "$0")/lib/sync.bash"
. "$(dirname "$0")/lib/engine.bash"
st_init sync_basis_truncated
store=$tmp/store target=$tmp/t
mkdir -p "$store/engines" "$store/patches" "$store/definitions"
echo p >"$store/patches/p.txt"
echo d >"$store/definitions/d.txt"
gen() { # gen OUT REBUILT: 70 MiB pseudo-random; REBUILT=1 changes a byte every 4 KiB
  python3 - "$1" "$2" <<'PY'
import random, sys
b = bytearray(random.Random(9).randbytes(70 << 20))
if sys.argv[2] == "1":
    b[100::4096] = bytes(x ^ 0xA5 for x in b[100::4096])
open(sys.argv[1], "wb").write(b)
PY
}
gen "$store/engines/big.bin" 0
en_head "$tmp/slow.conf" "$store" "$tmp/state" "delta_level = 1"
en_head "$tmp/fast.conf" "$store" "$tmp/state" "delta_level = 1"
en_server "$tmp/slow.conf" t "$target" local "bandwidth = 128kbit"
en_server "$tmp/fast.conf" t "$target" local
ds() { "$DISTSYNC" -c "$tmp/fast.conf" "$@"; }
ds scan >/dev/null 2>&1 || bad "scan v1"
ds sync t >/dev/null 2>&1 || bad "sync v1"
gen "$store/engines/big.bin" 1
ds scan >/dev/null 2>&1 || bad "scan v2"

"$DISTSYNC" -c "$tmp/slow.conf" sync t >"$tmp/out" 2>"$tmp/err" &
pid=$!
st_pids+=("$pid")
# the receiver writes the new version into .distsync/tmp as the zpatch
# arrives: truncate the basis once that has begun
cut=0
for _ in $(seq 1 1200); do
  kill -0 "$pid" 2>/dev/null || break
  if [ -n "$(find "$target/.distsync/tmp" -type f -size +0 2>/dev/null | head -1)" ]; then
    truncate -s 0 "$target/engines/big.bin" && cut=1
    break
  fi
  sleep 0.05
done
[ "$cut" = 1 ] || bad "the receiver never started writing the new version (or the sync ended first)"
rc=0
wait "$pid" || rc=$?
echo "  sync with the basis truncated mid-apply: exit $rc; $(grep -h -m1 'big.bin' "$tmp/out" "$tmp/err" | cut -c1-200)"
[ "$rc" -lt 128 ] || bad "the console died of signal $((rc - 128)) (SIGBUS is 7)"
[ "$rc" != 0 ] || bad "the sync succeeded although its basis was truncated mid-apply"
grep -q "engines/big.bin.*changed while it was read" "$tmp/out" "$tmp/err" ||
  bad "no error naming engines/big.bin and the reason: $(cat "$tmp/out" "$tmp/err" | head -c 600)"
if [ -d "$target/.distsync/tmp" ] && [ -n "$(find "$target/.distsync/tmp" -mindepth 1 -print -quit)" ]; then
  bad "files left in .distsync/tmp: $(ls "$target/.distsync/tmp")"
fi
[ ! -e "$target/.distsync/lease" ] || bad "the lease was not released"
en_manifest_valid "$target" "manifest after the failed file"
[ "$(stat -c %s "$target/engines/big.bin")" = 0 ] || bad "the truncated file was replaced by something"

ds sync t >"$tmp/out2" 2>&1 || bad "the sync after: $(head -c 300 "$tmp/out2")"
en_converged "$store" "$target" "after the basis was truncated"
st_exit "sync with its basis truncated mid-apply"
