#!/usr/bin/env bash
# Issue 10: the console's own disk. `status` (text and --json) reports the
# retain store's size; `gc --dry-run` reports what gc would free and
# changes nothing (the retained versions and history stay).
set -uo pipefail
. "$DS_SRC/tests/func/lib/sync.bash"
st_init console_disk
export DISTSYNC_TEST_NO_FSYNC=1
ds() { "$DISTSYNC" -c "$tmp/c.conf" "$@"; }
mkdir -p "$tmp/state" "$tmp/a" "$tmp/b"
st_gen "$tmp/store" 0 "$tmp/known" --files 8 --max 64 >/dev/null
st_conf "$tmp/c.conf" "$tmp/store" "$tmp/state" a "file://$tmp/a" local b "file://$tmp/b" local
ds sync --all >/dev/null 2>&1 || bad "sync --all failed"

ds status >"$tmp/st.txt" 2>/dev/null || bad "status failed"
grep -Eq "^console: retain store $tmp/state/retain: 8 versions, [0-9.]+ (B|KiB|MiB) stored, [0-9.]+ (B|KiB|MiB) on disk$" \
  "$tmp/st.txt" || bad "status text lacks the retain store: $(cat "$tmp/st.txt")"
ds status --json >"$tmp/st.json" 2>/dev/null || bad "status --json failed"
python3 - "$tmp/st.json" <<'PY' || bad "status --json lacks console_retain"
import json, sys
d = json.load(open(sys.argv[1]))
r = d[0]["console_retain"]
assert r["versions"] == 8 and r["stored_bytes"] > 0 and r["file_bytes"] > 0, r
PY

# drop server b from the config: after a new generation synced to a only,
# the old versions only b held become collectable
st_conf "$tmp/c.conf" "$tmp/store" "$tmp/state" a "file://$tmp/a" local
st_gen "$tmp/store" 1 "$tmp/known" --files 8 --max 64 >/dev/null
ds scan >/dev/null 2>&1
ds sync a --no-scan --force >/dev/null 2>&1 || bad "sync a failed"
before=$(ds gc --json --dry-run 2>/dev/null) || bad "gc --dry-run failed"
ds gc --dry-run --keep-history 0 --force >"$tmp/dry.txt" 2>"$tmp/dry.err" || bad "gc --dry-run text failed"
grep -Eq "^would free: +[0-9.]+ (B|KiB|MiB)$" "$tmp/dry.txt" || bad "gc --dry-run text: $(cat "$tmp/dry.txt")"
grep -q "history not pruned" "$tmp/dry.err" || bad "gc --dry-run did not say history is kept: $(cat "$tmp/dry.err")"
runs=$(ds history --json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')
[ "$runs" -ge 2 ] || bad "gc --dry-run pruned history: $runs runs left"
after=$(ds gc --json --dry-run 2>/dev/null)
python3 - "$before" "$after" <<'PY' || bad "gc --dry-run changed the store: $before / $after"
import json, sys
b, a = json.loads(sys.argv[1]), json.loads(sys.argv[2])
assert b["dry_run"] is True and a["dry_run"] is True, (b, a)
assert b["retained_versions"] == a["retained_versions"], (b, a)
assert b["freed_bytes"] == a["freed_bytes"], (b, a)
PY
st_exit console_disk
