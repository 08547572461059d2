#!/usr/bin/env bash
# Issue 10: one selection for plan, sync, status, verify and history:
# SERVER..., --site S (repeatable), --all, --class C (repeatable). --class
# reaches the library: only that class is planned, sent, reported, verified
# and pruned (prune never deletes files of other classes). Unknown server,
# site or class: exit 2 naming it and listing the valid names (files
# --class too). history
# --server X stays as a deprecated alias.
set -uo pipefail
. "$DS_SRC/tests/func/lib/sync.bash"
st_init cli_select
export DISTSYNC_TEST_NO_FSYNC=1
ds() { "$DISTSYNC" -c "$tmp/c.conf" "$@"; }
count() { python3 -c 'import json,sys; print(len(json.load(sys.stdin)))'; }
mkdir -p "$tmp/state" "$tmp/a" "$tmp/b" "$tmp/c"
st_gen "$tmp/store" 0 "$tmp/known" --files 9 --max 16 >/dev/null
{
  printf '[console]\nstore = %s\nstate = %s\n\n[site paris]\n[site lyon]\n' "$tmp/store" "$tmp/state"
  for s in a:paris b:paris c:lyon; do
    printf '\n[server %s]\nurl = file://%s\nsite = %s\n' "${s%%:*}" "$tmp/${s%%:*}" "${s#*:}"
    printf 'classes = patches engines definitions\nprune = yes\n'
  done
} >"$tmp/c.conf"
ds scan >/dev/null 2>&1 || bad "scan failed"

# plan takes several servers and sites
n=$(ds plan a b --json 2>/dev/null | count)
[ "$n" = 2 ] || bad "plan a b: '$n' plans, want 2"
n=$(ds plan --site paris --json 2>/dev/null |
  python3 -c 'import json,sys; print(" ".join(p["server"] for p in json.load(sys.stdin)))')
[ "$n" = "a b" ] || bad "plan --site paris: '$n', want 'a b'"
n=$(ds plan --site paris --site lyon --json 2>/dev/null | count)
[ "$n" = 3 ] || bad "plan --site paris --site lyon: '$n' plans, want 3"

# sync --class: only that class arrives
ds sync --site lyon --class patches >/dev/null 2>&1 || bad "sync --site lyon --class patches failed"
[ -d "$tmp/c/patches" ] || bad "sync --class patches did not send patches"
[ ! -e "$tmp/c/engines" ] && [ ! -e "$tmp/c/definitions" ] ||
  bad "sync --class patches sent other classes: $(ls "$tmp/c")"
[ ! -e "$tmp/a/patches" ] || bad "sync --site lyon touched server a"

# status --class reports that class only; status --server works
# (exit 0 in sync, 6 work pending: both are a report)
ds status c --class engines --json >"$tmp/st.json" 2>"$tmp/err"
case $? in 0 | 6) ;; *) bad "status --class: $(cat "$tmp/err")" ;; esac
python3 - "$tmp/st.json" <<'PY' || bad "status --class engines reports other classes"
import json, sys
d = json.load(open(sys.argv[1]))[0]
classes = {i["class"] for k in ("missing", "outdated", "drifted", "extra", "unrecorded") for i in d[k]}
assert classes == {"engines"}, classes
assert d["counts"]["in_sync"] == 0, d["counts"]
PY
ds status --server c --class patches >"$tmp/st.txt" 2>&1
case $? in 0 | 6) ;; *) bad "status --server c: $(cat "$tmp/st.txt")" ;; esac
grep -q "^status c: 0 missing" "$tmp/st.txt" || bad "status --server c --class patches: $(cat "$tmp/st.txt")"

# prune never deletes files of classes not selected: a full sync of c, then
# the store loses an engines file; a --class patches sync must keep it
ds sync c >/dev/null 2>&1 || bad "sync c failed"
victim=$(cd "$tmp/store" && find engines -type f | sort | head -1)
rm "$tmp/store/$victim"
ds sync c --class patches --force >/dev/null 2>&1 || bad "sync c --class patches failed"
[ -e "$tmp/c/$victim" ] || bad "sync --class patches pruned $victim (class engines)"
ds sync c --class engines --force >/dev/null 2>&1 || bad "sync c --class engines failed"
[ ! -e "$tmp/c/$victim" ] || bad "sync --class engines did not prune $victim"

# verify --class: only that class's files are hashed
ds verify c --class definitions --json >"$tmp/v.json" 2>/dev/null || bad "verify --class definitions"
want=$(cd "$tmp/store" && find definitions -type f | wc -l)
got=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["servers"][0]["files"])' "$tmp/v.json")
[ "$got" = "$want" ] || bad "verify --class definitions: $got files, want $want"

# history: SERVER..., --site, --all, and the deprecated --server
n=$(ds history c --json | count)
[ "$n" = 5 ] || bad "history c: '$n' runs, want 5 (4 syncs, 1 verify)"
n=$(ds history --site paris --json | count)
[ "$n" = 0 ] || bad "history --site paris: '$n' runs, want 0"
n=$(ds history --server c --limit 2 --json | count)
[ "$n" = 2 ] || bad "history --server c --limit 2: '$n' runs, want 2"
n=$(ds history a c --limit 3 --json | count)
[ "$n" = 3 ] || bad "history a c --limit 3: '$n' runs, want 3"
ds history --server gone | grep -q "no runs recorded for server gone" || bad "history --server of a removed server"

# unknown names: exit 2, naming it and listing the valid ones
for cmd in plan sync status verify history; do
  st_expect_ds 2 "unknown server 'zz'" "$cmd" zz
  st_expect_ds 2 "valid: a, b, c" "$cmd" zz
  st_expect_ds 2 "unknown site 'mars' (not in $tmp/c.conf; valid: paris, lyon)" "$cmd" --site mars
done
for cmd in plan sync status verify; do
  st_expect_ds 2 "unknown class 'movies' (not in $tmp/c.conf; valid: patches, engines, definitions)" \
    "$cmd" --all --class movies
done
# files too (it listed nothing, exit 0, for a misspelt class)
st_expect_ds 2 "files: unknown class 'movies' (not in $tmp/c.conf; valid: patches, engines, definitions)" \
  files --class movies
st_expect_ds 2 "name a server, or use --site S or --all" sync
st_expect_ds 2 "--all takes no server names" plan --all a
st_exit cli_select
