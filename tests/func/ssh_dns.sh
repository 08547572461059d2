#!/usr/bin/env bash
# The DNS lookup of an ssh:// server is bounded by connect_timeout and never
# holds the other servers: a host under .invalid (RFC 6761: never resolves)
# fails with a message naming the server and the host; a lookup held back
# by the test hook DISTSYNC_TEST_DNS_DELAY_MS (a resolver that does not
# answer) fails within connect_timeout = 2s, naming server, host and
# connect_timeout, while a file:// server of the same run syncs.
set -uo pipefail
: "${DISTSYNC:?}" "${DS_SRC:?}"
source "$DS_SRC/tests/func/lib/sync.bash"
st_init ssh_dns
mkdir -p "$tmp/store/patches" "$tmp/state" "$tmp/local"
printf 'x\n' >"$tmp/store/patches/a.txt"
cat >"$tmp/d.conf" <<CONF
[console]
store = $tmp/store
state = $tmp/state
classes = patches

[server nowhere]
url = ssh://u@no-such-host.invalid:2222/srv/dist
known_hosts = $tmp/known_hosts
connect_timeout = 2s

[server local]
url = file://$tmp/local
CONF
ds() { "$DISTSYNC" -c "$tmp/d.conf" "$@"; }
ds scan >/dev/null || bad "scan"
now_ms() { date +%s%3N; }

rc=0
ds sync nowhere >"$tmp/o1" 2>"$tmp/e1" || rc=$?
[ "$rc" = 4 ] || bad "unresolvable host: exit $rc, expected 4: $(cat "$tmp/e1")"
cat "$tmp/o1" "$tmp/e1" >"$tmp/m1"
grep -q "server nowhere" "$tmp/m1" || bad "the error does not name the server: $(cat "$tmp/m1")"
grep -q "cannot resolve host 'no-such-host.invalid'" "$tmp/m1" ||
  bad "the error does not name the host: $(cat "$tmp/m1")"

# a resolver that does not answer for 20 s: failed at connect_timeout = 2s
rc=0
t0=$(now_ms)
DISTSYNC_TEST_DNS_DELAY_MS=20000 ds sync nowhere local >"$tmp/o2" 2>"$tmp/e2" || rc=$?
dt=$(($(now_ms) - t0))
echo "hung lookup: exit $rc after $dt ms"
[ "$rc" = 4 ] || bad "hung lookup: exit $rc, expected 4: $(cat "$tmp/e2")"
[ "$dt" -lt 6000 ] || bad "hung lookup: the run took $dt ms with connect_timeout = 2s"
cat "$tmp/o2" "$tmp/e2" >"$tmp/m2"
grep -q "server nowhere.*cannot resolve host 'no-such-host.invalid': no answer within connect_timeout = 2s" \
  "$tmp/m2" || bad "hung lookup: unclear message: $(cat "$tmp/m2")"
cmp -s "$tmp/store/patches/a.txt" "$tmp/local/patches/a.txt" ||
  bad "hung lookup: the file:// server of the same run was not synced"
st_exit ssh_dns
