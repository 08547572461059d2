#!/usr/bin/env bash
# Issue 7 item 9: a catalog that cannot be written makes every command that
# writes it (scan, sync and its scan, gc --keep-history) exit non-zero with a message
# naming the catalog and the reason; sync then does nothing on the target
# (no unrecorded run). Read-only commands (status --no-scan, history, files) still
# work. Cases: chattr +i (when the file system supports it, as root) and a
# 0444 catalog (as 'nobody' when root). (A read-only state directory alone
# is not a read-only catalog: SQLite keeps writing its existing WAL there.)
# Then writes that fail mid-run (faults injected with SQLite triggers on the
# real catalog): a file event, the run's end. Each fails the sync (exit 1).
set -uo pipefail
. "$(dirname "$0")/lib/sync.bash"
as_nobody=(setpriv --reuid=nobody --regid=nogroup --clear-groups)
# 'nobody' must reach the test directory and the binary (a private build
# tree: fall back to /tmp and a copy of the binary)
if [ "$(id -u)" = 0 ] && ! "${as_nobody[@]}" test -x "${DS_TEST_TMP:-/tmp}" 2>/dev/null; then
  DS_TEST_TMP=/tmp
fi
st_init catalog_readonly
if [ "$(id -u)" = 0 ] && ! "${as_nobody[@]}" test -x "$DISTSYNC" 2>/dev/null; then
  cp "$DISTSYNC" "$tmp/distsync" && DISTSYNC=$tmp/distsync
fi
chmod 755 "$tmp"
cat=$tmp/state/catalog.db
trap 'umount "$tmp/state" 2>/dev/null; chattr -i "$cat" 2>/dev/null; chmod -R u+w "$tmp" 2>/dev/null; st_cleanup; [ "${KEEP:-0}" = 1 ] || rm -rf "$tmp"' EXIT
store=$tmp/store
st_conf "$tmp/d.conf" "$store" "$tmp/state" one "file://$tmp/t1" agent
mkdir -p "$tmp/t1" "$store/patches" "$store/engines" "$store/definitions"
echo a >"$store/patches/a.msu"
echo e >"$store/engines/e.bin"
echo d >"$store/definitions/d.dat"
as_user=()
if [ "$(id -u)" = 0 ]; then
  chown -R nobody:nogroup "$tmp"
  as_user=("${as_nobody[@]}")
fi
"${as_user[@]}" test -w "$tmp/t1" || { bad "$tmp is not writable as nobody"; st_exit catalog_readonly; }
ds() { "${as_user[@]}" "$DISTSYNC" -c "$tmp/d.conf" "$@"; }
ds scan >/dev/null 2>&1 || bad "first scan"
ds sync one >/dev/null 2>&1 || bad "first sync"
echo b >"$store/patches/b.msu" # a change: scan and sync have something to write
chown -R --reference="$store/patches/a.msu" "$store/patches/b.msu"

# expect_fail CASE REASON CMD...: CMD exits non-zero and names the catalog and REASON.
expect_fail() {
  local what=$1 reason=$2
  shift 2
  "$@" >"$tmp/out" 2>"$tmp/err"
  local rc=$?
  [ $rc != 0 ] || bad "$what: '$*' exited 0"
  cat "$tmp/out" "$tmp/err" | grep -F "$cat" | grep -q "$reason" ||
    bad "$what: '$*' does not name $cat and '$reason': $(cat "$tmp/out" "$tmp/err" | head -c 400)"
}
# check CASE REASON: every writer fails, readers work, the target is untouched.
check() {
  local what=$1 reason=$2
  expect_fail "$what" "$reason" ds scan
  expect_fail "$what" "$reason" ds sync one          # its scan cannot record the store
  expect_fail "$what" "$reason" ds sync one --no-scan # the run cannot be recorded
  expect_fail "$what" "$reason" ds sync one --no-scan --json
  expect_fail "$what" "$reason" ds gc --keep-history 0
  [ -e "$tmp/t1/patches/b.msu" ] && bad "$what: sync wrote the target without recording the run"
  ds status --no-scan >/dev/null 2>&1 || bad "$what: status --no-scan failed on a read-only catalog"
  ds history >/dev/null 2>&1 || bad "$what: history failed on a read-only catalog"
  ds files >/dev/null 2>&1 || bad "$what: files failed on a read-only catalog"
}

if [ "$(id -u)" = 0 ] && chattr +i "$cat" 2>/dev/null; then
  check "chattr +i" "Operation not permitted"
  chattr -i "$cat"
else
  echo "note: chattr +i not available here; testing the other cases only"
fi
chmod 0444 "$cat" # the commands run as nobody (or as a non-root caller): not writable
check "chmod 0444" "Permission denied"
chmod 0444 "$cat-wal" "$cat-shm" 2>/dev/null # SQLite creates them with the file's mode
chmod 0644 "$cat"
expect_fail "0444 -shm left by a read-only open" "$cat-shm\|Permission denied" ds scan
chmod 0644 "$cat" "$cat-wal" "$cat-shm" 2>/dev/null
# A write that fails in the middle of a run (faults injected with SQLite
# triggers, as the catalog's owner): the sync still exits 1, naming the
# catalog and what could not be recorded.
inject() {
  python3 -c 'import sqlite3, sys
c = sqlite3.connect(sys.argv[1])
c.executescript(sys.argv[2])
c.close()' "$cat" "$1" || bad "cannot inject: $1"
  [ "$(id -u)" != 0 ] || chown -R nobody:nogroup "$tmp/state"
}
ds scan >/dev/null 2>&1 || bad "scan before the injected faults"
inject "CREATE TRIGGER no_file_event BEFORE INSERT ON event WHEN NEW.kind = 'file'
        BEGIN SELECT RAISE(ABORT, 'injected fault'); END;"
expect_fail "a file event cannot be recorded" "cannot record the run (an event)" ds sync one
[ -e "$tmp/t1/patches/b.msu" ] || bad "the file did not ship while only its event failed"
inject "DROP TRIGGER no_file_event;
        CREATE TRIGGER no_end BEFORE UPDATE OF status ON run WHEN NEW.status <> 'running'
        BEGIN SELECT RAISE(ABORT, 'injected fault'); END;"
echo c >"$store/patches/c.msu"
chown --reference="$store/patches/a.msu" "$store/patches/c.msu"
ds scan >/dev/null 2>&1 || bad "scan before the end fault"
expect_fail "the run's end cannot be recorded" "cannot record the run (ending it)" ds sync one
inject "DROP TRIGGER no_end;"

# writable again: everything works and the change ships
ds scan >/dev/null 2>"$tmp/err" || bad "scan after the catalog is writable again: $(cat "$tmp/err")"
ds sync one >/dev/null 2>"$tmp/err" || bad "sync after the catalog is writable again: $(cat "$tmp/err")"
[ -e "$tmp/t1/patches/b.msu" ] || bad "the change did not ship once the catalog was writable"

# A read-only mount of the state directory (when we may mount): SQLite cannot
# make the WAL's files and said only "unable to open database file".
if [ "$(id -u)" = 0 ] && mount --bind "$tmp/state" "$tmp/state" 2>/dev/null &&
  mount -o remount,bind,ro "$tmp/state" 2>/dev/null; then
  for cmd in "status --no-scan" "sync one --no-scan" history; do
    # shellcheck disable=SC2086 # the command's words
    expect_fail "read-only mount" "unable to open database file: Read-only file system" ds $cmd
  done
  umount "$tmp/state"
else
  umount "$tmp/state" 2>/dev/null
  echo "note: cannot bind-mount read-only here: the read-only mount is not tested"
fi
st_exit catalog_readonly
