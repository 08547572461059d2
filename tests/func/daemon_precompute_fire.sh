#!/usr/bin/env bash
# "Patch Tuesday + N days" with [console] precompute = yes: the daemon's
# anchor scan (the end of Patch Tuesday) starts the precompute, so the
# scheduled fire two days later finds every delta it sends cached.
#  - `monthly second tuesday +2 days 02:00` UTC over s1 and s2: anchor
#    2026-03-11T00:00Z, fire 2026-03-12T02:00Z; three 1 MiB "binaries"
#    rebuilt (a byte changed every 4 KiB) since both servers were synced;
#  - at the anchor: the anchor scan, then the precompute after it: 2
#    servers, 3 deltas, 3 computed;
#  - restarted just before the fire: the fire runs, recorded ok; its run
#    (GET /v1/runs/ID) computed 0 deltas; both targets converge.
# On a daemon that does not precompute, the fire computes the 3 deltas.
set -uo pipefail
. "$(dirname "$0")/lib/sync.bash"
. "$(dirname "$0")/lib/engine.bash"
. "$(dirname "$0")/lib/daemon.bash"
. "$(dirname "$0")/lib/api.bash"
st_init daemon_precompute_fire

store=$tmp/store
state=$tmp/state
conf=$tmp/d.conf
sock=$state/distsync.sock
mkdir -p "$store/engines" "$store/patches" "$store/definitions"
echo p >"$store/patches/p.txt"
echo d >"$store/definitions/d.txt"
gen() { # gen OUT SEED FLIP: 1 MiB pseudo-random; FLIP 1 changes a byte every 4 KiB
  python3 - "$1" "$2" "$3" <<'PY'
import random, sys
b = bytearray(random.Random(int(sys.argv[2])).randbytes(1 << 20))
if sys.argv[3] == "1":
    b[100::4096] = bytes(x ^ 0xA5 for x in b[100::4096])
open(sys.argv[1], "wb").write(b)
PY
}
for k in 1 2 3; do gen "$store/engines/f$k.bin" "$k" 0; done
en_head "$conf" "$store" "$state" "precompute = yes"
en_server "$conf" s1 "$tmp/t1" local
en_server "$conf" s2 "$tmp/t2" local
printf '\n[schedule patch]\nwhen = monthly second tuesday +2 days 02:00\ntz = UTC\nservers = s1 s2\n' >>"$conf"
"$DISTSYNC" -c "$conf" sync --all >/dev/null 2>"$tmp/sync1.err" || bad "first sync: $(head -c 300 "$tmp/sync1.err")"
for k in 1 2 3; do gen "$store/engines/f$k.bin" "$k" 1; done

log=$tmp/anchor.log
dm_start "$log" 2026-03-10T23:59:57Z 1
dm_wait "$log" 'run=patch@2026-03-12T02:00Z: anchor: scan generation [0-9]+ pinned' 30
dm_wait "$log" 'precompute=scan:[0-9]+: 2 servers, 3 deltas: 3 computed, 0 already cached, 0 failed' 120
dm_stop

log=$tmp/fire.log
dm_start "$log" 2026-03-12T01:59:57Z 1
dm_wait "$log" 'run=patch@2026-03-12T02:00Z: ok' 60 || st_exit daemon_precompute_fire
api GET "/v1/runs/patch@2026-03-12T02:00Z"
computed=$(jq_py 'j["deltas"]["computed"]') cached=$(jq_py 'j["deltas"]["cached"]')
echo "  the fire after the anchor's precompute: deltas computed $computed, cached $cached"
[ "$computed" = 0 ] || bad "the fire computed $computed deltas after the anchor's precompute, want 0: $body"
[ "$cached" -ge 3 ] 2>/dev/null || bad "the fire found $cached deltas cached, want 3 or more"
dm_stop
[ "$(dm_fires patch | tail -1 | cut -d'|' -f2)" = ok ] || bad "the fire is recorded $(dm_fires patch | tail -1)"
en_converged "$store" "$tmp/t1" "s1 after the fire"
en_converged "$store" "$tmp/t2" "s2 after the fire"
st_exit daemon_precompute_fire
