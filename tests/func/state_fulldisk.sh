#!/usr/bin/env bash
# A full state disk (the catalog's): scan and sync fail with the real error
# ("database or disk is full" / "No space left on device") and no spurious
# "ROLLBACK: cannot rollback - no transaction is active" line (SQLite had
# already rolled the transaction back). After space is freed, a scan works
# again; on a disk full to the last block the catalog's open says "No
# space left on device". Skips (77) when tmpfs cannot be mounted (not root).
set -uo pipefail
. "$(dirname "$0")/lib/sync.bash"
st_init state_fulldisk
state=$tmp/state
mkdir -p "$state" "$tmp/t" "$tmp/store/patches"
if ! mount -t tmpfs -o size=2m distsync-test-state "$state" 2>"$tmp/merr"; then
  echo "SKIP: state_fulldisk: cannot mount a tmpfs: $(cat "$tmp/merr")"
  exit 77
fi
trap 'st_cleanup; umount "$state" 2>/dev/null; [ "${KEEP:-0}" = 1 ] || rm -rf "$tmp"' EXIT
for i in $(seq 10); do head -c 2000 /dev/urandom >"$tmp/store/patches/a$i"; done
st_conf "$tmp/c.conf" "$tmp/store" "$state" s "file://$tmp/t" local
ds() { "$DISTSYNC" -c "$tmp/c.conf" "$@"; }
ds scan >/dev/null 2>"$tmp/err" || bad "the first scan: $(cat "$tmp/err")"
# the disk full but for 96 KiB: the catalog opens (its -shm and -wal), the
# scan's transaction does not fit
avail=$(df --output=avail -k "$state" | tail -1)
head -c $(((avail - 96) * 1024)) /dev/zero >"$state/fill"
for i in $(seq 200); do head -c 2000 /dev/urandom >"$tmp/store/patches/b$i"; done

for cmd in scan "sync s"; do
  rc=0
  # shellcheck disable=SC2086
  ds $cmd >"$tmp/out" 2>"$tmp/err" || rc=$?
  [ "$rc" != 0 ] || bad "$cmd on a full state disk: exit 0"
  grep -Eq "disk is full|No space left on device" "$tmp/err" || bad "$cmd does not say the disk is full: $(cat "$tmp/err")"
  grep -q "ROLLBACK\|no transaction is active" "$tmp/err" && bad "$cmd logs a spurious ROLLBACK: $(cat "$tmp/err")"
done
# full to the last block: the catalog cannot even open (its -shm): the
# error says why ("disk I/O error" alone did not)
head -c 10M /dev/zero >"$state/fill2" 2>/dev/null
rc=0
ds scan >"$tmp/out" 2>"$tmp/err" || rc=$?
[ "$rc" != 0 ] || bad "scan on a state disk full to the last block: exit 0"
grep -q "No space left on device" "$tmp/err" || bad "scan on a full state disk does not say why: $(cat "$tmp/err")"
rm -f "$state/fill" "$state/fill2"
ds scan >/dev/null 2>"$tmp/err" || bad "a scan after freeing space: $(cat "$tmp/err")"
st_exit state_fulldisk
