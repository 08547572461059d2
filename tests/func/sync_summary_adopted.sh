#!/usr/bin/env bash
# The sync summary line counts files adopted in place (the target already
# held their content: recorded, nothing sent) apart from updated ones, so
# "N updated" means N files moved: after the target's manifest is lost, a
# sync with one changed file says (0 new, 1 updated, 3 adopted, 0 deleted).
# A run that adopts nothing keeps the old line (no ", 0 adopted"). sync
# --json is unchanged: its "updated" still includes "adopted". Also through
# the agent.
set -uo pipefail
. "$(dirname "$0")/lib/sync.bash"
. "$(dirname "$0")/lib/engine.bash"
. "$(dirname "$0")/lib/daemon.bash"
. "$(dirname "$0")/lib/api.bash"
st_init sync_summary_adopted
store=$tmp/store
mkdir -p "$store/patches" "$store/engines" "$store/definitions"
for i in 1 2 3 4; do head -c 20000 /dev/urandom >"$store/patches/f$i.bin"; done

for tr in local agent; do
  t=$tmp/t-$tr
  mkdir -p "$t"
  st_conf "$tmp/$tr.conf" "$store" "$tmp/state-$tr" t "file://$t" "$tr"
  ds() { "$DISTSYNC" -c "$tmp/$tr.conf" "$@"; }
  ds scan >/dev/null || bad "$tr: scan"
  ds sync t >"$tmp/o1" 2>&1 || bad "$tr: first sync: $(cat "$tmp/o1")"
  grep -qF "sync t: ok, 4 files (4 new, 0 updated, 0 deleted)" "$tmp/o1" ||
    bad "$tr: first sync: $(cat "$tmp/o1")"
  # the manifest lost, one file changed on the target: 3 adopted, 1 sent
  rm -f "$t/.distsync/manifest"
  echo stale >"$t/patches/f4.bin"
  ds sync t >"$tmp/o2" 2>&1 || bad "$tr: resync: $(cat "$tmp/o2")"
  grep -qF "sync t: ok, 4 files (0 new, 1 updated, 3 adopted, 0 deleted)" "$tmp/o2" ||
    bad "$tr: adopted files not shown apart: $(cat "$tmp/o2")"
  cmp -s "$store/patches/f4.bin" "$t/patches/f4.bin" || bad "$tr: f4.bin not sent"
  # JSON: "updated" includes the adopted, as before
  rm -f "$t/.distsync/manifest"
  echo stale >"$t/patches/f4.bin"
  ds sync --json t >"$tmp/o3.json" 2>"$tmp/o3.err" || bad "$tr: resync --json: $(cat "$tmp/o3.err")"
  python3 - "$tmp/o3.json" <<'PY' || bad "$tr: JSON report: $(cat "$tmp/o3.json")"
import json, sys
s = json.load(open(sys.argv[1]))["servers"][0]
assert s["adopted"] == 3 and s["updated"] == 4 and s["created"] == 0, s
PY
done
# the daemon's line for the run says the same
conf=$tmp/local.conf t=$tmp/t-local log=$tmp/daemon.log
rm -f "$t/.distsync/manifest"
echo stale >"$t/patches/f4.bin"
dm_start "$log" 2026-03-10T00:00:00Z 1
api_wait_up "$log" || st_exit sync_summary_adopted
"$DISTSYNC" -c "$conf" sync t >"$tmp/o4" 2>&1 || bad "sync through the daemon: $(cat "$tmp/o4")"
dm_wait "$log" "server=t: ok, 0 new, 1 updated, 3 adopted, 0 deleted" 10
dm_stop
st_exit sync_summary_adopted
