#!/usr/bin/env bash
# distsync sync end to end on file:// targets: one in-process (transport =
# local), one through `distsync agent` over pipes (transport = agent, prune).
# After each sync the targets equal the store's classes byte for byte; after
# `gen-content --next` the plan names delta bases and the sync moves about
# the changed bytes; a second sync moves ~0 bytes; a held lease is refused
# with the holder's name.
set -euo pipefail
: "${DISTSYNC:?}" "${DS_SRC:?}"
mkdir -p "${DS_TEST_TMP:-/tmp}"
tmp=$(mktemp -d "${DS_TEST_TMP:-/tmp}/sync_basic.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
unset DISTSYNC_CONFIG
export DISTSYNC_TEST_NO_FSYNC=1
fails=0
fail() {
  echo "FAIL: $*" >&2
  fails=$((fails + 1))
}
classes="patches engines definitions"
ds() { "$DISTSYNC" -c "$tmp/distsync.conf" "$@"; }

# same: the target holds exactly the store's classes; with "loose", files
# only on the target (no prune) are allowed.
same() {
  local t=$1 mode=${2:-exact} out
  for c in $classes; do
    [ -d "$tmp/store/$c" ] || continue
    out=$(diff -r "$tmp/store/$c" "$t/$c" 2>&1 || true)
    if [ "$mode" = loose ]; then
      out=$(grep -v "^Only in $t/" <<<"$out" || true)
    fi
    [ -z "$out" ] || fail "$t/$c differs from the store: $(head -5 <<<"$out")"
  done
  [ -z "$(ls -A "$t/.distsync/tmp" 2>/dev/null)" ] || fail "$t/.distsync/tmp not empty"
  [ ! -e "$t/.distsync/lease" ] || fail "$t/.distsync/lease left behind"
}

# field FILE SERVER KEY: a number from `sync --json` output
field() {
  python3 -c 'import json,sys
d=json.load(open(sys.argv[1]))
print([s for s in d["servers"] if s["server"]==sys.argv[2]][0][sys.argv[3]])' "$@"
}

gen=$DS_SRC/tools/gen-content
if [ -x "$gen" ]; then
  "$gen" --seed 11 --scale small "$tmp/store" >/dev/null
else
  for c in $classes; do
    mkdir -p "$tmp/store/$c/sub"
    head -c 300000 /dev/urandom >"$tmp/store/$c/sub/a.bin"
    head -c 1000 /dev/urandom >"$tmp/store/$c/b.txt"
  done
fi
mkdir -p "$tmp/ta" "$tmp/tb" "$tmp/state"
cat >"$tmp/distsync.conf" <<EOF
[console]
store = $tmp/store
state = $tmp/state
[server a]
url = file://$tmp/ta
[server b]
url = file://$tmp/tb
transport = agent
agent = $DISTSYNC
prune = yes
EOF

ds scan >/dev/null
ds sync a b >"$tmp/out1" || fail "first sync failed: $(cat "$tmp/out1")"
grep -q "^sync a: ok" "$tmp/out1" || fail "no ok summary for a: $(cat "$tmp/out1")"
grep -q "^sync b: ok" "$tmp/out1" || fail "no ok summary for b: $(cat "$tmp/out1")"
same "$tmp/ta"
same "$tmp/tb"
[ -s "$tmp/ta/.distsync/manifest" ] || fail "no manifest on target a"

# the next version: plan shows updates with bases, sync moves ~changed bytes
if [ -x "$gen" ]; then
  changed=$("$gen" --next "$tmp/store" | sed -n 's/.*changed_bytes=\([0-9]*\).*/\1/p')
else
  printf 'x' | dd of="$tmp/store/engines/sub/a.bin" bs=1 seek=1000 conv=notrunc 2>/dev/null
  changed=1
fi
ds scan >/dev/null
ds plan a --json >"$tmp/plan.json"
python3 - "$tmp/plan.json" <<'EOF' || fail "plan --json: no delta with a basis, or bad shape"
import json, sys
p = json.load(open(sys.argv[1]))
assert p["server"] == "a"
for it in p["items"]:
    for k in ("action", "path", "class", "size", "basis", "method", "est_bytes"):
        assert k in it, k
    assert it["action"] in ("create", "update", "delete", "keep", "extra")
deltas = [it for it in p["items"] if it["method"] == "delta"]
assert deltas and all(it["basis"] for it in deltas), deltas
assert p["totals"]["update"] + p["totals"]["create"] > 0
EOF
ds plan a | grep -q "delta from" || fail "text plan names no basis"
ds sync a b --json >"$tmp/out2.json" || fail "second sync failed: $(cat "$tmp/out2.json")"
same "$tmp/ta" loose
same "$tmp/tb"
for s in a b; do
  wire=$(field "$tmp/out2.json" $s bytes_wire)
  echo "sync $s after --next: $wire bytes on the wire for $changed changed bytes"
  [ "$wire" -le $((changed * 3 / 2 + 65536)) ] || fail "$s: $wire bytes on the wire, changed $changed"
done
[ "$(field "$tmp/out2.json" b deleted)" -gt 0 ] || [ ! -x "$gen" ] || fail "b (prune) deleted nothing"
[ "$(field "$tmp/out2.json" a deleted)" = 0 ] || fail "a (no prune) deleted files"

# nothing changed: ~0 bytes
ds sync --all --json >"$tmp/out3.json" || fail "third sync failed"
for s in a b; do
  wire=$(field "$tmp/out3.json" $s bytes_wire)
  [ "$wire" -lt 4096 ] || fail "$s: idle sync sent $wire bytes"
  [ "$(field "$tmp/out3.json" $s created)" = 0 ] || fail "$s: idle sync created files"
done

# a lease held by another console: refused, naming the holder
printf 'distsync-lease 1\nconsole other-console\npid 4242\nhost otherhost\nexpiry %s\nflock 0\n' \
  $(($(date +%s) + 600)) >"$tmp/ta/.distsync/lease"
rc=0
out=$(ds sync a 2>&1) || rc=$?
[ "$rc" = 5 ] || fail "sync of a leased server exited $rc, not 5 (busy)"
[[ "$out" == *"server a is being synced by console other-console (pid 4242 on host otherhost) until"* ]] ||
  fail "busy message: $out"
rm -f "$tmp/ta/.distsync/lease"

# usage errors
rc=0
ds sync nosuch >/dev/null 2>&1 || rc=$?
[ "$rc" = 2 ] || fail "unknown server: exit $rc, want 2"

[ "$fails" = 0 ] || exit 1
echo "sync_basic: ok"
