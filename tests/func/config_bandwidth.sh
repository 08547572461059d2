#!/usr/bin/env bash
# distsync config check and bandwidth caps: [console], [site NAME] (with
# tz =) and [server NAME] `bandwidth =` tables are validated (a bare number,
# overlapping windows, an unknown zone fail with file:line, section and
# key) and shown, in text and in --json.
set -euo pipefail
: "${DISTSYNC:?}" "${DS_SRC:?}"
tmp=$(mktemp -d "${DS_TEST_TMP:-/tmp}/config_bandwidth.XXXXXX" 2>/dev/null || mktemp -d)
trap 'rm -rf "$tmp"' EXIT
unset DISTSYNC_CONFIG
fail=0

expect() {
  local want=$1 needle=$2 out rc=0
  shift 2
  out=$("$DISTSYNC" "$@" 2>&1) || rc=$?
  if [ "$rc" != "$want" ] || [[ "$out" != *"$needle"* ]]; then
    echo "FAIL: distsync $* -> exit $rc (want $want), output:" >&2
    echo "$out" >&2
    echo "  expected to contain: $needle" >&2
    fail=1
  fi
}

mkdir -p "$tmp/s" # the store: config check requires it
cat >"$tmp/caps.conf" <<'CONF'
[console]
store = s
state = t
bandwidth = 1Gbit

[site lyon]
tz = Europe/Paris
bandwidth = 20Mbit; Mon-Fri 08:00-18:00 512kbit; Fri 22:00-06:00 200Mbit; Sun off

[server paris-1]
url = file:///x
site = lyon
bandwidth = 2MB

[server paris-2]
url = file:///y
site = lyon
CONF
expect 0 "bandwidth  global: 1Gbit" -c "$tmp/caps.conf" config check
expect 0 "bandwidth  site lyon: 20Mbit; Mon-Fri 08:00-18:00 512kbit; Fri 22:00-06:00 200Mbit; Sun off (windows in Europe/Paris)" \
  -c "$tmp/caps.conf" config check
expect 0 "bandwidth  server paris-1: 16Mbit" -c "$tmp/caps.conf" config check
expect 0 "(sync and the daemon pace by them; SIGHUP reloads them live)" -c "$tmp/caps.conf" config check
# it said "sync does not pace by them yet", false since the engine paces
if "$DISTSYNC" -c "$tmp/caps.conf" config check 2>&1 | grep -q "does not pace"; then
  echo "FAIL: config check says sync does not pace by the caps" >&2
  fail=1
fi
# config check requires the store: the example's, pointed at one that exists
# its smb:// server takes its credentials from the environment
export DISTSYNC_SMB_USER=distsync DISTSYNC_SMB_PASSWORD=example
sed "s|^store = .*|store = $tmp/s|" "$DS_SRC/conf/distsync.conf" >"$tmp/example.conf"
expect 0 "bandwidth  no caps" -c "$tmp/example.conf" config check
if command -v python3 >/dev/null; then
  "$DISTSYNC" -c "$tmp/caps.conf" config check --json | python3 -c '
import json, sys
d = json.load(sys.stdin)
assert d["console"]["bandwidth"]["default_bps"] == 10**9, d["console"]
lyon = d["sites"][0]
assert lyon["tz"] == "Europe/Paris", lyon
w = lyon["bandwidth"]["windows"]
assert [x["when"] for x in w] == ["Mon-Fri 08:00-18:00", "Fri 22:00-06:00", "Sun"], w
assert [x["bps"] for x in w] == [512000, 200000000, None], w
assert d["servers"][0]["bandwidth"]["default_bps"] == 16 * 10**6, d["servers"][0]
assert d["servers"][1]["bandwidth"] is None, d["servers"][1]
' || { echo "FAIL: --json caps" >&2; fail=1; }
fi

printf '[console]\nstore = s\nstate = t\nbandwidth = 20\n' >"$tmp/bare.conf"
expect 2 "bare.conf:4: [console] key 'bandwidth': rate '20' has no unit (write e.g. 20Mbit or 20MB" \
  -c "$tmp/bare.conf" config check

printf '[console]\nstore = s\nstate = t\n[site a]\nbandwidth = 20Mbit; Mon-Fri 08:00-18:00 512kbit; Fri 22:00-06:00 200Mbit; Sat-Sun off\n' >"$tmp/overlap.conf"
expect 2 "overlap.conf:5: [site a] key 'bandwidth': window 'Fri 22:00-06:00 200Mbit' overlaps window 'Sat-Sun off' (both cover Sat 00:00-06:00)" \
  -c "$tmp/overlap.conf" config check

printf '[console]\nstore = s\nstate = t\n[site a]\ntz = Mars/Base\n' >"$tmp/tz.conf"
expect 2 "tz.conf:5: [site a] key 'tz': unknown time zone 'Mars/Base'" -c "$tmp/tz.conf" config check

printf '[console]\nstore = s\nstate = t\n[server a]\nurl = file:///a\nbandwidth = 5 gigs\n' >"$tmp/unit.conf"
expect 2 "unit.conf:6: [server a] key 'bandwidth': " -c "$tmp/unit.conf" config check

exit $fail
