#!/usr/bin/env bash
# Bundles through the real CLI and agent: `distsync export` then
# `distsync agent --import` on a file:// root leaves it byte for byte what a
# live sync leaves (trees and .distsync/manifest compared), for a --full
# bundle, then an update bundle against the catalog's last-known manifest
# (deltas, a copy, a new file, a deletion under prune) and one against a
# --since-manifest file. The same bundle applied twice is a no-op (every
# file keeps its inode and mtime). A bundle made for another state is
# refused, naming the bundle and the file, with nothing changed (and its
# lease given back).
set -uo pipefail
. "$(dirname "$0")/lib/sync.bash"
. "$(dirname "$0")/lib/bundle.bash"
st_init bundle_roundtrip
export DISTSYNC_TEST_NO_FSYNC=1
store=$tmp/store
bundle_conf "$tmp/c.conf" "$store" "$tmp/state"
ds() { "$DISTSYNC" -c "$tmp/c.conf" "$@"; }
import() { "$DISTSYNC" agent --root "$tmp/off" --import "$1"; }

# same_as_live WHAT: off holds what live holds, manifest included.
same_as_live() {
  local out
  out=$(diff -r --exclude=.distsync "$tmp/live" "$tmp/off" 2>&1) || bad "$1: trees differ: $(echo "$out" | head -5)"
  cmp -s "$tmp/live/.distsync/manifest" "$tmp/off/.distsync/manifest" ||
    bad "$1: .distsync/manifest differs from the live server's"
  [ -z "$(ls -A "$tmp/off/.distsync/tmp" 2>/dev/null)" ] || bad "$1: files left in .distsync/tmp"
  [ ! -e "$tmp/off/.distsync/lease" ] || bad "$1: the import left its lease behind"
}

# 1. First delivery: a self-contained bundle.
bundle_store "$store" 0
ds sync live >/dev/null 2>"$tmp/err" || bad "live sync gen 0: $(head -c 300 "$tmp/err")"
ds export off --full --out "$tmp/b0.dsb" >"$tmp/out" 2>"$tmp/err" || bad "export --full: $(head -c 300 "$tmp/err")"
grep -q 'cop' "$tmp/out" || bad "export --full printed no summary: $(cat "$tmp/out")"
import "$tmp/b0.dsb" >"$tmp/out" 2>"$tmp/err" || bad "import --full bundle: $(head -c 300 "$tmp/err")"
same_as_live "full bundle"

# The catalog learns what off holds as a live sync would record it (a live
# sync of an already equal server moves nothing): the default basis next.
ds sync off --json >"$tmp/s.json" 2>"$tmp/err" || bad "sync off: $(head -c 300 "$tmp/err")"
python3 -c 'import json,sys; s=json.load(open(sys.argv[1]))["servers"][0]; sys.exit(s["created"]+s["updated"]+s["deleted"])' "$tmp/s.json" ||
  bad "a live sync after the --full import still changed files"

# 2. An update against the catalog's last-known manifest.
bundle_store "$store" 1
ds export off --out "$tmp/b1.dsb" >"$tmp/out" 2>"$tmp/err" || bad "export: $(head -c 300 "$tmp/err")"
ds sync live >/dev/null 2>"$tmp/err" || bad "live sync gen 1: $(head -c 300 "$tmp/err")"
grep -Eq ' [1-9][0-9]* deltas?,' "$tmp/out" || bad "the update bundle carries no delta: $(cat "$tmp/out")"
grep -Eq ' 1 delete,' "$tmp/out" || bad "the update bundle does not delete the removed file: $(cat "$tmp/out")"
tar --zstd -tf "$tmp/b1.dsb" >"$tmp/list" 2>&1 || bad "the bundle is not a tar.zst archive: $(head -3 "$tmp/list")"
head -3 "$tmp/list" | tr '\n' ' ' | grep -q '^distsync-bundle manifest index ' || bad "bundle entries: $(head -3 "$tmp/list")"
cp -a "$tmp/off" "$tmp/off.before"
import "$tmp/b1.dsb" >"$tmp/out" 2>"$tmp/err" || bad "import update bundle: $(head -c 300 "$tmp/err")"
same_as_live "update bundle"
[ ! -e "$tmp/off/engines/f002.bin" ] || bad "the deleted file is still there"

# 3. The same bundle again: nothing changes.
tree_sig "$tmp/off" >"$tmp/sig1"
import "$tmp/b1.dsb" >"$tmp/out" 2>"$tmp/err" || bad "second import: $(head -c 300 "$tmp/err")"
grep -q 'already applied' "$tmp/out" || bad "second import did not say it was applied: $(cat "$tmp/out")"
tree_sig "$tmp/off" >"$tmp/sig2"
cmp -s "$tmp/sig1" "$tmp/sig2" || bad "the second import changed files: $(diff "$tmp/sig1" "$tmp/sig2" | head -4)"

# 4. --since-manifest: the server's own manifest file as the basis.
bundle_store "$store" 2
cp "$tmp/off/.distsync/manifest" "$tmp/off.manifest"
ds export off --since-manifest "$tmp/off.manifest" --out "$tmp/b2.dsb" >"$tmp/out" 2>"$tmp/err" ||
  bad "export --since-manifest: $(head -c 300 "$tmp/err")"
ds sync live >/dev/null 2>"$tmp/err" || bad "live sync gen 2: $(head -c 300 "$tmp/err")"

# 5. The wrong state: b2 applied to the state before b1 (off.before), and
# b2 applied to off with one basis file changed behind the bundle's back.
tree_sig "$tmp/off.before" >"$tmp/sig1"
"$DISTSYNC" agent --root "$tmp/off.before" --import "$tmp/b2.dsb" >"$tmp/out" 2>"$tmp/err" &&
  bad "a bundle for another state was applied"
grep -q "bundle $tmp/b2.dsb: made for another state" "$tmp/err" || bad "refusal message: $(head -c 400 "$tmp/err")"
tree_sig "$tmp/off.before" >"$tmp/sig2"
cmp -s "$tmp/sig1" "$tmp/sig2" || bad "a refused bundle changed files: $(diff "$tmp/sig1" "$tmp/sig2" | head -4)"
basis=$(tar --zstd -xOf "$tmp/b2.dsb" index | awk -F'\t' '$7 == "delta" {print $8; exit}')
[ -n "$basis" ] || bad "b2 has no delta item"
cp -a "$tmp/off" "$tmp/off.saved"
printf 'changed behind our back' | dd of="$tmp/off/$basis" bs=1 seek=100 conv=notrunc 2>/dev/null
tree_sig "$tmp/off" >"$tmp/sig1"
import "$tmp/b2.dsb" >"$tmp/out" 2>"$tmp/err" && bad "a bundle whose basis changed was applied"
grep -q "made for another state of the server: $tmp/off/$basis holds content" "$tmp/err" ||
  bad "refusal does not name the changed basis: $(head -c 400 "$tmp/err")"
tree_sig "$tmp/off" >"$tmp/sig2"
cmp -s "$tmp/sig1" "$tmp/sig2" || bad "a refused bundle changed files: $(diff "$tmp/sig1" "$tmp/sig2" | head -4)"
[ ! -e "$tmp/off/.distsync/lease" ] || bad "a refused import left its lease behind"

# 6. With the basis restored, b2 applies and matches the live server.
rm -rf "$tmp/off" && mv "$tmp/off.saved" "$tmp/off"
import "$tmp/b2.dsb" >"$tmp/out" 2>"$tmp/err" || bad "import b2: $(head -c 300 "$tmp/err")"
same_as_live "--since-manifest bundle"
# 7. A --full bundle needs no basis: applied to the older state (whose
# manifest names a file the store no longer has), it brings every file of
# the store and leaves that one alone (no deletion without a basis).
ds export off --full --out "$tmp/bf.dsb" >/dev/null 2>"$tmp/err" || bad "export --full: $(head -c 300 "$tmp/err")"
"$DISTSYNC" agent --root "$tmp/off.before" --import "$tmp/bf.dsb" >"$tmp/out" 2>"$tmp/err" ||
  bad "a --full bundle on a server with other files: $(head -c 300 "$tmp/err")"
out=$(diff -r --exclude=.distsync "$store" "$tmp/off.before" 2>&1)
[ "$out" = "Only in $tmp/off.before/engines: f002.bin" ] || bad "after the --full bundle: $(echo "$out" | head -3)"
"$DISTSYNC" agent --root "$tmp/off.before" --import "$tmp/bf.dsb" >"$tmp/out" 2>"$tmp/err" || bad "--full again: $(head -c 300 "$tmp/err")"
grep -q 'already applied' "$tmp/out" || bad "a --full bundle applied twice was not a no-op: $(cat "$tmp/out")"
st_exit bundle_roundtrip
