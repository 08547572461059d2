#!/usr/bin/env bash
# The upgrade gate's configuration and `distsync rollout` (issue 14):
#  - config check accepts [rollout], [ring], [package] and the upgrade caps,
#    and refuses an enrolment token file others may read, a members file
#    that is missing, a rollout naming an unknown ring (file:line:key);
#  - rollout list / status (text and --json): rings, counts, why a ring is
#    closed, and pre-staging: the target package on 0 of 2 servers, then
#    on 1 of 2 after `distsync sync s1` (the server's last-known manifest),
#    naming the servers not staged yet (text) and each server (--json);
#  - pause --reason / resume / promote, kept in the state database;
#    promote past the last ring and unknown rollouts exit 2.
set -uo pipefail
. "$(dirname "$0")/lib/sync.bash"
st_init rollout_cli

conf=$tmp/d.conf
mkdir -p "$tmp/store/engines" "$tmp/t1" "$tmp/t2"
head -c 100000 /dev/urandom >"$tmp/store/engines/agent-7.0.msi"
printf 'p-01\np-02\n# comment\np-03\n' >"$tmp/pilot.txt"
printf 'an-enrolment-token-of-32-chars!!\n' >"$tmp/token"
chmod 600 "$tmp/token"
cat >"$conf" <<CONF
[console]
store = $tmp/store
state = $tmp/state
max_concurrent_upgrades = 500
max_upgrade_bandwidth = 1Gbit

[site paris]
clients = par-*
max_concurrent_upgrades = 50
max_upgrade_bandwidth = 100Mbit

[server s1]
url = file://$tmp/t1
site = paris
max_concurrent_upgrades = 20

[server s2]
url = file://$tmp/t2
site = paris

[package agent-7]
product = agent
version = 7.0
path = engines/agent-7.0.msi
from = 6.0
soak = 24h

[ring pilot]
members_file = pilot.txt

[ring wide]
members = par-*

[rollout agent]
product = agent
version = 7.0
rings = pilot, wide
min_success = 95%
max_failure = 5%
client_rate = 2Mbit
lease = 15m
token_file = token
CONF

out=$("$DISTSYNC" -c "$conf" config check 2>&1) || bad "config check exited $?: $out"
chmod 644 "$tmp/token"
rc=0
out=$("$DISTSYNC" -c "$conf" config check 2>&1) || rc=$?
[ $rc = 2 ] || bad "config check with a 0644 token exited $rc"
echo "$out" | grep -q "d.conf:[0-9]*: \[rollout agent\] key 'token_file': .*token: mode 0644.*chmod 600" ||
  bad "config check does not refuse the readable token: $out"
chmod 600 "$tmp/token"
sed 's/^rings = pilot, wide/rings = pilot, wider/' "$conf" >"$tmp/bad.conf"
out=$("$DISTSYNC" -c "$tmp/bad.conf" config check 2>&1)
echo "$out" | grep -q "bad.conf:[0-9]*: \[rollout agent\] key 'rings': unknown ring 'wider'" ||
  bad "unknown ring not reported: $out"
sed 's/^members_file = pilot.txt/members_file = nope.txt/' "$conf" >"$tmp/bad.conf"
out=$("$DISTSYNC" -c "$tmp/bad.conf" config check 2>&1)
echo "$out" | grep -q "bad.conf:[0-9]*: \[ring pilot\] key 'members_file': cannot read '.*nope.txt': No such file" ||
  bad "missing members file not reported: $out"

out=$("$DISTSYNC" -c "$conf" rollout list 2>&1) || bad "rollout list exited $?: $out"
echo "$out" | grep -qE '^agent +agent +7.0 +active +granted 0 waiting 0' || bad "rollout list: $out"
out=$("$DISTSYNC" -c "$conf" rollout status agent 2>&1) || bad "rollout status exited $?: $out"
echo "$out" | grep -q 'staged on 0 of 2 servers (not yet: s1, s2)$' || bad "status before any sync: $out"
echo "$out" | grep -qE '^  pilot +3 +0' || bad "pilot ring (3 members from the file): $out"
echo "$out" | grep -q 'wide .*ring closed until ring pilot reaches min_success 95.00% (0 of 3 on 7.0)' ||
  bad "status does not say why wide is closed: $out"

"$DISTSYNC" -c "$conf" sync s1 >/dev/null 2>&1 || bad "sync s1 failed"
out=$("$DISTSYNC" -c "$conf" rollout status agent 2>&1)
echo "$out" | grep -q 'staged on 1 of 2 servers (not yet: s2)$' || bad "status after sync s1: $out"
out=$("$DISTSYNC" -c "$conf" rollout status agent --json 2>&1) || bad "status --json exited $?"
python3 - "$out" <<'PY' || bad "status --json: $out"
import json, sys
s = json.loads(sys.argv[1])
assert s["name"] == "agent" and s["state"] == "active", s
assert s["staged"] == 1 and s["servers"] == 2, s
assert s["staging"] == [{"server": "s1", "site": "paris", "staged": True},
                        {"server": "s2", "site": "paris", "staged": False}], s
assert [r["name"] for r in s["rings"]] == ["pilot", "wide"], s
assert s["rings"][0]["members"] == 3 and not s["rings"][1]["open"], s
PY

out=$("$DISTSYNC" -c "$conf" rollout pause agent --reason "change freeze" 2>&1) || bad "pause exited $?: $out"
out=$("$DISTSYNC" -c "$conf" rollout status agent 2>&1)
echo "$out" | grep -q '^rollout agent: agent 7.0, paused: change freeze' || bad "status after pause: $out"
out=$("$DISTSYNC" -c "$conf" rollout list --json 2>&1)
python3 -c 'import json,sys; l=json.loads(sys.argv[1]); assert l[0]["state"]=="paused" and l[0]["reason"]=="change freeze", l' "$out" ||
  bad "list --json after pause: $out"
"$DISTSYNC" -c "$conf" rollout resume agent >/dev/null 2>&1 || bad "resume failed"
out=$("$DISTSYNC" -c "$conf" rollout status agent 2>&1)
echo "$out" | grep -q '^rollout agent: agent 7.0, active' || bad "status after resume: $out"

"$DISTSYNC" -c "$conf" rollout promote agent >/dev/null 2>&1 || bad "promote failed"
out=$("$DISTSYNC" -c "$conf" rollout status agent 2>&1)
echo "$out" | grep -qE '^  wide .* open$' || bad "wide not open after promote: $out"
rc=0
out=$("$DISTSYNC" -c "$conf" rollout promote agent 2>&1) || rc=$?
[ $rc = 2 ] || bad "promote with every ring open exited $rc"
echo "$out" | grep -q 'every ring is open already' || bad "promote past the end: $out"
rc=0
out=$("$DISTSYNC" -c "$conf" rollout status nosuch 2>&1) || rc=$?
[ $rc = 2 ] || bad "status of an unknown rollout exited $rc"
echo "$out" | grep -q 'no \[rollout nosuch\]' || bad "unknown rollout: $out"
rc=0
"$DISTSYNC" -c "$conf" rollout frobnicate agent >/dev/null 2>&1 || rc=$?
[ $rc = 2 ] || bad "unknown action exited $rc"
# completion: the actions, then the configured rollouts
[ "$("$DISTSYNC" -c "$conf" complete rollouts)" = agent ] || bad "complete rollouts"
comp=$(dirname "$DISTSYNC")/doc/distsync.bash
out=$(bash -c ". '$comp'; COMP_WORDS=(distsync -c '$conf' rollout st); COMP_CWORD=4; PATH='$(dirname "$DISTSYNC")':\$PATH _distsync; echo \${COMPREPLY[*]}")
[ "$out" = status ] || bad "completion of 'rollout st': '$out'"
out=$(bash -c ". '$comp'; COMP_WORDS=(distsync -c '$conf' rollout status a); COMP_CWORD=5; PATH='$(dirname "$DISTSYNC")':\$PATH _distsync; echo \${COMPREPLY[*]}")
[ "$out" = agent ] || bad "completion of 'rollout status a': '$out'"
st_exit rollout_cli
