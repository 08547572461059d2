#!/usr/bin/env bash
# The engine syncs many servers at once (issue 8, "Engine tests"):
#  - 50 file:// servers, 25 through the in-process receiver and 25 through
#    `distsync agent`, in one `sync --all`: every target equals the store
#    (diff -r) and its manifest records exactly the store's files; history
#    has one ok run per server with its wire bytes; the runs overlapped: a
#    watcher saw 2 or more targets leased at once (never more than the
#    default max_servers, 8) and two runs' [start, end] in history overlap;
#  - [console] max_servers = 1: a batch runs one server at a time (never
#    two leases at once, no two runs overlap);
#  - [site S] max_servers = 2: two of its servers at once, never three.
# Each server is capped at 8Mbit and gets 1.2 MB of incompressible data, so
# a run lasts over a second and the watcher (20 ms samples) sees it.
set -uo pipefail
. "$(dirname "$0")/lib/sync.bash"
. "$(dirname "$0")/lib/engine.bash"
st_init engine_many
store=$tmp/store
en_fill "$store" 4 300000

# servers CONF PREFIX N [LINE...]: N servers PREFIX1..N, odd ones in-process,
# even ones through the agent, each capped at 8Mbit; targets under $tmp/t.
servers() {
  local conf=$1 prefix=$2 n=$3 i tr
  shift 3
  for i in $(seq 1 "$n"); do
    tr=local
    [ $((i % 2)) = 0 ] && tr=agent
    en_server "$conf" "$prefix$i" "$tmp/t/$prefix$i" "$tr" "bandwidth = 8Mbit" "$@"
  done
}

# run_batch WHAT CONF PREFIX N: `sync --all` under the lease watcher; then
# every target must have converged; sets max_leases.
run_batch() {
  local what=$1 conf=$2 prefix=$3 n=$4 rc=0 t0 ms i roots=()
  for i in $(seq 1 "$n"); do roots+=("$tmp/t/$prefix$i"); done
  rm -f "$tmp/stop"
  en_watch "$tmp/stop" "$tmp/$what.watch" "${roots[@]}"
  t0=$(now_ms)
  "$DISTSYNC" -c "$conf" sync --all --json >"$tmp/$what.out" 2>"$tmp/$what.err" || rc=$?
  ms=$(($(now_ms) - t0))
  touch "$tmp/stop"
  wait "$watch_pid"
  max_leases=$(en_json "$tmp/$what.watch" 'd["max_leases"]')
  echo "$what: $n servers, exit $rc in $ms ms, at most $max_leases leased at once"
  if [ $rc != 0 ]; then
    bad "$what: sync --all exited $rc: $(head -c 600 "$tmp/$what.err")"
    return 1
  fi
  for i in $(seq 1 "$n"); do en_converged "$store" "$tmp/t/$prefix$i" "$what: $prefix$i"; done
}

# check_runs WHAT CONF N WANT: history has one ok run per server with at
# least the store's bytes on the wire; WANT "overlap" (some two runs
# overlap in time) or "serial" (none do). Whole seconds: a run that starts
# in the second another ends does not count as overlapping.
check_runs() {
  if ! "$DISTSYNC" -c "$2" history --json >"$tmp/$1.hist" 2>"$tmp/$1.herr"; then
    bad "$1: history --json failed: $(head -c 300 "$tmp/$1.herr")"
    return
  fi
  python3 - "$tmp/$1.hist" "$1" "$3" "$4" "$(en_bytes "$store")" <<'PY' || fail=1
import json, sys
runs, what, n, want, size = json.load(open(sys.argv[1])), sys.argv[2], int(sys.argv[3]), sys.argv[4], int(sys.argv[5])
bad = [f"{r['server']}: {r['status']} {r['error']}" for r in runs if r["status"] != "ok"]
if len(runs) != n or bad:
    sys.exit(f"FAIL: {what}: want {n} ok runs, history has {len(runs)}: {bad[:3]}")
low = [f"{r['server']}: {r['bytes_wire']}" for r in runs if r["bytes_wire"] < size]
if low:
    sys.exit(f"FAIL: {what}: runs with fewer wire bytes than the {size} bytes sent: {low[:3]}")
iv = [(r["started_at_unix"], r["started_at_unix"] + r["duration_s"], r["server"]) for r in runs]
pairs = [(a[2], b[2]) for i, a in enumerate(iv) for b in iv[i + 1:] if a[0] < b[1] and b[0] < a[1]]
print(f"{what}: {len(pairs)} pairs of runs overlap in history")
if want == "overlap" and not pairs:
    sys.exit(f"FAIL: {what}: no two runs overlap in time: the servers ran one after another")
if want == "serial" and pairs:
    sys.exit(f"FAIL: {what}: runs overlap although max_servers = 1: {pairs[:3]}")
PY
}

# 1. 50 servers, the default limits
many() {
  en_head "$tmp/a.conf" "$store" "$tmp/state-a"
  servers "$tmp/a.conf" s 50
  run_batch many "$tmp/a.conf" s 50 || return
  [ "$max_leases" -ge 2 ] || bad "many: never two servers leased at once: the batch ran serially"
  [ "$max_leases" -le 8 ] || bad "many: $max_leases servers leased at once, over the default max_servers 8"
  check_runs many "$tmp/a.conf" 50 overlap
}

# 2. [console] max_servers = 1
one_at_a_time() {
  en_head "$tmp/b.conf" "$store" "$tmp/state-b" "max_servers = 1"
  servers "$tmp/b.conf" one 4
  run_batch one "$tmp/b.conf" one 4 || return
  [ "$max_leases" = 1 ] || bad "one: $max_leases servers leased at once with max_servers = 1"
  check_runs one "$tmp/b.conf" 4 serial
}

# 3. [site S] max_servers = 2 (the console allows 8)
site_limit() {
  en_head "$tmp/c.conf" "$store" "$tmp/state-c"
  printf '\n[site lan]\nmax_servers = 2\n' >>"$tmp/c.conf"
  servers "$tmp/c.conf" site 5 "site = lan"
  run_batch site "$tmp/c.conf" site 5 || return
  [ "$max_leases" = 2 ] || bad "site: $max_leases servers of site lan leased at once, want 2 (its max_servers)"
  check_runs site "$tmp/c.conf" 5 overlap
}

many
one_at_a_time
site_limit
st_exit engine_many
