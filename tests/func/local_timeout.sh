#!/usr/bin/env bash
# transport = local (issue 8): the in-process receiver runs on its own
# thread behind a socket, so the console's inactivity watchdog covers it as
# it covers an agent. A target file replaced by a 4 GiB sparse file takes
# seconds to hash (>= 2 s even at SHA-NI speed); `verify` with
# `timeout = 1s` fails the server naming the request it waited for (the
# console used to sit inside the receiver until the hash was done, then
# report a drift), and still returns once the hash ends (the receiver's
# thread is joined), with nothing left in .distsync/tmp.
set -uo pipefail
. "$(dirname "$0")/lib/sync.bash"
st_init local_timeout
export DISTSYNC_TEST_NO_FSYNC=1
store=$tmp/store
mkdir -p "$store/patches" "$store/engines" "$store/definitions" "$tmp/t"
head -c 300000 /dev/urandom >"$store/patches/big.bin"
printf 'defs v1\n' >"$store/definitions/av.def"
st_conf "$tmp/d.conf" "$store" "$tmp/state" loc "file://$tmp/t" local
ds() { "$DISTSYNC" -c "$tmp/d.conf" "$@"; }
ds scan >/dev/null || bad "scan"
ds sync loc >/dev/null || bad "first sync"

# The same path, now 4 GiB of holes: HASH reads all of it.
rm -f "$tmp/t/patches/big.bin"
truncate -s 4G "$tmp/t/patches/big.bin"
sed -i 's/^\[console\]$/[console]\ntimeout = 1s/' "$tmp/d.conf"
start=$(date +%s)
rc=0
timeout 300 "$DISTSYNC" -c "$tmp/d.conf" verify loc >"$tmp/out" 2>"$tmp/err" || rc=$?
took=$(($(date +%s) - start))
echo "  verify loc (timeout = 1s, a 4 GiB file to hash): exit $rc in ${took} s"
[ "$rc" = 4 ] || bad "verify exit $rc, want 4 (server not verified): $(head -c 400 "$tmp/out" "$tmp/err")"
grep -q "server loc: no response from the target for 1 s (during HASH)" "$tmp/out" "$tmp/err" ||
  bad "no timeout naming server loc and HASH: $(head -c 400 "$tmp/out" "$tmp/err")"
[ -z "$(ls -A "$tmp/t/.distsync/tmp" 2>/dev/null)" ] || bad ".distsync/tmp not empty"

st_exit local_timeout
