#!/usr/bin/env bash
# Hashes recorded by distsync scan against independent tools: every file's
# sha256 (files --json) equals sha256sum's, and chunks listed by the hidden
# `files --chunks PATH` are contiguous, cover the file, and each chunk's
# XXH3-128 equals `xxhsum -H2` of those bytes.
set -euo pipefail
: "${DISTSYNC:?}"
tmp=$(mktemp -d "${DS_TEST_TMP:-/tmp}/scan_hash_oracle.XXXXXX" 2>/dev/null || mktemp -d)
trap 'rm -rf "$tmp"' EXIT
unset DISTSYNC_CONFIG
fail=0
store=$tmp/store
mkdir -p "$store/patches/deep/er" "$store/engines" "$store/definitions"
cat >"$tmp/d.conf" <<CONF
[console]
store = $store
state = $tmp/state
CONF
ds() { "$DISTSYNC" -c "$tmp/d.conf" "$@"; }

# Sizes around the chunker's bounds (16 KiB min, 64 KiB avg, 256 KiB max).
sizes=(0 1 4095 16383 16384 16385 65536 262143 262144 262145 1048576 3000001)
i=0
for s in "${sizes[@]}"; do
  head -c "$s" /dev/urandom >"$store/patches/deep/er/r$i.bin"
  i=$((i + 1))
done
# Low-entropy content: long runs cut at max size, repeated chunks.
head -c 2000000 /dev/zero >"$store/engines/zeros.bin"
python3 -c 'import sys; sys.stdout.write("definition line\n" * 43750)' >"$store/definitions/text.dat"
ds scan >/dev/null

(cd "$store" && find . -type f -printf '%P\n' | sort | xargs -d '\n' sha256sum) >"$tmp/oracle"
ds files --json | python3 -c '
import json,sys
print("".join("%s  %s\n" % (o["sha256"], o["path"]) for o in sorted(json.load(sys.stdin), key=lambda o: o["path"])), end="")
' >"$tmp/ours"
if ! diff "$tmp/oracle" "$tmp/ours" >&2; then
  echo "FAIL: sha256 differs from sha256sum" >&2
  fail=1
fi
[ "$(wc -l <"$tmp/ours")" = 14 ] || { echo "FAIL: expected 14 files" >&2; fail=1; }

# check_chunks REL: walks every chunk of REL.
check_chunks() {
  local rel=$1 size off=0 n=0 checked=0 o len h got
  size=$(stat -c %s "$store/$rel")
  ds files --chunks "$rel" >"$tmp/chunks"
  while read -r o len h; do
    [ "$o" = "$off" ] || { echo "FAIL: $rel chunk $n at $o, expected $off" >&2; fail=1; return; }
    if [ "$len" -gt 262144 ] || { [ "$len" -lt 16384 ] && [ $((o + len)) != "$size" ]; }; then
      echo "FAIL: $rel chunk $n length $len out of bounds" >&2
      fail=1
    fi
    # Verify the first 4, the last, and every 7th chunk against xxhsum.
    if [ $n -lt 4 ] || [ $((o + len)) = "$size" ] || [ $((n % 7)) = 0 ]; then
      got=$(dd if="$store/$rel" iflag=skip_bytes,count_bytes skip="$o" count="$len" bs=1M \
        status=none | xxhsum -H2 | cut -d' ' -f1)
      [ "$got" = "$h" ] || { echo "FAIL: $rel chunk $n: xxhsum $got, catalog $h" >&2; fail=1; }
      checked=$((checked + 1))
    fi
    off=$((o + len))
    n=$((n + 1))
  done <"$tmp/chunks"
  [ "$off" = "$size" ] || { echo "FAIL: $rel chunks cover $off of $size bytes" >&2; fail=1; }
  [ $checked -gt 0 ] || [ "$size" = 0 ] || { echo "FAIL: $rel: no chunk checked" >&2; fail=1; }
}
for rel in patches/deep/er/r0.bin patches/deep/er/r1.bin patches/deep/er/r5.bin \
  patches/deep/er/r10.bin patches/deep/er/r11.bin engines/zeros.bin definitions/text.dat; do
  check_chunks "$rel"
done
[ "$(ds files --chunks patches/deep/er/r0.bin | wc -l)" = 0 ] || { echo "FAIL: empty file has chunks" >&2; fail=1; }
rc=0; ds files --chunks no/such 2>/dev/null || rc=$?
[ "$rc" = 1 ] || { echo "FAIL: --chunks on a missing path exit $rc" >&2; fail=1; }

exit $fail
