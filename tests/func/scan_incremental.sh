#!/usr/bin/env bash
# distsync scan / files at the CLI level: a first scan, then modify, delete,
# rename, touch without change, a symlink out of the store and a bad name;
# each rescan's summary (--json) and the catalog (files --json) are checked.
set -euo pipefail
: "${DISTSYNC:?}"
tmp=$(mktemp -d "${DS_TEST_TMP:-/tmp}/scan_incremental.XXXXXX" 2>/dev/null || mktemp -d)
trap 'rm -rf "$tmp"' EXIT
unset DISTSYNC_CONFIG
fail=0
store=$tmp/store
mkdir -p "$store/patches/kb1" "$store/engines" "$store/definitions"
cat >"$tmp/d.conf" <<CONF
[console]
store = $store
state = $tmp/state
CONF
ds() { "$DISTSYNC" -c "$tmp/d.conf" "$@"; }

# check_scan 'python expression over the summary dict s' DESCRIPTION
check_scan() {
  local out
  out=$(ds scan --json 2>"$tmp/warn") || { echo "FAIL: scan exited $?" >&2; fail=1; return; }
  if ! python3 -c 'import json,sys; s=json.loads(sys.argv[1]); assert eval(sys.argv[2]), s' \
      "$out" "$1"; then
    echo "FAIL: $2: $out" >&2
    fail=1
  fi
}
# check_files 'python expression over f (path -> object)' DESCRIPTION
check_files() {
  if ! ds files --json | python3 -c '
import json,sys
f={o["path"]: o for o in json.load(sys.stdin)}
assert eval(sys.argv[1]), f' "$1"; then
    echo "FAIL: $2" >&2
    fail=1
  fi
}

head -c 300000 /dev/urandom >"$store/patches/kb1/a.msu"
head -c 100000 /dev/urandom >"$store/engines/e.bin"
echo "definitions v1" >"$store/definitions/d-2026-01-01.dat"
echo "gone soon" >"$store/definitions/old.dat"
check_scan 's["files"]==4 and s["new"]==4 and s["warnings"]==0' "first scan"
check_files 'len(f)==4 and f["patches/kb1/a.msu"]["class"]=="patches" and f["patches/kb1/a.msu"]["size"]==300000 and f["patches/kb1/a.msu"]["chunks"]>=1 and len(f["engines/e.bin"]["sha256"])==64 and f["engines/e.bin"]["mtime"].endswith("Z") and isinstance(f["engines/e.bin"]["mtime_ns"], int)' "files after first scan"
check_scan 's["unchanged"]==4 and s["hashed"]==0 and s["bytes_hashed"]==0' "rescan without changes"

old_sha=$(ds files --json | python3 -c 'import json,sys; print([o["sha256"] for o in json.load(sys.stdin) if o["path"]=="patches/kb1/a.msu"][0])')
head -c 1000 /dev/urandom >>"$store/engines/e.bin"                  # modify
rm "$store/definitions/old.dat"                                       # delete
mv "$store/definitions/d-2026-01-01.dat" "$store/definitions/d-2026-01-02.dat"  # rename
touch -d '2030-01-01 00:00:00' "$store/patches/kb1/a.msu"             # touch only
check_scan 's["files"]==3 and s["changed"]==1 and s["touched"]==1 and s["new"]==1 and s["removed"]==2 and s["unchanged"]==0 and s["contents_new"]==1' "rescan after changes"
check_files "len(f)==3 and 'definitions/old.dat' not in f and 'definitions/d-2026-01-02.dat' in f and f['engines/e.bin']['size']==101000 and f['patches/kb1/a.msu']['sha256']=='$old_sha' and f['patches/kb1/a.msu']['mtime']=='2030-01-01T00:00:00Z'" "files after changes"

# Warnings: per file, on stderr, exit status still 0.
ln -s /etc/passwd "$store/patches/leak"
touch "$store/engines/bad$(printf '\377')name"
check_scan 's["warnings"]==2 and s["unchanged"]==3' "scan with warnings"
grep -q '^distsync: warning: patches/leak: symlink leaves the store, skipped$' "$tmp/warn" ||
  { echo "FAIL: symlink warning missing: $(cat "$tmp/warn")" >&2; fail=1; }
grep -qF 'distsync: warning: engines/bad\xffname: name is not valid UTF-8, skipped' "$tmp/warn" ||
  { echo "FAIL: UTF-8 warning missing: $(cat "$tmp/warn")" >&2; fail=1; }

# The text summary and the class / prefix filters.
out=$(ds scan 2>/dev/null)
[[ "$out" == "scan: 3 files (0 new, 0 changed, 0 removed, 3 unchanged), 0 B hashed in "*", 2 warnings, 1 skipped (bad name)" ]] ||
  { echo "FAIL: summary line: $out" >&2; fail=1; }
[ "$(ds files --class patches | wc -l)" = 1 ] || { echo "FAIL: files --class" >&2; fail=1; }
[ "$(ds files definitions/ | wc -l)" = 1 ] || { echo "FAIL: files PREFIX" >&2; fail=1; }
[ "$(ds files nothing/ | wc -l)" = 0 ] || { echo "FAIL: files bad PREFIX" >&2; fail=1; }
ds files --json nothing/ | python3 -c 'import json,sys; assert json.load(sys.stdin)==[]' ||
  { echo "FAIL: empty JSON list" >&2; fail=1; }

# Names that JSON must escape round-trip through files --json. (Control
# characters and backslashes never reach the catalog: scan_bad_names.sh.)
odd=$'q"uote sp ace caf\u00e9 \U0001F600 del'
echo odd >"$store/engines/$odd"
ds scan >/dev/null 2>&1
ds files --json engines/ | python3 -c '
import json,sys
paths=[o["path"] for o in json.load(sys.stdin)]
assert "engines/" + sys.argv[1] in paths, paths' "$odd" || { echo "FAIL: JSON escaping" >&2; fail=1; }
rm "$store/engines/$odd"

# One scan at a time per state directory.
rc=0; flock "$tmp/state/scan.lock" "$DISTSYNC" -c "$tmp/d.conf" scan >/dev/null 2>"$tmp/err" || rc=$?
[ "$rc" = 1 ] && grep -q "another 'distsync scan' is running" "$tmp/err" ||
  { echo "FAIL: concurrent scan: exit $rc $(cat "$tmp/err")" >&2; fail=1; }

# Usage errors and a missing store.
rc=0; ds scan --threads 0 2>/dev/null || rc=$?
[ "$rc" = 2 ] || { echo "FAIL: --threads 0 exit $rc" >&2; fail=1; }
mv "$store" "$store.away"
rc=0; ds scan >/dev/null 2>"$tmp/err" || rc=$?
[ "$rc" = 1 ] && grep -q "$store" "$tmp/err" || { echo "FAIL: missing store: exit $rc $(cat "$tmp/err")" >&2; fail=1; }
mv "$store.away" "$store"

exit $fail
