#!/usr/bin/env bash
# A stalled console must not block a server forever. Console A starts a sync
# (lease_ttl = 5) and is frozen mid-sync with SIGSTOP (the console and, with
# transport = agent, its agent process, which keeps holding the lock).
#  - While A's lease is valid, console B is refused with a message naming
#    A's console id (read from the lease file), not "console ?".
#  - Once it expired, B takes the lease over and its sync succeeds.
#  - Resumed with SIGCONT, A must not publish anything more: it fails, and
#    the target still equals B's store byte for byte (A's store holds other
#    contents at the same paths), with nothing left in .distsync/tmp.
# Both transports.
set -uo pipefail
. "$(dirname "$0")/lib/sync.bash"
st_init sync_lease_takeover
sa=$tmp/store-a sb=$tmp/store-b
st_gen "$sa" 0 "$tmp/known" --files 400 --max 160 || bad "mkstore"
cp -a "$sa" "$sb"
find "$sb" -type f -exec sh -c 'for f; do echo "console B version" >>"$f"; done' sh {} +

takeover() {
  local tr=$1 t=$tmp/t-$1 pa ra=0 rb=0 agents ida
  rm -rf "$t" "$tmp/state-a" "$tmp/state-b"
  mkdir -p "$t"
  for x in a b; do
    local st=$sa
    [ $x = b ] && st=$sb
    st_conf "$tmp/$x.conf" "$st" "$tmp/state-$x" srv "file://$t" "$tr"
    sed -i 's/^\[console\]$/[console]\nlease_ttl = 5/' "$tmp/$x.conf"
    "$DISTSYNC" -c "$tmp/$x.conf" scan >/dev/null 2>&1 || bad "$tr: scan $x"
  done
  "$DISTSYNC" -c "$tmp/a.conf" sync srv >"$tmp/a.out" 2>"$tmp/a.err" &
  pa=$!
  st_pids+=("$pa")
  for _ in $(seq 1 2000); do
    [ -s "$t/.distsync/lease" ] && [ -n "$(ls "$t/defs" "$t/patches" "$t/engines" "$t/definitions" 2>/dev/null | head -3)" ] && break
    sleep 0.005
  done
  agents=$(pgrep -P "$pa" 2>/dev/null | tr '\n' ' ')
  kill -STOP "$pa" $agents 2>/dev/null
  if ! kill -0 "$pa" 2>/dev/null || [ ! -s "$t/.distsync/lease" ]; then
    bad "$tr: console A finished before it could be stopped mid-sync (test too small)"
    kill -CONT "$pa" $agents 2>/dev/null
    wait "$pa"
    return
  fi
  ida=$(sed -n 's/^console //p' "$t/.distsync/lease")
  echo "  $tr: console A ($ida, pid $pa, agent: ${agents:-none}) stopped mid-sync"

  # A's lease is still valid: B is refused and told who holds the server.
  "$DISTSYNC" -c "$tmp/b.conf" sync srv >"$tmp/b1.out" 2>"$tmp/b1.err" && bad "$tr: B synced while A's lease was valid"
  grep -qF "being synced by console $ida" "$tmp/b1.err" "$tmp/b1.out" ||
    bad "$tr: B's refusal does not name console A ($ida): $(head -c 400 "$tmp/b1.err")"

  # A's lease expires (ttl 5 s, renewed at most 5 s ago): B takes it over.
  sleep 6
  timeout 120 "$DISTSYNC" -c "$tmp/b.conf" sync srv >"$tmp/b.out" 2>"$tmp/b.err" || rb=$?
  [ "$rb" = 0 ] || bad "$tr: B could not take over the expired lease (exit $rb): $(head -c 600 "$tmp/b.err")"
  st_check_converged "$sb" "$t" "$tr: after B's takeover"

  # A resumes: it has lost the lease and must not write anything more.
  kill -CONT "$pa" $agents 2>/dev/null
  wait "$pa" || ra=$?
  echo "  $tr: console A exit $ra after SIGCONT: $(head -c 300 "$tmp/a.err" | tr '\n' ' ')"
  [ "$ra" != 0 ] || bad "$tr: console A reported success after losing its lease"
  st_check_converged "$sb" "$t" "$tr: after A resumed (A wrote after losing the lease)"
  [ "${STOP_AFTER_A:-0}" = 1 ] && return
  # And the server is usable again: a rerun of B is clean.
  "$DISTSYNC" -c "$tmp/b.conf" sync srv >/dev/null 2>"$tmp/b2.err" || bad "$tr: B's rerun failed: $(head -c 400 "$tmp/b2.err")"
  st_check_converged "$sb" "$t" "$tr: B's rerun"
}

for tr in agent local; do
  takeover $tr
done
st_exit "sync_lease_takeover"
