#!/usr/bin/env bash
# Issue 10: store content that is not copied (empty folders, symbolic links
# inside the store) was dropped with no message. Each scan (distsync scan,
# and the scan before sync) now reports it once: the count and the first
# few names (escaped, as every name printed); scan --json counts it; -q drops the note.
set -uo pipefail
. "$DS_SRC/tests/func/lib/sync.bash"
st_init scan_not_copied
export DISTSYNC_TEST_NO_FSYNC=1
ds() { "$DISTSYNC" -c "$tmp/c.conf" "$@"; }
mkdir -p "$tmp/state" "$tmp/t"
st_gen "$tmp/store" 0 "$tmp/known" --files 4 --max 8 >/dev/null
mkdir -p "$tmp/store/patches/empty1" "$tmp/store/engines/e2" "$tmp/store/definitions/x/e3"
f=$(cd "$tmp/store" && find patches -type f | sort | head -1)
ln -s "$(basename "$f")" "$tmp/store/$(dirname "$f")/link1"
st_conf "$tmp/c.conf" "$tmp/store" "$tmp/state" t "file://$tmp/t" local

ds scan >"$tmp/out" 2>"$tmp/err" || bad "scan failed: $(cat "$tmp/err")"
n=$(grep -c "store entries not copied" "$tmp/err")
[ "$n" = 1 ] || bad "scan: $n not-copied notes, want exactly 1: $(cat "$tmp/err")"
grep -q "note: 4 store entries not copied (empty folders and symbolic links are never copied): " "$tmp/err" ||
  bad "scan note lacks the count: $(cat "$tmp/err")"
grep -q "(symbolic link)" "$tmp/err" || bad "scan note does not name the link: $(cat "$tmp/err")"
grep -q ", \.\.\.$" "$tmp/err" || bad "scan note lists more than the first few: $(cat "$tmp/err")"
[ "$(grep -c . "$tmp/err")" = 1 ] || bad "scan stderr has more than the note: $(cat "$tmp/err")"

ds scan --json 2>/dev/null | python3 -c 'import json,sys; d=json.load(sys.stdin); assert d["not_copied"] == 4, d' ||
  bad "scan --json does not count the entries not copied"
rmdir "$tmp/store/patches/empty1" "$tmp/store/engines/e2" "$tmp/store/definitions/x/e3"
ds scan >"$tmp/out" 2>"$tmp/err" || bad "scan failed"
grep -q 'note: 2 store entries not copied.*: patches/link1 (symbolic link), definitions/x/ (empty folder)$' \
  "$tmp/err" || bad "after the empty folders went: $(cat "$tmp/err")"
ds sync t >/dev/null 2>"$tmp/err" || bad "sync failed: $(cat "$tmp/err")"
[ "$(grep -c "store entries not copied" "$tmp/err")" = 1 ] || bad "sync's scan: no single note: $(cat "$tmp/err")"
[ ! -e "$tmp/t/$(dirname "$f")/link1" ] || bad "the symbolic link was copied"
ds -q scan >/dev/null 2>"$tmp/err" || bad "scan -q failed"
[ ! -s "$tmp/err" ] || bad "scan -q printed the note: $(cat "$tmp/err")"
st_exit scan_not_copied
