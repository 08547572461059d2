#!/usr/bin/env bash
# Issue 7 item 4: store files whose names the receiver refuses (newline, tab,
# backslash, ESC, a directory with a newline, a path over 4095 bytes) are
# left out of the catalog by scan, with a warning naming each one escaped
# (\n, \t, \\, \xNN), counted as skipped; the rest ships to every server
# (in-process and agent). No command prints a raw control character, and
# --json output stays valid JSON.
set -uo pipefail
. "$(dirname "$0")/lib/sync.bash"
st_init scan_bad_names
store=$tmp/store
st_conf "$tmp/d.conf" "$store" "$tmp/state" one "file://$tmp/t1" local two "file://$tmp/t2" agent
ds() { "$DISTSYNC" -c "$tmp/d.conf" "$@"; }
mkdir -p "$tmp/t1" "$tmp/t2" "$store/patches/kb1" "$store/engines" "$store/definitions"
echo good >"$store/patches/kb1/good.msu"
echo eng >"$store/engines/eng.bin"
python3 - "$store" <<'PY'
import os, sys
s = sys.argv[1]
for name in ["patches/new\nline.msu", "patches/tab\there.msu", "patches/back\\slash.msu",
             "definitions/esc\x1b[31m.dat"]:
    open(os.path.join(s, name), "w").write("bad\n")
os.makedirs(os.path.join(s, "engines/dir\nx"))
open(os.path.join(s, "engines/dir\nx/inside.bin"), "w").write("bad\n")
# a path over the receiver's 4095-byte limit (each component <= 255)
os.chdir(os.path.join(s, "definitions"))
rel = "definitions"
while len(rel) < 4000:
    os.mkdir("d" * 200)
    os.chdir("d" * 200)
    rel += "/" + "d" * 200
open("x" * 200, "w").write("long\n")
PY

# raw_ctl FILE WHAT: FILE holds no control byte but newline (and tab when
# allowed: files' columns are tab-separated).
raw_ctl() {
  python3 - "$1" "$2" "${3:-}" <<'PY' || fail=1
import sys
data, what, tabs = open(sys.argv[1], "rb").read(), sys.argv[2], sys.argv[3] == "tabs"
bad = sorted({b for b in data if (b < 0x20 and b != 0x0a and not (tabs and b == 0x09)) or b == 0x7f})
if bad:
    print(f"FAIL: {what} printed raw control bytes {bad}: {data[:300]!r}", file=sys.stderr)
    sys.exit(1)
PY
}

ds scan --json >"$tmp/scan.json" 2>"$tmp/scan.err"
rc=$?
[ $rc = 0 ] || bad "scan exited $rc: $(head -c 400 "$tmp/scan.err")"
raw_ctl "$tmp/scan.err" "scan (stderr)"
python3 - "$tmp/scan.json" "$tmp/scan.err" <<'PY' || fail=1
import json, sys
s = json.load(open(sys.argv[1]))
err = open(sys.argv[2], encoding="utf-8", errors="replace").read()
assert s.get("files") == 2 and s.get("skipped") == 6, f"FAIL: want 2 files, 6 skipped: {s}"
for esc in [r"patches/new\nline.msu", r"patches/tab\there.msu", r"patches/back\\slash.msu",
            r"definitions/esc\x1b[31m.dat", r"engines/dir\nx"]:
    lines = [l for l in err.splitlines() if esc in l]
    assert lines, f"FAIL: no warning naming {esc!r} (escaped): {err!r}"
    assert "warning" in lines[0] and "left out of the catalog" in lines[0], lines[0]
assert "path too long" in err, f"FAIL: no warning for the over-long path: {err!r}"
PY
ds files --json >"$tmp/files.json" || bad "files --json"
python3 - "$tmp/files.json" <<'PY' || fail=1
import json, sys
paths = sorted(f["path"] for f in json.load(open(sys.argv[1])))
assert paths == ["engines/eng.bin", "patches/kb1/good.msu"], f"FAIL: catalog holds {paths}"
PY

ds sync --all >"$tmp/sync.out" 2>"$tmp/sync.err" || bad "sync --all failed: $(head -c 400 "$tmp/sync.err")"
grep -q "unsafe path" "$tmp/sync.err" && bad "sync refused a path: $(head -c 300 "$tmp/sync.err")"
for t in t1 t2; do
  [ -f "$tmp/$t/patches/kb1/good.msu" ] && [ -f "$tmp/$t/engines/eng.bin" ] ||
    bad "$t: the good files did not ship"
done
# a rescan is stable and the next sync has nothing to do
ds scan >/dev/null 2>&1 || bad "rescan"
ds sync --all --json >"$tmp/sync2.json" 2>"$tmp/sync2.err" || bad "second sync: $(head -c 300 "$tmp/sync2.err")"

# every text command, verbose: no raw control byte anywhere
for cmd in "scan" "files" "plan one" "status" "sync one" "history --events"; do
  # shellcheck disable=SC2086
  "$DISTSYNC" -v -c "$tmp/d.conf" $cmd >"$tmp/o" 2>"$tmp/e"
  raw_ctl "$tmp/e" "$cmd (stderr)"
  if [ "$cmd" = files ]; then raw_ctl "$tmp/o" "$cmd" tabs; else raw_ctl "$tmp/o" "$cmd"; fi
done
for cmd in "files" "plan one" "status" "history --events" "scan"; do
  # shellcheck disable=SC2086
  ds $cmd --json 2>/dev/null | python3 -c 'import json,sys; json.load(sys.stdin)' ||
    bad "$cmd --json is not valid JSON"
done
st_exit scan_bad_names
