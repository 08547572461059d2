#!/usr/bin/env bash
# A slow link is never a failure (issue 8): `distsync sync` to a real agent
# behind a slow link (tests/func/lib/slow_agent.py relays the console's
# bytes at DS_SLOW_BPS) whose data takes more than two lease periods
# (lease_ttl = 5, about 12 s of sending) succeeds, and the target equals
# the store: the lease renewals jump the queued data. Before, a renewal
# waited behind every file queued (up to 16 MiB) and each file committed
# after the lease expired failed ("no valid lease at FILE_COMMIT: the
# lease expired").
set -uo pipefail
. "$(dirname "$0")/lib/sync.bash"
st_init sync_slow_link
export DISTSYNC_TEST_NO_FSYNC=1 DISTSYNC DS_SLOW_BPS=${DS_SLOW_BPS:-100000}
store=$tmp/store target=$tmp/t
mkdir -p "$target"
# 24 files of 1..96 KiB (random: zstd cannot shrink them), ~1.2 MB
st_gen "$store" 0 "$tmp/known" --files 24 --max 96 || bad "mkstore"
st_conf "$tmp/d.conf" "$store" "$tmp/state" slow "file://$target" agent
printf 'agent = %s\n' "$DS_SRC/tests/func/lib/slow_agent.py" >>"$tmp/d.conf"
sed -i 's/^\[console\]$/[console]\nlease_ttl = 5/' "$tmp/d.conf"
ds() { "$DISTSYNC" -c "$tmp/d.conf" "$@"; }
ds scan >/dev/null 2>&1 || bad "scan failed"
bytes=$(du -sb "$store" | cut -f1)
start=$(date +%s)
rc=0
timeout 120 "$DISTSYNC" -c "$tmp/d.conf" sync slow >"$tmp/out" 2>"$tmp/err" || rc=$?
took=$(($(date +%s) - start))
echo "  sync slow: $bytes bytes at $DS_SLOW_BPS B/s, lease 5 s: exit $rc in ${took} s"
[ "$rc" = 0 ] || bad "sync exit $rc: $(grep -h -m3 'lease\|FAIL\|error' "$tmp/out" "$tmp/err")"
[ "$took" -ge 10 ] || bad "the link was not slow: ${took} s (want more than two 5 s lease periods)"
if grep -q "lease expired" "$tmp/out" "$tmp/err"; then
  bad "a lease expired: $(grep -h -m1 "lease expired" "$tmp/out" "$tmp/err")"
fi
st_check_converged "$store" "$target" "sync over a slow link"
[ ! -e "$target/.distsync/lease" ] || bad "the lease was not released"
st_exit "sync over a link slower than the lease"
