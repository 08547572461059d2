#!/usr/bin/env bash
# sync, plan and status scan the store first (issue 7, item 2): a file added
# to or changed in the store after the last `distsync scan` is shipped by
# `sync` and reported by `status` and `plan`; a file removed is pruned; a
# server added later gets the store as it is now, not "changed since the
# last scan". --no-scan uses the catalog as it is. A store that did not
# change is not reported as scanned.
set -uo pipefail
. "$(dirname "$0")/lib/sync.bash"
st_init sync_autoscan
export DISTSYNC_TEST_NO_FSYNC=1
store=$tmp/store
conf=$tmp/d.conf
printf '[console]\nstore = %s\nstate = %s\n' "$store" "$tmp/state" >"$conf"
printf '[server a]\nurl = file://%s\ntransport = agent\nagent = %s\nprune = yes\n' \
  "$tmp/ta" "$DISTSYNC" >>"$conf"
ds() { "$DISTSYNC" -c "$conf" "$@"; }
run() {
  local what=$1
  shift
  ds "$@" >"$tmp/out" 2>"$tmp/err"
  rc=$?
  cur=$what
}
expect_rc() { [ "$rc" = "$1" ] || bad "$cur: exit $rc, expected $1: $(head -c 600 "$tmp/out" "$tmp/err")"; }
expect_out() { grep -qF -- "$1" "$tmp/out" || bad "$cur: no '$1' on stdout: $(head -c 600 "$tmp/out")"; }
expect_err() { grep -qF -- "$1" "$tmp/err" || bad "$cur: no '$1' on stderr: $(head -c 600 "$tmp/err")"; }
no_err() { ! grep -qF -- "$1" "$tmp/err" || bad "$cur: unexpected '$1' on stderr: $(head -c 600 "$tmp/err")"; }

mkdir -p "$store/patches" "$store/engines" "$store/definitions" "$tmp/ta" "$tmp/tb"
# 12 files: one deletion stays within the default max_delete (10%)
for i in $(seq 1 10); do head -c 4000 /dev/urandom >"$store/patches/p$i.msu"; done
head -c 4000 /dev/urandom >"$store/engines/e.bin"
head -c 4000 /dev/urandom >"$store/definitions/d0.dat"
ds scan >/dev/null 2>&1 || bad "scan"
run "first sync" sync a
expect_rc 0
st_check_converged "$store" "$tmp/ta" "first sync"

# nothing changed: the scan is quiet
run "unchanged: status" status a
expect_rc 0
expect_out "status a: 0 missing (0 B), 0 outdated (0 B), 0 drifted (0 B), 0 unrecorded (0 B), 0 extra (0 B), 12 in sync, 12 files"
no_err "scan:"

# a file added to the store: status sees it, sync ships it
head -c 3000 /dev/urandom >"$store/patches/new1.msu"
run "added: status" status a
expect_rc 6 # work pending
expect_out "status a: 1 missing"
expect_out "missing  patches  patches/new1.msu"
expect_err "scan: 1 new, 0 changed, 0 removed"
run "added: sync" sync a
expect_rc 0
expect_out "sync a: ok, 1 files (1 new, 0 updated, 0 deleted)"
st_check_converged "$store" "$tmp/ta" "added, sync"

# changed and removed, seen by plan then applied by sync
head -c 4000 /dev/urandom >"$store/engines/e.bin"
rm "$store/patches/p1.msu"
run "changed: plan" plan a
expect_rc 0
expect_out "plan a: 0 to create, 1 to update, 1 to delete"
run "changed: sync" sync a
expect_rc 0
expect_out "sync a: ok, 2 files (0 new, 1 updated, 1 deleted)"
st_check_converged "$store" "$tmp/ta" "changed, sync"

# a server added later gets the store as it is now
head -c 3000 /dev/urandom >"$store/definitions/d.dat"
printf '[server b]\nurl = file://%s\nprune = yes\n' "$tmp/tb" >>"$conf"
run "new server: sync" sync b
expect_rc 0
no_err "changed since the last scan"
expect_out "sync b: ok, 13 files (13 new"
st_check_converged "$store" "$tmp/tb" "new server"
run "sync a" sync a
expect_out "sync a: ok, 1 files (1 new"

# --no-scan: the catalog as it is
head -c 3000 /dev/urandom >"$store/patches/new2.msu"
run "--no-scan: status" status --no-scan a
expect_out "status a: 0 missing"
run "--no-scan: plan" plan --no-scan a
expect_out "plan a: 0 to create"
run "--no-scan: sync" sync --no-scan a
expect_rc 0
no_err "scan:"
[ ! -e "$tmp/ta/patches/new2.msu" ] || bad "--no-scan: new2.msu was shipped"
run "then sync" sync a
expect_out "1 new"
[ -e "$tmp/ta/patches/new2.msu" ] || bad "sync: new2.msu was not shipped"

# a scan that cannot run stops the command (and --no-scan still works)
mv "$store" "$tmp/store.away"
run "no store: sync" sync a
expect_rc 1
expect_err "scan of $store failed"
run "no store: sync --no-scan" sync --no-scan a
expect_rc 0

st_exit sync_autoscan
