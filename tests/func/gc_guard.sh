#!/usr/bin/env bash
# Retained-version gc never treats "unknown" as "unreferenced", through the
# CLI, with two servers (lyon: transport local, paris: agent):
# - both synced, then lyon alone to a newer generation (paris holds the old
#   versions, retained as its delta bases);
# - catalog.db truncated: gc before a scan keeps everything and says the
#   catalog has no completed scan; after a scan, `sync lyon` (which runs the
#   automatic collection) and `gc` keep every version paris holds, gc naming
#   paris and `gc --force`;
# - the next `sync paris` is a delta: its bytes on the wire are about those
#   of lyon's same update before the loss, not an rsync or whole-file send;
# - once both are synced again the versions nobody holds are freed;
# - a configured server never synced holds everything back until
#   `gc --force`; a server removed from the configuration pins nothing.
set -uo pipefail
. "$(dirname "$0")/lib/sync.bash"
st_init gc_guard
export DISTSYNC_TEST_NO_FSYNC=1
store=$tmp/store state=$tmp/state conf=$tmp/d.conf
mkdir -p "$tmp/lyon" "$tmp/paris" "$tmp/nantes"
# conf SERVER...: a config with these of lyon, paris, nantes.
conf() {
  printf '[console]\nstore = %s\nstate = %s\nmax_delete = 100%%\n' "$store" "$state" >"$conf"
  local s
  for s in "$@"; do
    printf '\n[server %s]\nurl = file://%s\nprune = yes\n' "$s" "$tmp/$s" >>"$conf"
    if [ "$s" = paris ]; then
      printf 'transport = agent\nagent = %s\n' "$DISTSYNC" >>"$conf"
    else
      printf 'transport = local\n' >>"$conf"
    fi
  done
}
ds() { "$DISTSYNC" -c "$conf" "$@"; }
# run WHAT ARGS...: output in $tmp/out and $tmp/err, status in $rc.
run() {
  cur=$1
  shift
  ds "$@" >"$tmp/out" 2>"$tmp/err"
  rc=$?
  [ "$rc" = 0 ] || bad "$cur: exit $rc: $(head -c 600 "$tmp/out" "$tmp/err")"
}
expect_err() { grep -qF -- "$1" "$tmp/err" || bad "$cur: no '$1' on stderr: $(head -c 600 "$tmp/err")"; }
# json KEY: a top-level field of the gc --json report in $tmp/out.
json() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1])).get(sys.argv[2], "absent"))' "$tmp/out" "$1" 2>/dev/null; }
# wire SERVER: bytes on the wire of SERVER's run in the sync --json in $tmp/out.
wire() {
  python3 -c 'import json,sys; print([s for s in json.load(open(sys.argv[1]))["servers"] if s["server"] == sys.argv[2]][0]["bytes_wire"])' \
    "$tmp/out" "$1"
}
# retained TARGET WHAT: every version TARGET holds is in the retain store.
retained() {
  python3 - "$1" "$state/retain/retain.db" "$2" <<'PY' || fail=1
import hashlib, os, sqlite3, sys
root, db, what = sys.argv[1:]
held = set()
for r, ds, fs in os.walk(root):
    ds[:] = [d for d in ds if d != ".distsync"]
    for f in fs:
        held.add(hashlib.sha256(open(os.path.join(r, f), "rb").read()).digest())
con = sqlite3.connect(db)
have = {row[0] for row in con.execute("SELECT sha256 FROM version")}
missing = held - have
if missing or not held:
    print(f"FAIL: {what}: {len(missing)} of the {len(held)} versions on {root} are no longer retained",
          file=sys.stderr)
    sys.exit(1)
PY
}

conf lyon paris
st_gen "$store" 0 "$tmp/known" --files 12 --max 512 || bad "mkstore 0"
run "first sync" sync lyon paris
st_gen "$store" 1 "$tmp/known" || bad "mkstore 1"
run "lyon to gen 1" sync --json lyon
lyon_wire=$(wire lyon)
st_check_converged "$store" "$tmp/lyon" "lyon, gen 1"
retained "$tmp/paris" "before the loss"

# The catalog is lost.
: >"$state/catalog.db"
rm -f "$state/catalog.db-wal" "$state/catalog.db-shm"
run "gc, unscanned catalog" gc --json
expect_err "gc: kept everything: the catalog has no completed scan; servers lyon, paris have no known manifest"
expect_err "or gc --force"
[ "$(json kept_all)" = True ] || bad "$cur: kept_all is $(json kept_all)"
[ "$(json freed_versions)" = 0 ] || bad "$cur: freed $(json freed_versions) versions"
run "scan" scan
run "sync lyon after the loss" sync --json lyon
expect_err "retained versions: nothing collected: server paris has no known manifest"
retained "$tmp/paris" "after sync lyon (its automatic gc)"
run "gc after the loss" gc --json
expect_err "gc: kept everything: server paris has no known manifest (sync it first, or gc --force)"
[ "$(json kept_all)" = True ] || bad "$cur: kept_all is $(json kept_all)"
[ "$(json unknown_servers)" = 1 ] || bad "$cur: unknown_servers is $(json unknown_servers)"
[ "$(json freed_versions)" = 0 ] || bad "$cur: freed $(json freed_versions) versions"
retained "$tmp/paris" "after gc"
kept_n=$(json retained_versions)
run "gc (text) after the loss" gc
grep -q "freed bytes: *0 B (kept everything" "$tmp/out" || bad "$cur: $(cat "$tmp/out")"

# paris's update is a delta from its retained versions.
run "sync paris after the loss" sync --json paris
paris_wire=$(wire paris)
st_check_converged "$store" "$tmp/paris" "paris after the loss"
echo "gen 0 -> 1 on the wire: lyon before the loss $lyon_wire B, paris after it $paris_wire B"
[ "$paris_wire" -le $((lyon_wire + lyon_wire / 4 + 8192)) ] ||
  bad "paris sent $paris_wire B on the wire for the update lyon got in $lyon_wire B: no delta"

# Both manifests known: the collection after that sync freed the gen 0
# versions.
run "gc, all known" gc --json
[ "$(json kept_all)" = False ] || bad "$cur: kept_all is $(json kept_all)"
[ "$(json retained_versions)" -lt "$kept_n" ] || bad "$cur: still $kept_n versions retained"
retained "$tmp/lyon" "$cur (lyon)"
retained "$tmp/paris" "$cur (paris)"

# A configured server never synced holds everything back; --force frees.
st_gen "$store" 2 "$tmp/known" || bad "mkstore 2"
run "lyon to gen 2" sync lyon
conf lyon paris nantes
run "gc, nantes never synced" gc --json
expect_err "gc: kept everything: server nantes has no known manifest"
[ "$(json freed_versions)" = 0 ] || bad "$cur: freed $(json freed_versions) versions"
run "gc --force" gc --force --json
[ "$(json kept_all)" = False ] || bad "$cur: kept_all is $(json kept_all)"
retained "$tmp/paris" "$cur (paris, gen 1)"
retained "$tmp/lyon" "$cur (lyon, gen 2)"
# Removed from the configuration, paris no longer pins its gen 1 versions.
conf lyon
run "gc, paris removed" gc --json
[ "$(json freed_versions)" -gt 0 ] || bad "$cur: paris's versions still kept: $(cat "$tmp/out")"
retained "$tmp/lyon" "$cur (lyon)"
st_exit gc_guard
