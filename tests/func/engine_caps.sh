#!/usr/bin/env bash
# Bandwidth caps are enforced (issue 8): a server with `bandwidth = 2Mbit`
# syncs 1.5 MB of incompressible data at about 2 Mbit/s: its achieved rate
# (the run's wire bytes over its elapsed time, from sync --json) is within
# 0.5x..1.1x of the cap, through the agent and through the in-process
# receiver. A generous band: no tight timing.
set -uo pipefail
. "$(dirname "$0")/lib/sync.bash"
st_init engine_caps
export DISTSYNC_TEST_NO_FSYNC=1
store=$tmp/store
mkdir -p "$store/patches"
for i in 1 2 3; do head -c 500000 /dev/urandom >"$store/patches/p$i.bin"; done
for tr in agent local; do
  mkdir -p "$tmp/t-$tr"
  st_conf "$tmp/$tr.conf" "$store" "$tmp/state-$tr" capped "file://$tmp/t-$tr" "$tr"
  printf 'bandwidth = 2Mbit\n' >>"$tmp/$tr.conf"
  out=$("$DISTSYNC" -c "$tmp/$tr.conf" sync --all --json 2>"$tmp/err") ||
    bad "$tr: sync failed: $(head -c 600 "$tmp/err")"
  st_check_converged "$store" "$tmp/t-$tr" "$tr"
  python3 - "$tr" <<PY || fail=1
import json, sys
r = json.loads('''$out''')["servers"][0]
bps = r["bytes_wire"] * 8 / r["elapsed_s"]
print(f"$tr: {r['bytes_wire']} wire bytes in {r['elapsed_s']:.2f} s: {bps/1e6:.3f} Mbit/s (cap 2 Mbit/s)")
if r["bytes_wire"] < 1400000:
    print(f"FAIL: $tr: only {r['bytes_wire']} bytes on the wire", file=sys.stderr); sys.exit(1)
if not 0.5 * 2e6 <= bps <= 1.1 * 2e6:
    print(f"FAIL: $tr: achieved {bps/1e6:.3f} Mbit/s, want 1.0..2.2 under a 2 Mbit/s cap", file=sys.stderr); sys.exit(1)
PY
done
st_exit engine_caps
