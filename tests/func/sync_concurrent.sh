#!/usr/bin/env bash
# Two consoles (two state directories) sync one file:// server at the same
# time, three rounds, transport=local then agent. Each time one of them
# either waits for the other or fails clearly with the lease message
# ("server ... is being synced by console ...", exit 5: busy); at least one succeeds;
# afterwards the target equals the store (diff -r) and .distsync/tmp is empty.
set -uo pipefail
. "$(dirname "$0")/lib/sync.bash"
st_init sync_concurrent
store=$tmp/store known=$tmp/known
st_gen "$store" 0 "$known" --files 36 --max 2048 || bad "mkstore"
gen=0

race() { # race TRANSPORT ROUND
  local tr=$1 t=$tmp/t-$1 ra=0 rb=0 pa pb
  st_conf "$tmp/a.conf" "$store" "$tmp/state-a" srv "file://$t" "$tr"
  st_conf "$tmp/b.conf" "$store" "$tmp/state-b" srv "file://$t" "$tr"
  mkdir -p "$t"
  "$DISTSYNC" -c "$tmp/a.conf" scan >/dev/null 2>&1 || bad "scan a"
  "$DISTSYNC" -c "$tmp/b.conf" scan >/dev/null 2>&1 || bad "scan b"
  "$DISTSYNC" -c "$tmp/a.conf" sync srv --json >"$tmp/a.out" 2>"$tmp/a.err" &
  pa=$!
  "$DISTSYNC" -c "$tmp/b.conf" sync srv --json >"$tmp/b.out" 2>"$tmp/b.err" &
  pb=$!
  st_pids+=("$pa" "$pb")
  wait "$pa" || ra=$?
  wait "$pb" || rb=$?
  echo "  $tr round $2: console a exit $ra, console b exit $rb"
  for x in a b; do
    local r=$ra
    [ $x = b ] && r=$rb
    if [ "$r" != 0 ] && [ "$r" != 5 ]; then
      bad "$tr round $2: console $x exit $r: $(head -c 400 "$tmp/$x.err")"
    elif [ "$r" = 5 ] && ! grep -q "being synced by console" "$tmp/$x.err" "$tmp/$x.out"; then
      bad "$tr round $2: console $x failed without the lease message: $(head -c 400 "$tmp/$x.err")"
    elif [ "$r" = 5 ] && ! grep -q "srv" "$tmp/$x.err"; then
      bad "$tr round $2: console $x's lease error does not name the server: $(head -c 400 "$tmp/$x.err")"
    fi
  done
  [ "$ra" = 0 ] || [ "$rb" = 0 ] || bad "$tr round $2: neither console succeeded"
  st_check_converged "$store" "$t" "$tr round $2"
}

for tr in local agent; do
  for round in 1 2 3; do
    race $tr $round
    gen=$((gen + 1))
    st_gen "$store" $gen "$known" || bad "mkstore"
  done
done
st_exit "sync_concurrent"
