#!/usr/bin/env bash
# Targets in unknown or drifted states: files present before the first sync
# (identical ones are adopted without transfer, different ones replaced),
# files changed, replaced or deleted behind our back (status reports them
# read-only, sync repairs them), unknown extra files (reported, kept).
set -euo pipefail
: "${DISTSYNC:?}" "${DS_SRC:?}"
mkdir -p "${DS_TEST_TMP:-/tmp}"
tmp=$(mktemp -d "${DS_TEST_TMP:-/tmp}/sync_drift.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
unset DISTSYNC_CONFIG
export DISTSYNC_TEST_NO_FSYNC=1
fails=0
fail() {
  echo "FAIL: $*" >&2
  fails=$((fails + 1))
}
ds() { "$DISTSYNC" -c "$tmp/distsync.conf" "$@"; }
tree_sum() { (cd "$1" && find . -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum | sha256sum); }

# status_has JSON LIST PATH: PATH is in the server's LIST
status_has() {
  python3 -c 'import json,sys
d=json.load(open(sys.argv[1]))
assert isinstance(d, list) and d[0]["server"] == "t"
for k in ("missing","outdated","drifted","extra"):
    for e in d[0][k]:
        assert set(("path","class","size")) <= set(e), e
sys.exit(0 if sys.argv[3] in [e["path"] for e in d[0][sys.argv[2]]] else 1)' "$@"
}
# status_clean JSON: nothing missing, outdated or drifted
status_clean() {
  python3 -c 'import json,sys
d=json.load(open(sys.argv[1]))[0]
bad={k: d[k] for k in ("missing","outdated","drifted") if d[k]}
sys.exit(1 if bad else 0)' "$1"
}
wire() {
  python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["servers"][0]["bytes_wire"])' "$1"
}

store=$tmp/store
t=$tmp/t
if [ -x "$DS_SRC/tools/gen-content" ]; then
  "$DS_SRC/tools/gen-content" --seed 5 --scale 20M "$store" >/dev/null
else
  mkdir -p "$store/definitions" "$store/engines/e"
  for i in 1 2 3; do head -c 200000 /dev/urandom >"$store/definitions/d$i.dat"; done
  head -c 300000 /dev/urandom >"$store/engines/e/engine.bin"
fi
mkdir -p "$t" "$tmp/state"
cat >"$tmp/distsync.conf" <<EOF
[console]
store = $store
state = $tmp/state
[server t]
url = file://$t
transport = agent
agent = $DISTSYNC
EOF
ds scan >/dev/null

# Before any sync: one identical file (adopted), one different (replaced),
# one unknown extra file.
big=$(cd "$store" && find definitions engines -type f -size +100k | LC_ALL=C sort | head -1)
other=$(cd "$store" && find definitions engines -type f -size +100k | LC_ALL=C sort | sed -n 2p)
mkdir -p "$(dirname "$t/$big")" "$(dirname "$t/$other")"
cp "$store/$big" "$t/$big"
head -c 5000 /dev/urandom >"$t/$other"
echo "not ours" >"$t/definitions/local-note.txt"
ds plan t --json >"$tmp/plan0.json"
python3 - "$tmp/plan0.json" "$big" "$other" <<'EOF' || fail "plan before the first sync"
import json, sys
p = {it["path"]: it for it in json.load(open(sys.argv[1]))["items"]}
assert p[sys.argv[2]]["method"] == "adopt", p[sys.argv[2]]
assert p[sys.argv[3]]["action"] == "update", p[sys.argv[3]]
assert p["definitions/local-note.txt"]["action"] == "extra"
EOF
ds sync t --json >"$tmp/s0.json" || fail "first sync failed: $(cat "$tmp/s0.json")"
for c in definitions engines patches; do
  [ -d "$store/$c" ] || continue
  d=$(diff -r "$store/$c" "$t/$c" | grep -v "^Only in $t/definitions: local-note.txt" || true)
  [ -z "$d" ] || fail "after the first sync $c differs: $(head -3 <<<"$d")"
done
[ -f "$t/definitions/local-note.txt" ] || fail "an unknown file was removed without prune"

# Behind our back: change one file (same size), replace one with another
# version the console knows, delete one.
f1=$(cd "$store" && find engines definitions -type f -size +20k | LC_ALL=C sort | sed -n 3p)
f2=$(cd "$store" && find definitions -name '*.dat' | LC_ALL=C sort | tail -1)
f2src=$(cd "$store" && find definitions -name '*.dat' | LC_ALL=C sort | tail -2 | head -1)
f3=$(cd "$store" && find engines -type f | LC_ALL=C sort | head -1)
printf 'XXXX' | dd of="$t/$f1" bs=1 seek=100 conv=notrunc 2>/dev/null
touch -d '2020-01-01' "$t/$f1"
cp "$store/$f2src" "$t/$f2"
rm "$t/$f3"

before=$(tree_sum "$t")
rc=0
ds status t --json >"$tmp/st1.json" || rc=$?
[ "$rc" = 3 ] || fail "status of a drifted server exited $rc, not 3"
[ "$before" = "$(tree_sum "$t")" ] || fail "status wrote to the target"
status_has "$tmp/st1.json" drifted "$f1" || fail "status: $f1 not drifted: $(cat "$tmp/st1.json")"
status_has "$tmp/st1.json" drifted "$f2" || fail "status: $f2 not drifted"
status_has "$tmp/st1.json" missing "$f3" || fail "status: $f3 not missing"
status_has "$tmp/st1.json" extra definitions/local-note.txt || fail "status: local-note.txt not extra"
{ ds status t || true; } | grep -q "^status t: 1 missing" || fail "text status: $(ds status t | head -1)"
ds plan t --json >"$tmp/plan1.json"
python3 - "$tmp/plan1.json" "$f2" <<'EOF' || fail "drifted file to a known version: no delta from itself"
import json, sys
p = {it["path"]: it for it in json.load(open(sys.argv[1]))["items"]}
it = p[sys.argv[2]]
assert it["drifted"] and it["action"] == "update", it
assert it["method"] == "delta" and it["basis"] == sys.argv[2], it
EOF

python3 - "$tmp/plan1.json" "$f1" <<'EOF' || fail "drifted file to unknown bytes: not the rsync fallback"
import json, sys
p = {it["path"]: it for it in json.load(open(sys.argv[1]))["items"]}
it = p[sys.argv[2]]
assert it["drifted"] and it["method"] == "rsync" and it["basis"] == sys.argv[2], it
EOF

ds sync t --json >"$tmp/s1.json" || fail "repair sync failed: $(cat "$tmp/s1.json")"
# three small repairs: far less than the drifted files' size
size1=$(stat -c %s "$store/$f1")
[ "$(wire "$tmp/s1.json")" -lt $((size1 / 4)) ] || fail "repair sent $(wire "$tmp/s1.json") bytes"
for f in "$f1" "$f2" "$f3"; do
  cmp -s "$store/$f" "$t/$f" || fail "$f not repaired"
done
ds status t --json >"$tmp/st2.json"
status_clean "$tmp/st2.json" || fail "status after repair: $(cat "$tmp/st2.json")"
ds sync t --json >"$tmp/s2.json"
[ "$(wire "$tmp/s2.json")" -lt 4096 ] || fail "idle sync after repair sent $(wire "$tmp/s2.json") bytes"

# a status of a server that cannot be reached fails clearly
cat >>"$tmp/distsync.conf" <<EOF
[server gone]
url = file://$tmp/no-such-dir
EOF
rc=0
out=$(ds status gone 2>&1) || rc=$?
[ "$rc" = 4 ] && [[ "$out" == *"server gone"*"no-such-dir"* ]] || fail "status of a missing root: $rc $out"

[ "$fails" = 0 ] || exit 1
echo "sync_drift: ok"
