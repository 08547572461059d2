#!/usr/bin/env bash
# A run waits for its worker jobs before it ends; the warm-up (deltas
# computed while a run connects, sync_prefetch.c) must not make a run that
# failed or was cancelled wait for deltas nobody will send. Two 16 MiB text
# files changed in 2000 places (a delta of several seconds each, the
# BSDIFF candidate included), file:// targets with an agent:
# - the agent fails at once: the run fails, its warm-up jobs give up (no
#   delta in the cache, no "computing ... failed" error); before, the sync
#   waited for both deltas to be computed and cached;
# - an agent slow to start (2 s), the sync interrupted (SIGINT) after 1 s:
#   the jobs give up as well (nothing cached).
# Then a normal sync still computes both deltas and converges.
set -uo pipefail
: "${DISTSYNC:?}" "${DS_SRC:?}"
source "$DS_SRC/tests/func/lib/sync.bash"
st_init sync_warm_stop
export DISTSYNC_TEST_NO_FSYNC=1
store=$tmp/store
mkdir -p "$store/patches" "$tmp/t" "$tmp/state"
python3 - "$store/patches" <<'PY'
import os, random, sys
random.seed(1)
w = [b"patch ", b"engine ", b"definition ", b"server\n", b"site ", b"ring "]
for i in (1, 2):
    b = b"".join(random.choice(w) for _ in range(2400000))[:16 << 20]
    open(os.path.join(sys.argv[1], "f%d.txt" % i), "wb").write(b)
PY
for a in good failing slow; do
  case $a in
  good) body="exec \"$DISTSYNC\" \"\$@\"" ;;
  failing) body="exit 1" ;;
  slow) body="sleep 2; exec \"$DISTSYNC\" \"\$@\"" ;;
  esac
  printf '#!/bin/sh\n%s\n' "$body" >"$tmp/$a"
  chmod +x "$tmp/$a"
  printf '[console]\nstore = %s\nstate = %s\n\n[server a]\nurl = file://%s\n' \
    "$store" "$tmp/state" "$tmp/t" >"$tmp/$a.conf"
  printf 'transport = agent\nagent = %s\nclasses = patches\n' "$tmp/$a" >>"$tmp/$a.conf"
  st_full_deltas "$tmp/$a.conf" # 16 MiB full deltas take seconds: the wait shows
done
ds() { local c=$1; shift; "$DISTSYNC" -c "$tmp/$c.conf" "$@"; }
ds good sync --all >"$tmp/first.out" 2>&1 || bad "first sync failed: $(tail -3 "$tmp/first.out")"
python3 - "$store/patches" <<'PY'
import os, random, sys
random.seed(2)
for i in (1, 2):
    p = os.path.join(sys.argv[1], "f%d.txt" % i)
    b = bytearray(open(p, "rb").read())
    for _ in range(2000):
        o = random.randrange(len(b) - 8)
        b[o:o + 8] = b"CHANGED!"
    open(p, "wb").write(bytes(b))
PY
ds good scan >/dev/null 2>&1 || bad "scan"
cached() { find "$tmp/state/deltas" -type f -name '*.zp*' 2>/dev/null | wc -l; }

t0=$(date +%s%N)
ds failing sync --no-scan a >"$tmp/fail.out" 2>&1 && bad "a sync through a failing agent succeeded"
t1=$(date +%s%N)
echo "failed sync: $(((t1 - t0) / 1000000)) ms"
n=$(cached)
[ "$n" = 0 ] || bad "the failed run waited for its warm-up: $n deltas cached"
grep -i "computing.*failed" "$tmp/fail.out" && bad "a delta given up is reported as an error"

find "$tmp/state/deltas" -type f -name '*.zp*' -delete 2>/dev/null # each case on its own
"$DISTSYNC" -c "$tmp/slow.conf" sync --no-scan a >"$tmp/int.out" 2>&1 &
pid=$!
sleep 1
t0=$(date +%s%N)
kill -INT "$pid"
wait "$pid" && bad "an interrupted sync succeeded"
t1=$(date +%s%N)
echo "exit after SIGINT: $(((t1 - t0) / 1000000)) ms"
n=$(cached)
[ "$n" = 0 ] || bad "the interrupted run waited for its warm-up: $n deltas cached"

ds good sync --no-scan --json a >"$tmp/ok.json" 2>"$tmp/ok.err" || bad "sync failed: $(tail -3 "$tmp/ok.err")"
n=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["deltas"]["computed"])' "$tmp/ok.json")
[ "$n" = 2 ] || bad "the sync after computed $n deltas, 2 expected"
st_check_converged "$store" "$tmp/t" "a"
st_exit sync_warm_stop
