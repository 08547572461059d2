#!/usr/bin/env bash
# Idle precompute (issue 9): `distsync scan --precompute` (or [console]
# precompute = yes) computes, after the scan, the deltas the servers' next
# syncs need (each changed file against the version the server holds, from
# the last-known manifests), each pair once whatever the number of servers,
# on worker threads; the sync after it computes no delta and costs the
# console little CPU.
#  - three 4 MiB "binaries" rebuilt (a byte changed every 4 KiB: no chunk in
#    common), one of them also renamed (lib.so.1 -> lib.so.2), two servers;
#  - scan --precompute --json: 2 servers planned, 3 pairs, 3 computed;
#    again: 3 already cached, 0 computed;
#  - sync --all --no-scan --force --json: "deltas" computed 0; its CPU (user+sys) is
#    under a third of the same sync from a second state directory that did
#    not precompute (which computes the 3 deltas itself);
#  - a config with precompute = yes: a plain scan precomputes; both
#    consoles' targets converge.
set -uo pipefail
. "$(dirname "$0")/lib/sync.bash"
. "$(dirname "$0")/lib/engine.bash"
st_init sync_precompute
store=$tmp/store
mkdir -p "$store/engines" "$store/patches" "$store/definitions"
echo p >"$store/patches/p.txt"
echo d >"$store/definitions/d.txt"
gen() { # gen OUT SEED REBUILT: 4 MiB pseudo-random; REBUILT=1 changes a byte every 4 KiB
  python3 - "$1" "$2" "$3" <<'PY'
import random, sys
b = bytearray(random.Random(int(sys.argv[2])).randbytes(4 << 20))
if sys.argv[3] == "1":
    b[100::4096] = bytes(x ^ 0xA5 for x in b[100::4096])
open(sys.argv[1], "wb").write(b)
PY
}
gen "$store/engines/a.bin" 1 0
gen "$store/engines/b.bin" 2 0
gen "$store/engines/lib.so.1" 3 0
en_head "$tmp/p.conf" "$store" "$tmp/state"
en_server "$tmp/p.conf" one "$tmp/t/one" local
en_server "$tmp/p.conf" two "$tmp/t/two" local
en_head "$tmp/c.conf" "$store" "$tmp/state2"
en_server "$tmp/c.conf" ctl "$tmp/t/ctl" local
st_full_deltas "$tmp/p.conf"
st_full_deltas "$tmp/c.conf"
for c in p c; do
  "$DISTSYNC" -c "$tmp/$c.conf" scan >/dev/null 2>&1 || bad "scan v1 ($c)"
  "$DISTSYNC" -c "$tmp/$c.conf" sync --all >/dev/null 2>&1 || bad "sync v1 ($c)"
done
gen "$store/engines/a.bin" 1 1
gen "$store/engines/b.bin" 2 1
rm "$store/engines/lib.so.1"
gen "$store/engines/lib.so.2" 3 1

j() { python3 -c 'import json,sys; d=json.load(open(sys.argv[1]))
for k in sys.argv[2].split("."): d=d[k]
print(d)' "$1" "$2" 2>/dev/null || echo -1; }
# cpu OUT CMD...: runs CMD, writes its user+sys CPU seconds to OUT
cpu() {
  local out=$1
  shift
  python3 -c 'import resource, subprocess, sys
rc = subprocess.run(sys.argv[2:]).returncode
r = resource.getrusage(resource.RUSAGE_CHILDREN)
open(sys.argv[1], "w").write("%.3f\n" % (r.ru_utime + r.ru_stime))
sys.exit(rc)' "$out" "$@"
}

"$DISTSYNC" -c "$tmp/p.conf" scan --precompute --json >"$tmp/pre.json" 2>"$tmp/pre.err" ||
  bad "scan --precompute: $(head -c 300 "$tmp/pre.err")"
echo "  scan --precompute: servers $(j "$tmp/pre.json" precompute.servers), pairs $(j "$tmp/pre.json" precompute.pairs)," \
  "computed $(j "$tmp/pre.json" precompute.computed) on $(j "$tmp/pre.json" precompute.threads) threads in $(j "$tmp/pre.json" precompute.elapsed_s) s"
[ "$(j "$tmp/pre.json" precompute.servers)" = 2 ] || bad "precompute planned $(j "$tmp/pre.json" precompute.servers) servers, want 2"
[ "$(j "$tmp/pre.json" precompute.pairs)" = 3 ] || bad "precompute found $(j "$tmp/pre.json" precompute.pairs) pairs, want 3 (one per changed file, once for both servers)"
[ "$(j "$tmp/pre.json" precompute.computed)" = 3 ] || bad "precompute computed $(j "$tmp/pre.json" precompute.computed), want 3"
[ "$(j "$tmp/pre.json" changed)" -ge 2 ] || bad "the scan part of the JSON is missing: $(head -c 300 "$tmp/pre.json")"
"$DISTSYNC" -c "$tmp/p.conf" scan --precompute --json >"$tmp/pre2.json" 2>/dev/null || bad "scan --precompute (again)"
[ "$(j "$tmp/pre2.json" precompute.cached)" = 3 ] && [ "$(j "$tmp/pre2.json" precompute.computed)" = 0 ] ||
  bad "a second precompute did not find the 3 deltas cached: $(cat "$tmp/pre2.json")"

cpu "$tmp/cpu.pre" "$DISTSYNC" -c "$tmp/p.conf" sync --all --no-scan --force --json >"$tmp/sync.json" 2>"$tmp/sync.err" ||
  bad "sync after precompute: $(head -c 300 "$tmp/sync.err")"
"$DISTSYNC" -c "$tmp/c.conf" scan >/dev/null 2>&1 || bad "scan v2 (control)"
cpu "$tmp/cpu.ctl" "$DISTSYNC" -c "$tmp/c.conf" sync --all --no-scan --force --json >"$tmp/ctl.json" 2>"$tmp/ctl.err" ||
  bad "control sync: $(head -c 300 "$tmp/ctl.err")"
pre=$(cat "$tmp/cpu.pre") ctl=$(cat "$tmp/cpu.ctl")
echo "  sync of 2 servers after precompute: deltas computed $(j "$tmp/sync.json" deltas.computed), cached $(j "$tmp/sync.json" deltas.cached), CPU $pre s;" \
  "control (1 server, no precompute): computed $(j "$tmp/ctl.json" deltas.computed), CPU $ctl s"
[ "$(j "$tmp/sync.json" deltas.computed)" = 0 ] || bad "the sync after precompute computed $(j "$tmp/sync.json" deltas.computed) deltas"
[ "$(j "$tmp/sync.json" deltas.cached)" -ge 3 ] || bad "the sync after precompute found $(j "$tmp/sync.json" deltas.cached) cached deltas"
[ "$(j "$tmp/ctl.json" deltas.computed)" = 3 ] || bad "the control sync computed $(j "$tmp/ctl.json" deltas.computed) deltas, want 3"
python3 -c 'import sys; sys.exit(0 if float(sys.argv[1]) * 3 < float(sys.argv[2]) else 1)' "$pre" "$ctl" ||
  bad "the sync after precompute cost $pre s of CPU, not under a third of the control's $ctl s"

# precompute = yes in the config: a plain scan precomputes
gen "$store/engines/a.bin" 4 0
sed -i 's/^\[console\]$/[console]\nprecompute = yes/' "$tmp/p.conf"
"$DISTSYNC" -c "$tmp/p.conf" scan >"$tmp/pre3.out" 2>&1 || bad "scan with precompute = yes: $(head -c 300 "$tmp/pre3.out")"
grep -q "^precompute: 2 servers, 1 delta.*1 computed" "$tmp/pre3.out" || bad "precompute = yes: $(cat "$tmp/pre3.out")"
"$DISTSYNC" -c "$tmp/p.conf" sync --all --no-scan --force >/dev/null 2>&1 || bad "last sync"
"$DISTSYNC" -c "$tmp/c.conf" scan >/dev/null 2>&1 && "$DISTSYNC" -c "$tmp/c.conf" sync --all --force >/dev/null 2>&1 || bad "last control sync"
for s in one two ctl; do en_converged "$store" "$tmp/t/$s" "server $s"; done
st_exit "scan --precompute: the next sync only sends"
