#!/usr/bin/env bash
# Issue 10: a missing target root. Without create_root (default no), plan
# and sync fail naming the server, the path and the fix, for the in-process
# receiver and the agent alike; with create_root = yes the root (and its
# parents) is created and the sync converges. A root that is a file names
# the path and the errno. A root where the state directory cannot be made
# (.distsync is a file; a read-only mount, when we may mount) names
# ROOT/.distsync and the errno, not only "cannot prepare the state dir".
set -uo pipefail
. "$DS_SRC/tests/func/lib/sync.bash"
st_init target_root
export DISTSYNC_TEST_NO_FSYNC=1
ds() { "$DISTSYNC" -c "$tmp/c.conf" "$@"; }
mkdir -p "$tmp/state"
st_gen "$tmp/store" 0 "$tmp/known" --files 6 --max 8 >/dev/null
touch "$tmp/afile"
{
  printf '[console]\nstore = %s\nstate = %s\n' "$tmp/store" "$tmp/state"
  printf '\n[server loc]\nurl = file://%s/loc\n' "$tmp"
  printf '\n[server agt]\nurl = file://%s/agt\ntransport = agent\n' "$tmp"
  printf '\n[server mk]\nurl = file://%s/deep/er/mk\ncreate_root = yes\ntransport = agent\n' "$tmp"
  printf '\n[server fil]\nurl = file://%s/afile\n' "$tmp"
  printf '\n[server dsf]\nurl = file://%s/dsf\n' "$tmp"
  printf '\n[server ro]\nurl = file://%s/ro\ntransport = agent\n' "$tmp"
} >"$tmp/c.conf"

for s in loc agt; do
  for cmd in plan sync; do
    st_expect_ds 4 "server $s: target root $tmp/$s does not exist (create it, or set create_root = yes)" "$cmd" "$s"
  done
  [ ! -e "$tmp/$s" ] || bad "$s: the root was created without create_root"
done
st_expect_ds 0 "sync mk: ok" sync mk
st_check_converged "$tmp/store" "$tmp/deep/er/mk" "create_root = yes"
st_expect_ds 4 "server fil: target root $tmp/afile: Not a directory" sync fil
mkdir -p "$tmp/dsf" "$tmp/ro"
echo "not a folder" >"$tmp/dsf/.distsync"
st_expect_ds 4 "$tmp/dsf/.distsync: cannot prepare the state directory: Not a directory" sync dsf
if mount --bind "$tmp/ro" "$tmp/ro" 2>/dev/null && mount -o remount,bind,ro "$tmp/ro" 2>/dev/null; then
  st_expect_ds 4 "$tmp/ro/.distsync: cannot prepare the state directory: Read-only file system" sync ro
  umount "$tmp/ro"
else
  umount "$tmp/ro" 2>/dev/null
  echo "note: cannot bind-mount read-only here: the read-only root is not tested"
fi

printf '[console]\nstore = s\nstate = t\n[server a]\nurl = file:///x\ncreate_root = maybe\n' >"$tmp/bad.conf"
out=$("$DISTSYNC" -c "$tmp/bad.conf" config check 2>&1)
[[ "$out" == *"bad.conf:6: [server a] key 'create_root': expected yes or no, got 'maybe'"* ]] ||
  bad "create_root = maybe: $out"
st_exit target_root
