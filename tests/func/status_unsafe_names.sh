#!/usr/bin/env bash
# A file on the target whose name holds a control character (a newline,
# \x01) is extra content like any other: status, plan and status --json
# list it, escaped, and a sync with prune = yes leaves it alone (it is not
# in the manifest; st_conf sets prune = yes). The agent refuses to open such a name, and the failed
# HASH used to make the file vanish from every report.
set -uo pipefail
. "$(dirname "$0")/lib/sync.bash"
st_init status_unsafe_names
store=$tmp/store
mkdir -p "$store/patches" "$store/engines" "$store/definitions"
echo a >"$store/patches/a.txt"
for tr in local agent; do
  t=$tmp/t-$tr
  mkdir -p "$t"
  st_conf "$tmp/$tr.conf" "$store" "$tmp/state-$tr" t "file://$t" "$tr"
  ds() { "$DISTSYNC" -c "$tmp/$tr.conf" "$@"; }
  ds sync t >"$tmp/o1" 2>&1 || bad "$tr: first sync: $(cat "$tmp/o1")"
  python3 -c 'import sys; [open(sys.argv[1] + n, "w").write("x") for n in ("/patches/bad\x01name", "/patches/nl\nx")]' "$t"
  ds status t >"$tmp/st" 2>&1
  grep -qF 'extra    patches  patches/bad\x01name' "$tmp/st" || bad "$tr: status: no escaped bad\\x01name: $(cat "$tmp/st")"
  grep -qF 'extra    patches  patches/nl\nx' "$tmp/st" || bad "$tr: status: no escaped nl\\nx: $(cat "$tmp/st")"
  grep -q "2 extra" "$tmp/st" || bad "$tr: status counts: $(head -1 "$tmp/st")"
  ds plan t >"$tmp/plan" 2>&1
  grep -qF 'extra  patches/bad\x01name' "$tmp/plan" || bad "$tr: plan: $(cat "$tmp/plan")"
  ds status t --json >"$tmp/st.json" 2>/dev/null
  python3 - "$tmp/st.json" <<'PY' || bad "$tr: status --json: $(cat "$tmp/st.json")"
import json, sys
s = json.load(open(sys.argv[1]))[0]
assert sorted(e["path"] for e in s["extra"]) == ["patches/bad\x01name", "patches/nl\nx"], s["extra"]
assert s["counts"]["extra"] == 2, s["counts"]
PY
  ds sync t >"$tmp/o2" 2>&1 || bad "$tr: sync with the extra files: $(cat "$tmp/o2")"
  [ -f "$t/patches/bad"$'\x01'"name" ] && [ -f "$t/patches/nl"$'\n'"x" ] || bad "$tr: the sync removed an extra file"
done
st_exit status_unsafe_names
