#!/usr/bin/env bash
# A fan-out computes each delta once (issue 8, the console's CPU of a
# fan-out): 8 file:// servers sync an update of 4 files at once
# (max_servers = 8); they reach their send phase together, and the servers
# that want a delta another server's worker is computing wait for it
# instead of computing it again. `sync --json`'s deltas: computed 4 (one
# per changed file), the other 28 served from the cache; every target
# byte-exact. Once through the agent, once in-process (transport = local).
set -uo pipefail
. "$(dirname "$0")/lib/sync.bash"
st_init engine_delta_once
export DISTSYNC_TEST_NO_FSYNC=1 DISTSYNC
store=$tmp/store
n=8
files=4
mkdir -p "$store/patches"
for i in $(seq 1 $files); do head -c 6000000 /dev/urandom >"$store/patches/p$i.bin"; done

# fanout TRANSPORT: seeds n servers, edits every file, syncs them at once
fanout() {
  local tr=$1 conf=$tmp/$1.conf i out
  printf '[console]\nstore = %s\nstate = %s\nmax_servers = %s\n' "$store" "$tmp/state-$tr" $n >"$conf"
  for i in $(seq 1 $n); do
    mkdir -p "$tmp/t-$tr-$i"
    printf '\n[server s%s]\nurl = file://%s\ntransport = %s\nclasses = patches\n' \
      "$i" "$tmp/t-$tr-$i" "$tr" >>"$conf"
  done
  "$DISTSYNC" -c "$conf" sync --all >/dev/null 2>"$tmp/$tr.seed.err" ||
    bad "$tr: seeding sync failed: $(tail -3 "$tmp/$tr.seed.err")"
  python3 - "$store/patches" "$tr" <<'PY'
import os, sys
for f in sorted(os.listdir(sys.argv[1])):
    with open(os.path.join(sys.argv[1], f), "r+b") as h:  # two edits per file, new per transport
        for off in (1000000, 4000000):
            h.seek(off)
            h.write(os.urandom(4096))
PY
  out=$("$DISTSYNC" -c "$conf" sync --all --json 2>"$tmp/$tr.err") ||
    bad "$tr: sync --all failed: $(tail -5 "$tmp/$tr.err")"
  for i in $(seq 1 $n); do st_check_converged "$store" "$tmp/t-$tr-$i" "$tr: s$i"; done
  echo "$out" | python3 -c '
import json, sys
tr, n, files = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
d = json.load(sys.stdin)
dl = d["deltas"]
upd = sum(s["updated"] for s in d["servers"])
print(f"{tr}: {n} servers, {upd} updates: deltas computed {dl['"'"'computed'"'"']}, cached {dl['"'"'cached'"'"']}")
if upd != n * files:
    sys.exit(f"FAIL: {tr}: want {n * files} updates, got {upd}")
if dl["computed"] != files:
    sys.exit(f"FAIL: {tr}: want each of the {files} deltas computed once, got {dl['"'"'computed'"'"']} computations")
' "$tr" $n $files || fail=1
}

fanout agent
fanout local
st_exit engine_delta_once
