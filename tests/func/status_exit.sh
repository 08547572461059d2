#!/usr/bin/env bash
# Monitoring through `distsync status`: exit 6 while a sync would change a
# server (files missing), 0 once in sync, 3 when a target file drifted, 6
# again for a new store file or a file prune would delete (an extra file a
# sync leaves alone is not work: 0), and 4 when a server cannot be read; with
# --json the failed server is in the array with "status": "failed" and its
# error, next to the readable one.
set -uo pipefail
. "$(dirname "$0")/lib/sync.bash"
st_init status_exit
store=$tmp/store
st_gen "$store" 0 "$tmp/known" --files 12 --max 2048 || bad "mkstore"
mkdir -p "$tmp/t"
st_conf "$tmp/c.conf" "$store" "$tmp/state" srv "file://$tmp/t" local
ds() { "$DISTSYNC" -c "$tmp/c.conf" "$@"; }
ds scan >/dev/null 2>&1 || bad scan
st_expect_rc 6 "before the first sync (missing files)" ds status srv
st_expect_rc 6 "before the first sync, --json" ds status srv --json
ds sync srv >/dev/null 2>&1 || bad "sync"
st_expect_rc 0 "in sync" ds status srv
st_expect_rc 0 "in sync, --json" ds status --json
grep -q '"status": *"ok"' "$tmp/out" || bad "in sync JSON lacks status ok: $(head -c 300 "$tmp/out")"
f=$(cd "$tmp/t" && find . -path ./.distsync -prune -o -type f -print | head -1)
echo "changed behind distsync's back" >>"$tmp/t/$f"
st_expect_rc 3 "drifted file" ds status srv
ds sync srv >/dev/null 2>&1 || bad "sync after drift"
st_expect_rc 0 "in sync after repair" ds status srv
echo "not distsync's" >"$tmp/t/patches/foreign-note.txt"
st_expect_rc 0 "a foreign extra file (a sync leaves it)" ds status srv
grep -q "1 extra" "$tmp/out" || bad "foreign file not reported extra: $(cat "$tmp/out")"
head -c 999 /dev/urandom >"$store/patches/new-status-exit.bin"
st_expect_rc 6 "new store file (pending)" ds status srv
ds sync srv >/dev/null 2>&1 || bad "sync of the new file"
rm "$store/patches/new-status-exit.bin"
st_expect_rc 6 "a file prune would delete (pending)" ds status srv
ds sync srv >/dev/null 2>&1 || bad "sync of the deletion"
st_expect_rc 0 "in sync after the prune" ds status srv
# a server that cannot be read: exit 4, in the JSON with its error
printf '\n[server gone]\nurl = file://%s/no/such/root\n' "$tmp" >>"$tmp/c.conf"
st_expect_rc 4 "unreadable server" ds status --json
python3 - "$tmp/out" <<'PY' || bad "status --json with a failed server: $(head -c 600 "$tmp/out")"
import json, sys
a = json.load(open(sys.argv[1]))
by = {s["server"]: s for s in a}
assert set(by) == {"srv", "gone"}, by.keys()
assert by["gone"]["status"] == "failed" and by["gone"]["error"], by["gone"]
assert by["srv"]["status"] == "ok" and by["srv"]["error"] is None
PY
st_expect_rc 4 "unreadable server, text" ds status
grep -q "gone" "$tmp/err" || bad "the failed server's error does not name it: $(cat "$tmp/err")"
grep -q "^status gone: FAILED: " "$tmp/out" || bad "the text report has no line for the failed server: $(cat "$tmp/out")"
st_exit status_exit
