#!/usr/bin/env bash
# The engine runs the servers of one `sync --all` in parallel (issue 8):
#  - 10 file:// servers through the agent over a slow link (0.5 MB/s each):
#    with max_servers = 10 their run records overlap (every run started
#    before any ended) and all are byte-exact;
#  - the same with transport = local (the receiver in the console);
#  - [console] max_servers = 1, or [site] max_servers = 1 for servers of one
#    site, runs them one after another (each starts after the previous
#    one ended).
set -uo pipefail
. "$(dirname "$0")/lib/sync.bash"
st_init engine_parallel
export DISTSYNC_TEST_NO_FSYNC=1 DISTSYNC DS_SLOW_BPS=500000
store=$tmp/store
mkdir -p "$store/patches" "$store/engines"
for i in 1 2; do head -c 500000 /dev/urandom >"$store/patches/p$i.bin"; done
head -c 3000 /dev/urandom >"$store/engines/small.dat"

# conf FILE TRANSPORT MAX N [SITE_MAX]: N servers (in site s when SITE_MAX)
conf() {
  local f=$1 tr=$2 max=$3 n=$4 smax=${5:-} i
  printf '[console]\nstore = %s\nstate = %s\nmax_servers = %s\n' "$store" "$tmp/state-$tr-$max$smax" "$max" >"$f"
  [ -n "$smax" ] && printf '\n[site s]\nmax_servers = %s\n' "$smax" >>"$f"
  for i in $(seq 1 "$n"); do
    mkdir -p "$tmp/t-$tr-$max$smax-$i"
    printf '\n[server s%s]\nurl = file://%s\ntransport = %s\nclasses = patches engines\n' \
      "$i" "$tmp/t-$tr-$max$smax-$i" "$tr" >>"$f"
    [ "$tr" = agent ] && printf 'agent = %s\n' "$DS_SRC/tests/func/lib/slow_agent.py" >>"$f"
    [ -n "$smax" ] && printf 'site = s\n' >>"$f"
  done
  return 0
}
# runs CONF: "server start end" per run, oldest first (unix seconds)
runs() {
  "$DISTSYNC" -c "$1" history --json --limit 100 | python3 -c 'import json,sys
d=json.load(sys.stdin); rs=d if isinstance(d,list) else d["runs"]
for r in sorted(rs, key=lambda r: r["id"]):
    import time, datetime
    e=r["ended_at"]
    end=r["started_at_unix"]+int(round(r["duration_s"] or 0))
    print(r["server"], r["started_at_unix"], r["started_at_unix"]+(r["duration_s"] or 0), r["status"])'
}
# sync_all CONF WHAT: sync --all succeeds; every target byte-exact
sync_all() {
  local out
  out=$("$DISTSYNC" -c "$1" sync --all 2>&1) || bad "$2: sync --all failed: $(echo "$out" | tail -5)"
  for t in "$tmp"/t-"$3"-*; do st_check_converged "$store" "$t" "$2: $(basename "$t")"; done
}

# 10 agents, max_servers 10: every run starts before any ends
conf "$tmp/a10.conf" agent 10 10
t0=$(date +%s%N)
sync_all "$tmp/a10.conf" "agent, max_servers 10" agent-10
ms=$((($(date +%s%N) - t0) / 1000000))
echo "10 agent servers x 1 MB at 0.5 MB/s, max_servers 10: $ms ms"
runs "$tmp/a10.conf" >"$tmp/r10"
python3 - "$tmp/r10" <<'PY' || fail=1
import sys
rs = [l.split() for l in open(sys.argv[1])]
st = [float(r[1]) for r in rs]; en = [float(r[2]) for r in rs]
if len(rs) != 10 or any(r[3] != "ok" for r in rs):
    print(f"FAIL: want 10 ok runs: {rs}", file=sys.stderr); sys.exit(1)
if max(st) >= min(en):
    print(f"FAIL: runs did not overlap (last start {max(st)}, first end {min(en)}): {rs}", file=sys.stderr); sys.exit(1)
PY

# the same through the in-process receiver
conf "$tmp/l10.conf" local 10 10
sync_all "$tmp/l10.conf" "local, max_servers 10" local-10
runs "$tmp/l10.conf" | awk '$4 != "ok" {print}' | grep -q . && bad "local: a run is not ok: $(runs "$tmp/l10.conf")"

# serial: max_servers 1 globally, or 1 in the servers' site (3 servers)
serial() { # CONF WHAT DIRTAG
  sync_all "$1" "$2" "$3"
  runs "$1" >"$tmp/r1"
  python3 - "$tmp/r1" "$2" <<'PY' || fail=1
import sys
rs = [l.split() for l in open(sys.argv[1])]
if len(rs) != 3:
    print(f"FAIL: {sys.argv[2]}: want 3 runs: {rs}", file=sys.stderr); sys.exit(1)
for a, b in zip(rs, rs[1:]):
    if float(b[1]) < float(a[2]) - 1:  # whole seconds: a start may share the previous end's second
        print(f"FAIL: {sys.argv[2]}: {b[0]} started before {a[0]} ended: {rs}", file=sys.stderr); sys.exit(1)
PY
}
conf "$tmp/a1.conf" agent 1 3
serial "$tmp/a1.conf" "[console] max_servers 1" agent-1
conf "$tmp/s1.conf" agent 10 3 1
serial "$tmp/s1.conf" "[site] max_servers 1" agent-101
st_exit engine_parallel
