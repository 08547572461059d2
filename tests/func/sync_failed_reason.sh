#!/usr/bin/env bash
# A server with a failed file names that file and why in its one-line
# result, not only a count: through a running daemon the CLI prints no
# per-file warning (those go to the daemon's log), so "server s1: 1 file
# failed" alone told the operator nothing (a full disk, a directory in the
# way). The result, history's ERROR column and the daemon's run carry the
# first failed file and its reason; with more than one, "first: ".
set -uo pipefail
. "$(dirname "$0")/lib/sync.bash"
. "$(dirname "$0")/lib/engine.bash"
. "$(dirname "$0")/lib/daemon.bash"
st_init sync_failed_reason

state=$tmp/state
conf=$tmp/d.conf
en_fill "$tmp/store" 3 4096
en_head "$conf" "$tmp/store" "$state"
en_server "$conf" s1 "$tmp/t1" local
en_server "$conf" s2 "$tmp/t2" local
ds() { "$DISTSYNC" -c "$conf" "$@"; }
ds scan >/dev/null 2>&1 || bad "scan failed"
# a directory where a file must go: the receiver refuses to replace it
mkdir -p "$tmp/t1/patches/f1.bin" "$tmp/t2/patches/f1.bin" "$tmp/t2/patches/f2.bin"
why='patches/f1.bin: destination is a directory'

# ---- standalone ----
st_expect_ds 4 "server s1: 1 file failed ($why" sync s1
st_expect_ds 4 "server s2: 2 files failed (first: patches/f" sync s2
ds history s1 --limit 1 >"$tmp/h" 2>&1
grep -q "1 file failed ($why" "$tmp/h" || bad "history's error lacks the reason: $(cat "$tmp/h")"

# ---- through the daemon (its per-file warnings stay in its log) ----
dm_start "$tmp/daemon.log" 2026-03-10T12:00:00Z 1
dm_wait "$tmp/daemon.log" 'API on' 20
ds sync s1 >"$tmp/out" 2>&1
rc=$?
[ "$rc" = 4 ] || bad "sync through the daemon: exit $rc: $(cat "$tmp/out")"
grep -q 'through the daemon' "$tmp/out" || bad "sync did not go through the daemon: $(cat "$tmp/out")"
grep -q "sync s1: FAILED.*server s1: 1 file failed ($why" "$tmp/out" ||
  bad "sync through the daemon does not say which file failed and why: $(cat "$tmp/out")"
ds sync s1 --json >"$tmp/json" 2>/dev/null
python3 - "$tmp/json" "$why" <<'PY' || bad "sync --json's error lacks the reason: $(cat "$tmp/json")"
import json, sys
o = json.load(open(sys.argv[1]))
err = o["servers"][0]["error"]
sys.exit(0 if sys.argv[2] in err else 1)
PY
dm_stop
exit $fail
