#!/usr/bin/env bash
# kill -9 of `distsync agent --import` in the middle of an update bundle
# (deltas against the files it replaces), then a rerun: every file the
# killed import touched holds its old or its new content (never a part),
# the rerun finds the files already written (their basis is gone: they are
# recognised by their new SHA-256 and recorded in the manifest in place),
# writes the rest and leaves the server byte for byte what a live sync
# leaves, manifest included. DISTSYNC_TEST_IMPORT_PAUSE_MS (a test build's
# hook) spaces the files out so the kill lands mid-way.
set -uo pipefail
. "$(dirname "$0")/lib/sync.bash"
. "$(dirname "$0")/lib/bundle.bash"
st_init bundle_kill9
export DISTSYNC_TEST_NO_FSYNC=1
store=$tmp/store
bundle_conf "$tmp/c.conf" "$store" "$tmp/state"
ds() { "$DISTSYNC" -c "$tmp/c.conf" "$@"; }
"$DISTSYNC" version | grep -q 'test hooks: on' || { echo "SKIP: needs a test build (DS_TEST_HOOKS=ON)"; exit 77; }

bundle_store "$store" 0 20
ds sync live >/dev/null 2>"$tmp/err" || bad "live sync gen 0: $(head -c 300 "$tmp/err")"
ds sync off >/dev/null 2>"$tmp/err" || bad "sync off gen 0: $(head -c 300 "$tmp/err")"
cp -a "$tmp/off" "$tmp/old"
bundle_store "$store" 1 20
ds export off --out "$tmp/b.dsb" >/dev/null 2>"$tmp/err" || bad "export: $(head -c 300 "$tmp/err")"
ds sync live >/dev/null 2>"$tmp/err" || bad "live sync gen 1: $(head -c 300 "$tmp/err")"
tar --zstd -xOf "$tmp/b.dsb" index | awk -F'\t' '$1 == "put" && $7 == "delta" {print $2}' >"$tmp/deltas"
total=$(wc -l <"$tmp/deltas")
[ "$total" -ge 10 ] || bad "only $total delta items in the bundle"

# done_count: delta items whose new content is in place.
done_count() {
  local n=0 p
  while IFS= read -r p; do cmp -s "$store/$p" "$tmp/off/$p" && n=$((n + 1)); done <"$tmp/deltas"
  echo $n
}

DISTSYNC_TEST_IMPORT_PAUSE_MS=250 "$DISTSYNC" agent --root "$tmp/off" --import "$tmp/b.dsb" >/dev/null 2>&1 &
pid=$!
st_pids+=("$pid")
for _ in $(seq 200); do
  [ "$(done_count)" -ge 3 ] && break
  sleep 0.05
done
kill -9 "$pid" 2>/dev/null
wait "$pid" 2>/dev/null
n=$(done_count)
echo "  killed after $n of $total delta files"
[ "$n" -ge 3 ] || bad "the import wrote $n files before the kill (want 3 or more)"
[ "$n" -lt "$total" ] || bad "the import finished before the kill: nothing to resume"
while IFS= read -r p; do
  cmp -s "$store/$p" "$tmp/off/$p" || cmp -s "$tmp/old/$p" "$tmp/off/$p" ||
    bad "$p is neither its old nor its new version after the kill"
done <"$tmp/deltas"

"$DISTSYNC" agent --root "$tmp/off" --import "$tmp/b.dsb" >"$tmp/out" 2>"$tmp/err" ||
  bad "rerun after kill -9: $(head -c 400 "$tmp/err")"
grep -Eq "written, [1-9][0-9]* already there \([1-9][0-9]* recorded\)" "$tmp/out" ||
  bad "the rerun did not recognise the files written before the kill: $(cat "$tmp/out")"
out=$(diff -r --exclude=.distsync "$tmp/live" "$tmp/off" 2>&1) || bad "after the rerun: trees differ: $(echo "$out" | head -5)"
cmp -s "$tmp/live/.distsync/manifest" "$tmp/off/.distsync/manifest" || bad "after the rerun: manifest differs from the live server's"
[ -z "$(ls -A "$tmp/off/.distsync/tmp" 2>/dev/null)" ] || bad "files left in .distsync/tmp"
st_exit bundle_kill9
