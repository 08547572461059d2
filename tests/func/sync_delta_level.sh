#!/usr/bin/env bash
# Run-now level override (issue 9): `distsync sync --fast` (zstd level 3)
# and `--delta-level N` compute this run's deltas at that level instead of
# [console] sync_delta_level (12 by default; delta_level, 19, is the level
# of the deltas computed ahead by scan --precompute: sync_run_level). The
# rule for the delta cache: an
# entry made at level L serves a run at level R <= L as it is; a run at a
# higher level recomputes it and replaces it, so a fast manual run never
# leaves the scheduled runs with its larger deltas.
#  - sync --fast a: one delta computed, its cache entry records level 3;
#  - sync b (default level): the level-3 entry is recomputed (relevelled 1),
#    the entry now records 12;
#  - sync --fast c: the level-12 entry is used (computed 0, cached 1);
#  - sync --delta-level 9 d: cached (12 >= 9);
#  - bad values exit 2 naming the option; every server converges.
set -uo pipefail
. "$(dirname "$0")/lib/sync.bash"
. "$(dirname "$0")/lib/engine.bash"
st_init sync_delta_level
store=$tmp/store conf=$tmp/l.conf
mkdir -p "$store/engines" "$store/patches" "$store/definitions"
echo p >"$store/patches/p.txt"
echo d >"$store/definitions/d.txt"
gen() { # gen OUT REBUILT: 4 MiB of pseudo-random code; REBUILT=1 changes a byte every 4 KiB
  python3 - "$1" "$2" <<'PY'
import random, sys
b = bytearray(random.Random(5).randbytes(4 << 20))
if sys.argv[2] == "1":
    b[100::4096] = bytes(x ^ 0xA5 for x in b[100::4096])
open(sys.argv[1], "wb").write(b)
PY
}
gen "$store/engines/lib.so" 0
en_head "$conf" "$store" "$tmp/state"
for s in a b c d; do en_server "$conf" "$s" "$tmp/t/$s" local; done
st_full_deltas "$conf"
ds() { "$DISTSYNC" -c "$conf" "$@"; }
ds scan >/dev/null 2>&1 || bad "scan v1"
ds sync --all >/dev/null 2>&1 || bad "sync v1"
gen "$store/engines/lib.so" 1
ds scan >/dev/null 2>&1 || bad "scan v2"

# deltas FILE KEY: a counter of the run's "deltas" object (-1 if absent)
deltas() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["deltas"][sys.argv[2]])' "$1" "$2" 2>/dev/null || echo -1; }
# entry_level: the zstd level in the trailer of the one zpatch cache entry,
# .zpd (stream version 1, protocol 3-4 receivers) or .zpb (version 2, BSDIFF
# records, protocol 5: the local receiver), whichever the receiver uses
entry_level() {
  python3 - "$tmp/state/deltas" <<'PY'
import glob, struct, sys
e = glob.glob(sys.argv[1] + "/*.zpd") + glob.glob(sys.argv[1] + "/*.zpb")
if len(e) != 1:
    print(f"entries:{len(e)}"); sys.exit()
t = open(e[0], "rb").read()[-32:]
print(struct.unpack(">Q", t[24:])[0] if t[:8] == b"DSDCSUM2" else "no-trailer")
PY
}
run() { # run NAME ARGS...: sync --json, output in $tmp/NAME.json
  local n=$1
  shift
  ds sync --json "$@" >"$tmp/$n.json" 2>"$tmp/$n.err" || bad "sync $*: $(head -c 300 "$tmp/$n.err")"
}
run a --fast a
echo "  --fast: computed $(deltas "$tmp/a.json" computed), entry level $(entry_level)"
[ "$(deltas "$tmp/a.json" computed)" = 1 ] || bad "sync --fast computed $(deltas "$tmp/a.json" computed) deltas, want 1"
[ "$(entry_level)" = 3 ] || bad "the --fast entry records level $(entry_level), want 3"
run b b
echo "  default: computed $(deltas "$tmp/b.json" computed), relevelled $(deltas "$tmp/b.json" relevelled), entry level $(entry_level)"
[ "$(deltas "$tmp/b.json" relevelled)" = 1 ] && [ "$(deltas "$tmp/b.json" computed)" = 1 ] ||
  bad "a default run did not recompute the level-3 entry: $(cat "$tmp/b.json")"
[ "$(entry_level)" = 12 ] || bad "after a default run the entry records level $(entry_level), want 12"
run c --fast c
[ "$(deltas "$tmp/c.json" computed)" = 0 ] && [ "$(deltas "$tmp/c.json" cached)" -ge 1 ] ||
  bad "sync --fast did not use the level-12 entry: $(cat "$tmp/c.json")"
run d --delta-level 9 d
[ "$(deltas "$tmp/d.json" computed)" = 0 ] && [ "$(deltas "$tmp/d.json" cached)" -ge 1 ] ||
  bad "sync --delta-level 9 did not use the level-12 entry: $(cat "$tmp/d.json")"
[ "$(entry_level)" = 12 ] || bad "a lower-level run replaced the entry (level $(entry_level))"

for args in "--delta-level 0" "--delta-level 23" "--fast --delta-level 5" "--delta-level x"; do
  rc=0
  # shellcheck disable=SC2086
  ds sync $args a >"$tmp/bad.out" 2>"$tmp/bad.err" || rc=$?
  [ "$rc" = 2 ] || bad "sync $args: exit $rc, want 2"
  grep -q -- "--delta-level\|--fast" "$tmp/bad.err" || bad "sync $args: the error does not name the option: $(head -c 200 "$tmp/bad.err")"
done
for s in a b c d; do en_converged "$store" "$tmp/t/$s" "server $s"; done
st_exit "sync --fast / --delta-level and the cached deltas' levels"
