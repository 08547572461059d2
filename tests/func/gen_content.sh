#!/usr/bin/env bash
# tools/gen-content: same seed => same bytes; --next produces the described
# deltas (new cumulative patches sharing data with older ones, engines edited
# in place with shifted offsets, definitions rolled by one day).
set -euo pipefail
shopt -s inherit_errexit
src=${DS_SRC:-$(cd "$(dirname "$0")/../.." && pwd)}
gen=$src/tools/gen-content
tmp=${DS_TEST_TMP:-/tmp}/func_gen_content.$$
mkdir -p "$tmp"
trap 'rm -rf "$tmp"' EXIT
fails=0
fail() {
  echo "FAIL: $*" >&2
  fails=$((fails + 1))
}
tree_sum() { (cd "$1" && find . -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum | sha256sum); }
# bytes of an rdiff delta turning $1 into $2 (small when $2 shares most of $1)
delta_size() {
  rdiff -f signature "$1" "$tmp/sig"
  rdiff -f delta "$tmp/sig" "$2" "$tmp/delta"
  stat -c %s "$tmp/delta"
}

"$gen" --seed 7 --scale small "$tmp/a" >/dev/null
"$gen" --seed 7 --scale small "$tmp/b" >/dev/null
"$gen" --seed 8 --scale small "$tmp/c" >/dev/null
[ "$(tree_sum "$tmp/a")" = "$(tree_sum "$tmp/b")" ] || fail "same seed gave different trees"
[ "$(tree_sum "$tmp/a")" != "$(tree_sum "$tmp/c")" ] || fail "different seeds gave the same tree"
n=$(find "$tmp/a" -type f | wc -l)
[ "$n" -ge 60 ] || fail "only $n files in a small store"
for cls in patches engines definitions; do
  [ -d "$tmp/a/$cls" ] || fail "no $cls/ class folder"
done
size=$(du -sb "$tmp/a" | cut -f1)
[ "$size" -ge $((80 << 20)) ] && [ "$size" -le $((140 << 20)) ] || fail "small store is $size bytes"

# refuses a non-empty directory; --next needs a generated store
if "$gen" --seed 7 --scale small "$tmp/a" 2>/dev/null; then fail "overwrote a non-empty dir"; fi
mkdir "$tmp/empty"
set +e
"$gen" --next "$tmp/empty" 2>/dev/null
rc=$?
set -e
[ "$rc" = 2 ] || fail "--next on an empty dir exited $rc, want 2"

cp -a "$tmp/a" "$tmp/a1"
out=$("$gen" --next "$tmp/a")
"$gen" --next "$tmp/b" >/dev/null
[ "$(tree_sum "$tmp/a")" = "$(tree_sum "$tmp/b")" ] || fail "--next is not deterministic"
[ "$(tree_sum "$tmp/a")" != "$(tree_sum "$tmp/a1")" ] || fail "--next changed nothing"
grep -q '"generation": 2' "$tmp/a/.gen-content.json" || fail "generation not 2 after --next"
changed=$(sed -n 's/.*changed_bytes=\([0-9]*\).*/\1/p' <<<"$out")
[ -n "$changed" ] && [ "$changed" -gt 0 ] || fail "no changed_bytes in: $out"
grep -q "\"changed_bytes\": $changed" "$tmp/a/.gen-content.json" || fail "state disagrees with '$out'"

# definitions: today's file added, the oldest gone, five days kept per family
for fam in avdefs urldefs spamdefs; do
  d=$tmp/a/definitions
  [ -f "$d/$fam-2026-11-23.dat" ] || fail "$fam: no file for the new day"
  [ ! -e "$d/$fam-2026-11-18.dat" ] || fail "$fam: oldest day not deleted"
  [ -f "$d/$fam-2026-11-22.dat" ] || fail "$fam: yesterday's file missing"
  days=$(find "$d" -name "$fam-*.dat" | wc -l)
  [ "$days" = 5 ] || fail "$fam: $days days kept, want 5"
  new=$d/$fam-2026-11-23.dat
  ds=$(delta_size "$d/$fam-2026-11-22.dat" "$new")
  [ "$ds" -lt $(($(stat -c %s "$new") / 20)) ] || fail "$fam: day-to-day delta $ds is not small"
  cmp -s "$d/$fam-2026-11-22.dat" "$new" && fail "$fam: new day is identical to yesterday"
done

# patches: each new update shares most of its bytes with an older one
newp=$(comm -13 <(cd "$tmp/a1" && find patches -name '*.ms[u]' -o -name '*.cab' | sort) \
  <(cd "$tmp/a" && find patches -name '*.ms[u]' -o -name '*.cab' | sort))
[ -n "$newp" ] || fail "no new patch file"
based=0
for p in $newp; do
  prod=$(basename "$p" | sed 's/-kb[0-9]*-.*//')
  arch=$(basename "$p" | sed 's/.*-kb[0-9]*-//')
  old=$(cd "$tmp/a1" && find patches -name "$prod-kb*-$arch" | sort | tail -n1)
  if [ -z "$old" ]; then continue; fi
  based=$((based + 1))
  sz=$(stat -c %s "$tmp/a/$p")
  ds=$(delta_size "$tmp/a1/$old" "$tmp/a/$p")
  [ "$ds" -lt $((sz * 4 / 10)) ] || fail "$p: shares too little with $old (delta $ds of $sz)"
  [ "$ds" -gt $((sz / 50)) ] || fail "$p: barely differs from $old (delta $ds of $sz)"
done
[ "$based" -ge 1 ] || fail "no new patch is a cumulative update of an older one"

# engines: at least one engine.bin rewritten in place with shifted offsets
edited=0
for e in "$tmp/a"/engines/*/engine.bin; do
  o=$tmp/a1/${e#"$tmp/a/"}
  cmp -s "$o" "$e" && continue
  edited=$((edited + 1))
  [ "$(stat -c %s "$o")" != "$(stat -c %s "$e")" ] || fail "$e: same size (no insertion?)"
  ds=$(delta_size "$o" "$e")
  [ "$ds" -lt $((256 << 10)) ] || fail "$e: delta $ds too large for a few KiB of edits"
done
[ "$edited" -ge 1 ] || fail "no engine changed"

"$gen" --seed 3 --single 8M "$tmp/s" >/dev/null
[ "$(stat -c %s "$tmp/s"/patches/*/*.iso)" = $((8 << 20)) ] || fail "--single size"

[ "$fails" = 0 ] || exit 1
echo "gen_content: ok"
