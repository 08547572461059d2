#!/usr/bin/env bash
# Bandwidth caps are enforced (issue 8): a server with `bandwidth = 2Mbit`
# syncs 1.5 MB of incompressible data at about 2 Mbit/s: its achieved rate
# (the run's wire bytes over its elapsed time, from sync --json) is within
# 0.5x..1.1x of the cap, through the agent and through the in-process
# receiver. A generous band: no tight timing. A rate under the band is
# measured again, up to 3 times (a loaded box); over it fails at once.
set -uo pipefail
. "$(dirname "$0")/lib/sync.bash"
st_init engine_caps
export DISTSYNC_TEST_NO_FSYNC=1
store=$tmp/store
mkdir -p "$store/patches"
for i in 1 2 3; do head -c 500000 /dev/urandom >"$store/patches/p$i.bin"; done
# measure TR: a fresh sync through TR; prints the rate. Exit 0 in the band,
# 1 above it or short of bytes (a failure), 2 below it (the box was too
# busy to keep the link fed: a late wake-up loses the 5 ms bucket's tokens).
measure() {
  local tr=$1 out
  rm -rf "$tmp/t-$tr" "$tmp/state-$tr"
  mkdir -p "$tmp/t-$tr"
  out=$("$DISTSYNC" -c "$tmp/$tr.conf" sync --all --json 2>"$tmp/err") ||
    { bad "$tr: sync failed: $(head -c 600 "$tmp/err")"; return 1; }
  st_check_converged "$store" "$tmp/t-$tr" "$tr"
  python3 - "$tr" <<PY
import json, sys
r = json.loads('''$out''')["servers"][0]
bps = r["bytes_wire"] * 8 / r["elapsed_s"]
print(f"$tr: {r['bytes_wire']} wire bytes in {r['elapsed_s']:.2f} s: {bps/1e6:.3f} Mbit/s (cap 2 Mbit/s)")
if r["bytes_wire"] < 1400000:
    print(f"FAIL: $tr: only {r['bytes_wire']} bytes on the wire", file=sys.stderr); sys.exit(1)
if bps > 1.1 * 2e6:
    print(f"FAIL: $tr: achieved {bps/1e6:.3f} Mbit/s, over 1.1x a 2 Mbit/s cap", file=sys.stderr); sys.exit(1)
sys.exit(2 if bps < 0.5 * 2e6 else 0)
PY
}

# Over the cap fails at once; under 0.5x is measured again (3 tries, each
# a whole sync from scratch): the band is not widened, a busy moment is not
# taken for the limiter's fault.
for tr in agent local; do
  st_conf "$tmp/$tr.conf" "$store" "$tmp/state-$tr" capped "file://$tmp/t-$tr" "$tr"
  printf 'bandwidth = 2Mbit\n' >>"$tmp/$tr.conf"
  for try in 1 2 3; do
    rc=0
    measure "$tr" || rc=$?
    [ "$rc" = 2 ] || break
    echo "  $tr: try $try under 0.5x the cap (load $(cut -d' ' -f1 /proc/loadavg))"
  done
  [ "$rc" = 0 ] || bad "$tr: achieved rate out of 1.0..2.2 Mbit/s under a 2 Mbit/s cap (3 tries)"
done
st_exit engine_caps
