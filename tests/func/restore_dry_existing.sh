#!/usr/bin/env bash
# `restore --dry-run` over an existing console lists where each file would
# go and which exist (it refused, like a restore without --force, and
# listed nothing); it changes nothing, says a restore without --force
# refuses them, and exits 0. A real restore without --force still refuses
# (exit 1); --dry-run --force says each would be kept as .bak.
set -uo pipefail
. "$(dirname "$0")/lib/sync.bash"
st_init restore_dry_existing
store=$tmp/store
st_gen "$store" 0 "$tmp/known" --files 4 --max 4096 || bad "mkstore"
mkdir -p "$tmp/t"
st_conf "$tmp/c.conf" "$store" "$tmp/state" srv "file://$tmp/t" local
"$DISTSYNC" -c "$tmp/c.conf" sync srv >/dev/null 2>&1 || bad "sync"
"$DISTSYNC" -c "$tmp/c.conf" backup --out "$tmp/b.tar.zst" >/dev/null 2>"$tmp/err" || bad "backup: $(cat "$tmp/err")"
sums() { sha256sum "$tmp/c.conf" "$tmp/state/catalog.db"; ls "$tmp/state"; ls "$tmp"/*.bak 2>/dev/null; }
before=$(sums)

st_expect_rc 0 "restore --dry-run over the existing console" "$DISTSYNC" restore --dry-run "$tmp/b.tar.zst"
for f in c.conf state/catalog.db; do
  grep -q "would restore .*$tmp/$f " "$tmp/out" || bad "restore --dry-run does not list $f: $(cat "$tmp/out" "$tmp/err")"
done
[ "$(grep -c "it exists: restore refuses it without --force, which keeps it as $tmp/.*\.bak" "$tmp/out")" = 2 ] ||
  bad "restore --dry-run does not say which exist: $(cat "$tmp/out")"
grep -q "2 of these exist: a restore without --force refuses them" "$tmp/err" ||
  bad "restore --dry-run does not say a restore would refuse: $(cat "$tmp/err")"
[ "$(sums)" = "$before" ] || bad "restore --dry-run changed the console"

st_expect_rc 1 "restore without --force over the existing console" "$DISTSYNC" restore "$tmp/b.tar.zst"
grep -q "refusing to overwrite" "$tmp/err" || bad "restore without --force: $(cat "$tmp/err")"
[ "$(sums)" = "$before" ] || bad "a refused restore changed the console"

st_expect_rc 0 "restore --dry-run --force" "$DISTSYNC" restore --dry-run --force "$tmp/b.tar.zst"
[ "$(grep -c "would replace would be kept as $tmp/.*\.bak" "$tmp/out")" = 2 ] ||
  bad "restore --dry-run --force does not say what it keeps: $(cat "$tmp/out")"
[ -s "$tmp/err" ] && bad "restore --dry-run --force warns: $(cat "$tmp/err")"
[ "$(sums)" = "$before" ] || bad "restore --dry-run --force changed the console"
st_exit restore_dry_existing
