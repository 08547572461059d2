#!/usr/bin/env bash
# A real WAN link: two sites, each a network namespace joined to the
# console's namespace by a veth pair shaped by tbf (site a 8 Mbit/s, site b
# 4 Mbit/s, both ends). The targets are `distsync agent` processes reached
# over the link: socat in the site's namespace runs `distsync agent --root
# DIR` per connection, and the server's `agent =` is a wrapper that ignores
# its arguments and runs `socat - TCP:SITE:PORT`. A relay in each site's
# namespace (lib/arrival.py) counts the bytes arriving from the link every
# 10 ms. Caps: site a 4Mbit, site b 2Mbit, global 5Mbit, all below the link
# rates; two servers per site synced by one `distsync sync --all`.
# Checks: the sync succeeds, every target equals the store (byte-exact), and
# after each site's first second no 1 s window of arrivals exceeds the
# site's cap by more than 10%, nor the sum of both sites the global cap;
# and each site's mean rate is at least half its cap (a cap is a limit, not
# a brake; the bench, bench/caps, measures how close it comes).
# Skips (exit 77, SKIP_RETURN_CODE) without root, network namespaces, tc or
# socat.
set -uo pipefail
. "$(dirname "$0")/lib/sync.bash"
. "$(dirname "$0")/lib/wan.bash"
skip() {
  echo "SKIP: wan_tbf: $*"
  exit 77
}
[ "$(id -u)" = 0 ] || skip "needs root to create network namespaces"
for t in ip tc ss socat python3 setsid; do
  command -v "$t" >/dev/null || skip "$t is missing (tools/setup installs it)"
done
why=$(wan_probe) || skip "$why"
ARRIVAL="$DS_SRC/tests/func/lib/arrival.py"

st_init wan_tbf
trap 'wan_cleanup; st_cleanup; [ "${KEEP:-0}" = 1 ] || rm -rf "$tmp"' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
chmod 755 "$tmp"

# three namespaces, two links
tag="dsw$$"
con="${tag}c"
wan_ns "$con" || bad "namespace $con"
declare -A site_ns site_link site_cap relay
site_link=([a]=8000000 [b]=4000000)
site_cap=([a]=4000000 [b]=2000000)
global_cap=5000000
i=0
for s in a b; do
  i=$((i + 1))
  site_ns[$s]="${tag}$s"
  wan_ns "${site_ns[$s]}" || bad "namespace ${site_ns[$s]}"
  wan_link "$con" "${site_ns[$s]}" "$i" "${site_link[$s]}" || bad "link to site $s"
done
[ "$fail" = 0 ] || st_exit wan_tbf

# the store: 12 files of random bytes (incompressible), about 1.5 MB
store=$tmp/store
st_gen "$store" 0 "$tmp/known" --files 12 --max 256 || bad "mkstore"
store_bytes=$(find "$store" -type f -printf '%s\n' | awk '{ n += $1 } END { print n }')
echo "store: $store_bytes bytes, to 4 servers"

conf=$tmp/ds.conf
printf '[console]\nstore = %s\nstate = %s\nbandwidth = 5Mbit\n' "$store" "$tmp/state" >"$conf"
printf '\n[site a]\nbandwidth = 4Mbit\n\n[site b]\nbandwidth = 2Mbit\n' >>"$conf"
i=0
declare -A ports
for s in a b; do
  i=$((i + 1))
  spec=()
  for n in 1 2; do
    srv=$s$n
    port=$((7000 + 10 * i + n)) # agent behind socat, on the site's loopback
    rport=$((8000 + 10 * i + n)) # the relay, on the link
    ports[$s]="${ports[$s]:+${ports[$s]},}$rport"
    mkdir -p "$tmp/t/$srv"
    wan_bg "${site_ns[$s]}" socat -t 60 "TCP-LISTEN:$port,bind=127.0.0.1,reuseaddr,fork" \
      "EXEC:$DISTSYNC agent --root $tmp/t/$srv" 2>>"$tmp/agent-$srv.err"
    printf '#!/bin/sh\n# ignores "agent --root DIR": the agent on the far side has its root\nexec socat -t 60 - TCP:10.213.%s.2:%s\n' \
      "$i" "$rport" >"$tmp/agent-$srv"
    chmod 755 "$tmp/agent-$srv"
    printf '\n[server %s]\nurl = file://%s\ntransport = agent\nagent = %s\nsite = %s\nclasses = patches engines definitions\n' \
      "$srv" "$tmp/t/$srv" "$tmp/agent-$srv" "$s" >>"$conf"
    spec+=("$rport:127.0.0.1:$port")
    wan_wait_port "${site_ns[$s]}" "$port" || bad "socat for $srv"
  done
  wan_bg "${site_ns[$s]}" python3 "$ARRIVAL" proxy "$tmp/arrival-$s.log" "${spec[@]}"
  relay[$s]=$wan_pid
  for p in ${ports[$s]//,/ }; do wan_wait_port "${site_ns[$s]}" "$p" || bad "relay port $p"; done
done
[ "$fail" = 0 ] || st_exit wan_tbf

"$DISTSYNC" -c "$conf" scan >/dev/null 2>"$tmp/scan.err" || bad "scan: $(cat "$tmp/scan.err")"
t0=$(date +%s.%N)
rc=0
# in the background: a signal to the test runs its trap (cleanup) at once
ip netns exec "$con" "$DISTSYNC" -c "$conf" sync --all --no-scan >"$tmp/sync.out" 2>"$tmp/sync.err" &
wait $! || rc=$?
t1=$(date +%s.%N)
echo "sync --all: exit $rc in $(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }') s"
[ "$rc" = 0 ] || bad "sync --all exit $rc: $(head -c 600 "$tmp/sync.err") $(head -c 300 "$tmp/sync.out")"
sleep 0.2
wan_stop "${relay[a]}"
wan_stop "${relay[b]}"

for s in a b; do
  for n in 1 2; do st_check_converged "$store" "$tmp/t/$s$n" "server $s$n"; done
done

# the caps: per site, then both sites together against the global cap
for s in a b; do
  python3 "$ARRIVAL" stats "$tmp/arrival-$s.log" --group "$s=${ports[$s]}@${site_cap[$s]}" \
    --skip 1 --margin 0.10 --min-mean 0.5 >"$tmp/stats-$s" 2>"$tmp/stats-$s.err" ||
    bad "site $s (link ${site_link[$s]} bit/s, cap ${site_cap[$s]} bit/s): $(cat "$tmp/stats-$s.err")"
  grep "^$s " "$tmp/stats-$s"
done
python3 "$ARRIVAL" stats "$tmp/arrival-a.log" "$tmp/arrival-b.log" \
  --group "total=${ports[a]},${ports[b]}@$global_cap" --skip 1 --margin 0.10 \
  >"$tmp/stats-total" 2>"$tmp/stats-total.err" ||
  bad "global cap $global_cap bit/s: $(cat "$tmp/stats-total.err")"
grep "^total " "$tmp/stats-total"
# every byte of the four servers crossed a link
arrived=$(awk '/^total /{print $2}' "$tmp/stats-total")
[ "${arrived:-0}" -ge $((4 * store_bytes)) ] ||
  bad "the relays counted ${arrived:-0} bytes, less than the 4 x $store_bytes the servers received"
st_exit wan_tbf
