#!/usr/bin/env bash
# tools/upgrade-client against the real daemon's gate (issue 14): two
# endpoints, one slot (max_concurrent_upgrades = 1), a 1 min lease on the daemon's
# clock at 10x (6 s; the client heartbeats every second):
#  - A is granted, downloads the package from the named server's path
#    (file:// base with {server}), installs for 12 s (twice the lease:
#    only its heartbeats keep the slot) and reports success;
#  - B, started after 8 s, when A still holds the slot, waits (retry_after), then is granted
#    once A reported, and installs the same bytes;
#  - the gate counts 2 succeeded, 0 expired; A again is "up to date" (exit 0);
#  - C, with --fetch gate, downloads the package from the gate itself.
set -uo pipefail
. "$(dirname "$0")/lib/sync.bash"
. "$(dirname "$0")/lib/engine.bash"
. "$(dirname "$0")/lib/daemon.bash"
. "$(dirname "$0")/lib/api.bash"
st_init upgrade_client

gate_init 50000
mkdir -p "$tmp/srv/s1"
gate_console 'max_concurrent_upgrades = 1'
cat >>"$conf" <<CONF

[site paris]
clients = par-*

[server s1]
url = file://$tmp/srv/s1
site = paris
CONF
gate_rollout all 'par-*' 'lease = 1m'
gate_up upgrade_client 10 s1

cat >"$tmp/install" <<'SH'
#!/bin/sh
# install FILE VERSION: records what it installed, slowly for par-a
case $CLIENT in par-a) sleep 12 ;; esac
cp "$1" "$DEST/$CLIENT.bin" && echo "$2" >"$DEST/$CLIENT.version"
SH
chmod +x "$tmp/install"
srvbase="file://$tmp/srv/{server}"
uc() {
  CLIENT=$1 DEST=$tmp timeout 50 "$DS_SRC/tools/upgrade-client" --gate "http://127.0.0.1:$port" \
    --token-file "$tmp/entoken" --client "$1" --product agent --version "$2" \
    --fetch "${FETCH:-$srvbase}" --install "$tmp/install" --max-wait 40 --heartbeat 1
}
uc par-a 6.0 >"$tmp/a.out" 2>&1 &
apid=$!
st_pids+=("$apid")
sleep 8 # past the lease: only heartbeats still hold A's slot
uc par-b 6.0 >"$tmp/b.out" 2>&1 || bad "client B exited $?: $(cat "$tmp/b.out")"
wait "$apid" || bad "client A exited non-zero: $(cat "$tmp/a.out")"
grep -q 'granted 7.0 from s1 (engines/agent-7.0.msi)' "$tmp/a.out" || bad "A: $(cat "$tmp/a.out")"
grep -q 'waiting (position 1), retry in 15s' "$tmp/b.out" || bad "B did not wait: $(cat "$tmp/b.out")"
for c in par-a par-b; do
  cmp -s "$tmp/$c.bin" "$tmp/store/engines/agent-7.0.msi" || bad "$c did not install the package's bytes"
  [ "$(cat "$tmp/$c.version" 2>/dev/null)" = 7.0 ] || bad "$c installed no 7.0"
done
api_url=http://127.0.0.1:$port
api GET /v1/rollouts/agent "" -H "Authorization: Bearer $(cat "$tmp/optoken")"
[ "$(jq_py '(j["succeeded"], j["expired"], j["granted"], j["failed"])')" = "(2, 0, 0, 0)" ] ||
  bad "the gate's counts (A's heartbeats must keep its 6 s lease over 12 s): $body"
out=$(uc par-a 7.0 2>&1) || bad "A on 7.0 exited $?: $out"
echo "$out" | grep -q 'no upgrade: up to date' || bad "A on 7.0: $out"
# C downloads from the gate itself (GET /v1/upgrade/package/TOKEN)
FETCH=gate uc par-c 6.0 >"$tmp/c.out" 2>&1 || bad "client C (--fetch gate) exited $?: $(cat "$tmp/c.out")"
cmp -s "$tmp/par-c.bin" "$tmp/store/engines/agent-7.0.msi" || bad "C did not install the package's bytes from the gate"
dm_stop
st_exit upgrade_client
