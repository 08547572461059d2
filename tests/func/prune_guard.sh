#!/usr/bin/env bash
# Prune never wipes a server by mistake (issue 7, item 1), through the CLI,
# on two prune = yes servers (transport local and agent):
# - catalog.db truncated to 0 bytes, then `sync` before any scan: the
#   server keeps every file; with --no-scan the deletions are held back
#   (exit 25, the reason named); every command warns about the catalog,
#   naming it and "run distsync scan", until a scan completes;
# - `state` pointed at a fresh directory: the same;
# - the store emptied: nothing is deleted;
# - a class folder missing from the store (renamed, unmounted), seen by a
#   catalog that never knew its files: its files are not deleted, even with
#   --force;
# - max_delete: 10% by default, a percentage or a count; over it, sync
#   ships the rest, deletes nothing, names the numbers and exits 25;
#   --force deletes; a bad value is a config error naming file:line:key.
set -uo pipefail
. "$(dirname "$0")/lib/sync.bash"
st_init prune_guard
export DISTSYNC_TEST_NO_FSYNC=1
store=$tmp/store
conf=$tmp/d.conf

# conf STATE [CONSOLE_EXTRA [SERVER_EXTRA]]: two prune = yes servers.
conf() {
  printf '[console]\nstore = %s\nstate = %s\n%s\n' "$store" "$1" "${2:-}" >"$conf"
  printf '[server loc]\nurl = file://%s\ntransport = local\nprune = yes\n%s\n' "$tmp/tl" "${3:-}" >>"$conf"
  printf '[server ag]\nurl = file://%s\ntransport = agent\nagent = %s\nprune = yes\n%s\n' \
    "$tmp/ta" "$DISTSYNC" "${3:-}" >>"$conf"
}
ds() { "$DISTSYNC" -c "$conf" "$@"; }

# run WHAT ARGS...: runs ds, output in $tmp/out and $tmp/err, status in $rc.
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

# count TARGET: the content files on a target.
count() { find "$1" -path "$1/.distsync" -prune -o -type f -print | wc -l; }
# snapshot, then kept WHAT: both targets still hold every file they held
# at the snapshot.
snapshot() { st_list "$tmp/tl" "$tmp/before.loc"; st_list "$tmp/ta" "$tmp/before.ag"; }
kept() {
  st_list "$tmp/tl" "$tmp/now.loc"
  st_list "$tmp/ta" "$tmp/now.ag"
  local t lost
  for t in loc ag; do
    lost=$(comm -23 "$tmp/before.$t" "$tmp/now.$t")
    [ -z "$lost" ] || bad "$1: server $t lost $(echo "$lost" | wc -l) files: $(echo "$lost" | head -3 | tr '\n' ' ')"
  done
}

# 40 files: 20 patches, 10 engines, 10 definitions
mkdir -p "$store/patches/kb" "$store/engines" "$store/definitions" "$tmp/tl" "$tmp/ta"
for i in $(seq -w 1 20); do head -c 3000 /dev/urandom >"$store/patches/kb/p$i.msu"; done
for i in $(seq -w 1 10); do head -c 2000 /dev/urandom >"$store/engines/e$i.bin"; done
for i in $(seq -w 1 10); do head -c 1000 /dev/urandom >"$store/definitions/d$i.dat"; done
conf "$tmp/state"
ds scan >/dev/null 2>&1 || bad "first scan"
run "first sync" sync loc ag
expect_rc 0
st_check_converged "$store" "$tmp/tl" "first sync (loc)"
st_check_converged "$store" "$tmp/ta" "first sync (ag)"
[ "$(count "$tmp/tl")" = 40 ] || bad "first sync: loc holds $(count "$tmp/tl") files, expected 40"
snapshot

# 1. catalog.db truncated to 0 bytes
: >"$tmp/state/catalog.db"
rm -f "$tmp/state/catalog.db-wal" "$tmp/state/catalog.db-shm"
run "truncated catalog: status --no-scan" status --no-scan loc
expect_err "catalog $tmp/state/catalog.db has no completed scan"
expect_err "run distsync scan"
run "truncated catalog: history" history
expect_err "catalog $tmp/state/catalog.db has no completed scan"
run "truncated catalog: plan --no-scan" plan --no-scan loc
expect_rc 0
expect_out "0 to delete"
expect_err "40 deletions held back: the catalog has no completed scan"
run "truncated catalog: sync --no-scan" sync --no-scan loc ag
expect_rc 25
expect_out "sync loc: DELETIONS HELD"
expect_out "0 deleted"
expect_out "server ag: 40 deletions held back: the catalog has no completed scan (run distsync scan)"
expect_err "catalog $tmp/state/catalog.db has no completed scan"
kept "truncated catalog, sync --no-scan"
run "truncated catalog: sync --no-scan --force" sync --no-scan --force loc ag
expect_rc 25 # --force never overrides a missing scan
kept "truncated catalog, sync --no-scan --force"
# the reported scenario: sync before any scan
run "truncated catalog: sync" sync loc ag
expect_rc 0
expect_out "sync loc: ok, 0 files"
expect_out "sync ag: ok, 0 files"
expect_err "40 new, 0 changed, 0 removed"
kept "truncated catalog, sync"
# the scan completed: no more warnings
run "after the scan: status" status loc ag
expect_rc 0
no_err "no completed scan"
expect_out "status loc: 0 missing (0 B), 0 outdated (0 B), 0 drifted (0 B), 0 unrecorded (0 B), 0 extra (0 B), 40 in sync, 40 files"

# 2. state pointed at a fresh directory
conf "$tmp/state2"
run "fresh state: sync --no-scan" sync --no-scan loc ag
expect_rc 25
expect_err "catalog $tmp/state2/catalog.db has no completed scan"
expect_out "40 deletions held back"
kept "fresh state, sync --no-scan"
run "fresh state: files" files
expect_err "catalog $tmp/state2/catalog.db has no completed scan"
run "fresh state: sync" sync loc ag
expect_rc 0
expect_out "0 deleted"
kept "fresh state, sync"

# 3. the store emptied (its class folders still there): a scan completes
# with no file
conf "$tmp/state3"
ds scan >/dev/null 2>&1 || bad "scan (state3)"
mv "$store" "$tmp/store.away"
mkdir -p "$store/patches" "$store/engines" "$store/definitions"
run "empty store: sync" sync loc ag
expect_rc 25
expect_out "40 deletions held back: the catalog holds no file of this server's classes"
kept "empty store"
rm -r "$store"
mv "$tmp/store.away" "$store"

# 3b. the red team's case: the catalog lost, then a class folder renamed
# (definitions: 10 of 40 files is under no limit when max_delete allows it)
conf "$tmp/state4" "" "max_delete = 100%"
mv "$store/definitions" "$store/definitions.renamed"
run "lost catalog, class folder renamed: sync" sync loc ag
expect_rc 25
expect_out "10 deletions held back: class 'definitions' has no folder in the store"
kept "lost catalog, class folder renamed"
run "class folder renamed: sync --force" sync --force loc ag
expect_rc 25
kept "class folder renamed, --force"
mv "$store/definitions.renamed" "$store/definitions"

# 4. max_delete, default 10%: 5 of 40 files leave the store, one arrives
conf "$tmp/state"
rm "$store"/patches/kb/p0[1-5].msu
head -c 500 /dev/urandom >"$store/patches/kb/new.msu"
run "default max_delete: sync" sync loc ag
expect_rc 25
expect_out "sync loc: DELETIONS HELD, 1 files (1 new, 0 updated, 0 deleted)"
expect_out "server loc: would delete 5 of 40 files (12%), over max_delete 10%; rerun with --force to allow"
expect_out "server ag: would delete 5 of 40 files (12%), over max_delete 10%"
[ -f "$tmp/tl/patches/kb/new.msu" ] || bad "default max_delete: the new file was not shipped to loc"
[ -f "$tmp/ta/patches/kb/new.msu" ] || bad "default max_delete: the new file was not shipped to ag"
kept "over max_delete"
run "default max_delete: plan" plan ag
expect_out "0 to delete"
expect_out "  held   patches/kb/p01.msu"
expect_err "server ag: would delete 5 of 41 files (12%), over max_delete 10%"
run "default max_delete: sync --json" sync --json ag
expect_rc 25
python3 -c 'import json,sys; s=json.load(open(sys.argv[1]))["servers"][0]; assert s["status"]=="held" and "would delete 5 of 41" in s["error"], s' \
  "$tmp/out" || bad "sync --json: no held status"
run "history names the limit" history --server ag --limit 1
expect_out "would delete 5 of 41 files"

# 5. a percentage that allows it
conf "$tmp/state" "" "max_delete = 15%"
run "max_delete 15%: sync" sync loc
expect_rc 0
expect_out "sync loc: ok, 5 files (0 new, 0 updated, 5 deleted)"
[ "$(count "$tmp/tl")" = 36 ] || bad "max_delete 15%: loc holds $(count "$tmp/tl") files, expected 36"
st_check_converged "$store" "$tmp/tl" "max_delete 15% (loc)"

# 6. --force past the limit
conf "$tmp/state"
run "--force" sync --force ag
expect_rc 0
expect_out "sync ag: ok, 5 files (0 new, 0 updated, 5 deleted)"
st_check_converged "$store" "$tmp/ta" "--force (ag)"

# 7. a count, from [console], and a server's own value over it
snapshot
rm "$store"/engines/e0[1-3].bin
conf "$tmp/state" "max_delete = 2"
run "max_delete 2: sync" sync loc ag
expect_rc 25
expect_out "server loc: would delete 3 of 36 files (8.3%), over max_delete 2; rerun with --force to allow"
kept "max_delete 2"
conf "$tmp/state" "max_delete = 2" "max_delete = 3"
run "max_delete 3 on the servers: sync" sync loc ag
expect_rc 0
expect_out "sync ag: ok, 3 files (0 new, 0 updated, 3 deleted)"
st_check_converged "$store" "$tmp/tl" "max_delete 3 (loc)"
st_check_converged "$store" "$tmp/ta" "max_delete 3 (ag)"

# 8. bad values: file:line:key
for v in "10 percent" "-1" "101%" "1.5"; do
  conf "$tmp/state" "" "max_delete = $v"
  run "max_delete = $v" sync loc
  expect_rc 2
  expect_err "$conf:9: [server loc] key 'max_delete': expected a number of files"
done

st_exit prune_guard
