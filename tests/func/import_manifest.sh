#!/usr/bin/env bash
# Issue 15: distsync import-manifest SERVER FILE makes an offline server's
# manifest (ROOT/.distsync/manifest, carried back) the console's view of it:
#  - the server is brought up to date behind this console's back (another
#    console's sync, standing in for a bundle applied by agent --import),
#    then taken offline (its root moved away): `status` cannot read it
#    (exit 4), `status --offline` still reports the catalog's stale view
#    (the new and changed files missing or outdated, the deleted one extra);
#  - after import-manifest the offline report says what the live report
#    said just before the server went offline (every count), the import is
#    a run in history (its totals: created, updated, deleted since the
#    known manifest) whose event names the file;
#  - hostile input is refused naming the file, with nothing recorded: a
#    corrupt manifest (a flipped byte: the SHA-256 trailer), a truncated
#    one, a directory, a FIFO (no hang); an unknown server exits 2.
set -uo pipefail
. "$(dirname "$0")/lib/sync.bash"
st_init import_manifest
store=$tmp/store
st_gen "$store" 0 "$tmp/known" --files 12 --max 2048 || bad "mkstore"
mkdir -p "$tmp/t"
st_conf "$tmp/c.conf" "$store" "$tmp/state" srv "file://$tmp/t" local
ds() { "$DISTSYNC" -c "$tmp/c.conf" "$@"; }
counts() { grep -o '^status srv: .*files' "$1"; }
ds sync srv >/dev/null 2>&1 || bad "first sync"
st_expect_rc 0 "offline status right after a sync" ds status srv --offline

# the store moves on; the server is updated by someone else (offline site)
st_gen "$store" 1 "$tmp/known" --files 12 --max 2048 || bad "mkstore gen 1"
head -c 5000 /dev/urandom >"$store/patches/new-offline.bin"
sed "s|^state = .*|state = $tmp/other-state|" "$tmp/c.conf" >"$tmp/other.conf"
"$DISTSYNC" -c "$tmp/other.conf" sync srv >/dev/null 2>&1 || bad "the other console's sync"
head -c 4000 /dev/urandom >"$store/patches/still-missing.bin" # the server never got this one
ds scan >/dev/null 2>&1 || bad "scan"
st_expect_rc 6 "live status (one file still missing)" ds status srv --no-scan
counts "$tmp/out" >"$tmp/live"
grep -q "1 missing" "$tmp/live" || bad "live status: $(cat "$tmp/live")"
cp "$tmp/t/.distsync/manifest" "$tmp/carried-manifest"
mv "$tmp/t" "$tmp/t.away" # offline
st_expect_rc 4 "status of the offline server" ds status srv --no-scan
st_expect_rc 6 "offline status before the import (stale)" ds status srv --offline --no-scan
counts "$tmp/out" >"$tmp/stale"
cmp -s "$tmp/stale" "$tmp/live" && bad "the stale view already equals the live one (the test proves nothing)"
grep -q "new-offline.bin" "$tmp/out" || bad "stale view does not list the file the catalog never saw sent: $(cat "$tmp/out")"
ds history srv >"$tmp/h0" 2>&1

# hostile manifests first: each refused naming the file, nothing recorded
python3 - "$tmp/carried-manifest" "$tmp" <<'PY'
import os, sys
m, d = open(sys.argv[1], "rb").read(), sys.argv[2]
b = bytearray(m)
b[len(b) // 2] ^= 0x40
open(d + "/flipped", "wb").write(bytes(b))
open(d + "/truncated", "wb").write(m[: len(m) - 7])
open(d + "/empty", "wb").write(b"")
PY
mkdir "$tmp/adir"
mkfifo "$tmp/afifo"
for f in flipped truncated empty adir afifo; do
  st_expect_rc 1 "import of $f" timeout 20 "$DISTSYNC" -c "$tmp/c.conf" import-manifest srv "$tmp/$f"
  grep -q "import-manifest: $tmp/$f: " "$tmp/err" || bad "the refusal of $f does not name the file: $(cat "$tmp/err")"
done
st_expect_rc 2 "unknown server" ds import-manifest nosuch "$tmp/carried-manifest"
grep -q "unknown server 'nosuch'" "$tmp/err" || bad "unknown server not named: $(cat "$tmp/err")"
ds history srv >"$tmp/h1" 2>&1
cmp -s "$tmp/h0" "$tmp/h1" || bad "a refused import recorded something: $(diff "$tmp/h0" "$tmp/h1")"
st_expect_rc 6 "offline status after refused imports (unchanged)" ds status srv --offline --no-scan
counts "$tmp/out" | cmp -s - "$tmp/stale" || bad "a refused import changed the view"

# the import
st_expect_rc 0 "import-manifest" ds import-manifest srv "$tmp/carried-manifest"
grep -q "import-manifest srv: .* files recorded" "$tmp/out" || bad "import output: $(cat "$tmp/out")"
st_expect_rc 6 "offline status after the import" ds status srv --offline --no-scan
counts "$tmp/out" >"$tmp/imported"
cmp -s "$tmp/imported" "$tmp/live" || bad "after the import the offline view ($(cat "$tmp/imported")) is not the live one ($(cat "$tmp/live"))"
grep -q "missing .*still-missing.bin" "$tmp/out" || bad "the file the server lacks is not missing: $(cat "$tmp/out")"
ds history srv --json --events --limit 1 >"$tmp/h.json" 2>&1 || bad "history --json"
python3 - "$tmp/h.json" "$tmp/carried-manifest" <<'PY' || bad "the import's run in history: $(head -c 1500 "$tmp/h.json")"
import json, sys
runs = json.load(open(sys.argv[1]))
r = runs[0]
assert r["status"] == "ok", r
assert r["files_created"] >= 1 and r["files_updated"] >= 1, r
msgs = " ".join(e.get("message") or "" for e in r["events"])
assert sys.argv[2] in msgs, msgs
PY
st_exit import_manifest
