#!/usr/bin/env bash
# The cost of a large rebuild is bounded (issue 9): a pair whose basis or
# target is over one zpatch window (DS_ZPATCH_WINDOW, 64 MiB) is encoded at
# zstd level DS_ZPATCH_LEVEL_BIG (9) at most, whatever delta_level says
# (default 19, about 0.9 MB/s on a rebuild: a 4 GiB file would take over an
# hour of console CPU).
#  - an 80 MiB file rebuilt in place (a byte changed every 4 KiB: no chunk
#    in common, every byte through zstd), synced at the default level;
#  - the sync's console CPU (user+sys) is under 30 s (level 19 took about
#    90 s on this file), the delta under 1% of the file, the target equal.
set -uo pipefail
. "$(dirname "$0")/lib/sync.bash"
. "$(dirname "$0")/lib/engine.bash"
st_init sync_zpatch_big_level
export DISTSYNC_TEST_NO_FSYNC=1
store=$tmp/store target=$tmp/t conf=$tmp/b.conf
mkdir -p "$store/engines" "$store/patches" "$store/definitions"
echo p >"$store/patches/p.txt"
echo d >"$store/definitions/d.txt"
gen() { # gen OUT SEED MIB REBUILT: pseudo-random; REBUILT=1 changes a byte every 4 KiB
  python3 - "$@" <<'PY'
import random, sys
out, seed, mib, rebuilt = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4] == "1"
b = bytearray(random.Random(seed).randbytes(mib << 20))
if rebuilt:
    b[100::4096] = bytes(x ^ 0xA5 for x in b[100::4096])
open(out, "wb").write(b)
PY
}
gen "$store/engines/big.bin" 1 80 0
en_head "$conf" "$store" "$tmp/state"
en_server "$conf" t "$target" local
ds() { "$DISTSYNC" -c "$conf" "$@"; }
ds scan >/dev/null 2>&1 && ds sync t >/dev/null 2>&1 || bad "first sync"
gen "$store/engines/big.bin" 1 80 1
ds scan >/dev/null 2>&1 || bad "scan (rebuilt)"
python3 -c 'import resource, subprocess, sys
rc = subprocess.run(sys.argv[2:]).returncode
r = resource.getrusage(resource.RUSAGE_CHILDREN)
open(sys.argv[1], "w").write("%.2f\n" % (r.ru_utime + r.ru_stime))
sys.exit(rc)' "$tmp/cpu" "$DISTSYNC" -c "$conf" sync t --no-scan --json >"$tmp/big.json" 2>"$tmp/big.err" ||
  bad "sync (rebuilt): $(head -c 300 "$tmp/big.err")"
cpu=$(cat "$tmp/cpu" 2>/dev/null || echo 999)
w=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["servers"][0]["bytes_wire"])' "$tmp/big.json" 2>/dev/null || echo -1)
echo "  80 MiB rebuilt at the default level: $w bytes on the wire, console CPU $cpu s"
python3 -c 'import sys; sys.exit(0 if float(sys.argv[1]) < 30 else 1)' "$cpu" ||
  bad "the sync of an 80 MiB rebuild cost $cpu s of console CPU (want under 30 s: level bounded for sources over 64 MiB)"
[ "$w" -gt 0 ] && [ "$w" -lt $((80 * 1048576 / 100)) ] || bad "80 MiB rebuild: $w bytes on the wire (want under 1% of the file)"
en_converged "$store" "$target" "80 MiB rebuild"
st_exit "an 80 MiB rebuild at the default level costs bounded console CPU"
