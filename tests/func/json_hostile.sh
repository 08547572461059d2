#!/usr/bin/env bash
# Issue 13: one JSON writer (jansson under include/distsync/json.h) for the
# CLI and the daemon's API. Hostile text reaches --json from three real
# sources: file names on a target (status lists them as extra), a freeze
# reason (sync --json's error, GET /v1/servers' frozen.reason) and a
# server URL in the configuration (config check --json).
# Quotes, backslashes, C0 controls, DEL, C1 controls, non-ASCII and bytes
# that are not UTF-8: every document parses with Python's json.loads,
# holds no raw control byte, and gives each string back as Python decodes
# its bytes with errors="replace" (U+FFFD per maximal invalid subpart,
# the README's policy); valid UTF-8 comes back exactly.
set -uo pipefail
. "$(dirname "$0")/lib/sync.bash"
. "$(dirname "$0")/lib/engine.bash"
. "$(dirname "$0")/lib/daemon.bash"
. "$(dirname "$0")/lib/api.bash"
st_init json_hostile

state=$tmp/state conf=$tmp/d.conf sock=$tmp/state/distsync.sock
en_fill "$tmp/store" 1 1000
en_head "$conf" "$tmp/store" "$state"
en_server "$conf" s1 "$tmp/t1" local
ds() { "$DISTSYNC" -c "$conf" "$@"; }
ds sync s1 >/dev/null 2>&1 || bad "first sync failed"

# names on the target, as raw bytes (hex, so bash never sees them); the
# receiver's listing leaves out names with a control character or a
# backslash (pathsafe.c), so those come through the reason
names=(7122756f7465 61ff62fe 7472756e63e282 737572eda080 6f76c0af 6631c2859f 636166c3a9f09f9880 61f09f98)
for h in "${names[@]}"; do
  python3 -c "import os,sys; open(os.fsencode(sys.argv[1]) + bytes.fromhex(sys.argv[2]), 'w').write('x')" \
    "$tmp/t1/patches/" "$h" || bad "cannot create the name $h"
done
reason=$(printf 'disk "swap"\\ \001\033[31m\177 \302\205 caf\303\251 \377\342\202 end')

# check FILE WHAT EXPR: FILE is JSON with no raw control byte, and the
# Python expression EXPR (d: the document) holds.
check() {
  python3 - "$@" "${names[@]}" <<'PY' || fail=1
import json, os, sys
path, what, expr, names = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
raw = open(path, "rb").read()
ctl = [i for i, b in enumerate(raw[:-1]) if b < 0x20 or b == 0x7f or (b == 0xC2 and raw[i + 1] < 0xA0)]
if ctl:
    sys.exit(f"FAIL: {what}: raw control bytes at {ctl[:5]}: {raw[:300]!r}")
d = json.loads(raw)
want = sorted("patches/" + bytes.fromhex(h).decode("utf-8", "replace") for h in names)
reason = os.environ["REASON"].encode("utf-8", "surrogateescape").decode("utf-8", "replace")
if not eval(expr):
    sys.exit(f"FAIL: {what}: {expr} is false for {raw[:1500]!r}\n  want names {want!r}\n  want reason {reason!r}")
PY
}
export REASON="$reason"
extra='sorted(f["path"] for f in (d[0] if isinstance(d, list) else d)["extra"]) == want'

ds status s1 --json >"$tmp/status.json" || bad "status --json exited $?"
check "$tmp/status.json" "status --json" "$extra"
ds freeze s1 --reason "$reason" >/dev/null || bad "freeze exited $?"
ds sync s1 --json >"$tmp/sync.json" 2>/dev/null
check "$tmp/sync.json" "sync --json of a frozen server" \
  'd["servers"][0]["status"] == "failed" and "(" + reason + ")" in d["servers"][0]["error"]'

# a server URL from the configuration (the parser refuses control
# characters, not C1 or bytes that are not UTF-8): config check --json,
# which wrote its own JSON before, without a UTF-8 check
url=$(printf 'file:///nowhere/c1\302\205 bad\377\342\202 "q\\')
python3 - "$conf" "$url" <<'PY'
import os, sys
with open(sys.argv[1], "ab") as f:
    f.write(b"\n[server s2]\nurl = " + os.fsencode(sys.argv[2]) + b"\ntransport = local\nclasses = patches\n")
PY
export URL="$url"
ds config check --json >"$tmp/config.json" || bad "config check --json exited $?"
check "$tmp/config.json" "config check --json" \
  '[s["url"] for s in d["servers"]] == [d["servers"][0]["url"], os.environ["URL"].encode("utf-8", "surrogateescape").decode("utf-8", "replace")]'

# the daemon's API writes through the same writer
log=$tmp/daemon.log
dm_start "$log" 2026-03-10T00:00:00Z 1
api_wait_up "$log" || st_exit json_hostile
api GET /v1/servers
expect 200 "GET /v1/servers"
printf '%s\n' "$body" >"$tmp/servers.json"
check "$tmp/servers.json" "GET /v1/servers" \
  'd["servers"][0]["frozen"]["reason"] == reason'
dm_stop
st_exit json_hostile
