#!/usr/bin/env bash
# The zstd level of a delta computed during a sync (sync_delta_level, 12 by
# default) against the level of the deltas computed ahead (delta_level, 19,
# by scan --precompute). A delta a sync computes itself delays its first
# server; level 12 costs a fraction of level 19's CPU (libc6's update: 1.18
# s against 3.03 s of CPU for 0.75% more bytes; README "Delta levels").
# Three 1 MiB text files with an edit every 40 lines:
#  - sync a (no delta cached): computes the 3 deltas, each cache entry's
#    trailer records level 12 (19 on the previous code);
#  - scan --precompute: recomputes the 3 at level 19 (relevelled);
#  - their bytes: the level-12 deltas are at most 25% larger than the
#    level-19 ones on this text (15-16% measured), and not smaller;
#  - sync b: computes none (the level-19 entries serve a level-12 run);
#  - sync_delta_level = 19 in the config: a sync computes at 19 again.
set -uo pipefail
. "$(dirname "$0")/lib/sync.bash"
. "$(dirname "$0")/lib/engine.bash"
st_init sync_run_level
store=$tmp/store conf=$tmp/l.conf
mkdir -p "$store/engines" "$store/patches" "$store/definitions"
echo p >"$store/patches/p.txt"
echo d >"$store/definitions/d.txt"
gen() { # gen OUT SEED VERSION: 1 MiB of source-like text; version 2 edits every 40th line
  python3 - "$@" <<'PY'
import random, sys
rnd = random.Random(int(sys.argv[2]))
words = ["".join(rnd.choice("abcdefghijklmnopqrstuvwxyz_") for _ in range(rnd.randint(2, 12)))
         for _ in range(3000)]
lines, n = [], 0
while n < (1 << 20):
    lines.append("    " * rnd.randint(0, 4) + " ".join(rnd.choice(words) for _ in range(rnd.randint(3, 12))) + ";\n")
    n += len(lines[-1])
if sys.argv[3] == "2":
    e = random.Random(7)
    for i in range(0, len(lines), 40):
        lines[i] = " ".join(e.choice(words) for _ in range(6)) + " /* v2 */;\n"
open(sys.argv[1], "w").write("".join(lines))
PY
}
for i in 1 2 3; do gen "$store/engines/f$i.c" $i 1; done
en_head "$conf" "$store" "$tmp/state"
for s in a b c; do en_server "$conf" "$s" "$tmp/t/$s" local; done
st_full_deltas "$conf"
ds() { "$DISTSYNC" -c "$conf" "$@"; }
ds sync --all >/dev/null 2>&1 || bad "sync v1"
for i in 1 2 3; do gen "$store/engines/f$i.c" $i 2; done
ds scan >/dev/null 2>&1 || bad "scan v2"

deltas() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["deltas"][sys.argv[2]])' "$1" "$2" 2>/dev/null || echo -1; }
# entries: "LEVEL BYTES" of each zpatch cache entry (its trailer's level,
# the delta's length), sorted by name
entries() {
  python3 - "$tmp/state/deltas" <<'PY'
import glob, struct, sys
for e in sorted(glob.glob(sys.argv[1] + "/*.zpd") + glob.glob(sys.argv[1] + "/*.zpb")):
    b = open(e, "rb").read()
    t = b[-32:]
    print(struct.unpack(">Q", t[24:])[0] if t[:8] == b"DSDCSUM2" else "no-trailer", len(b) - 32)
PY
}
levels() { entries | awk '{print $1}' | sort -u | tr '\n' ' ' | sed 's/ $//'; }
bytes() { entries | awk '{s += $2} END {print s + 0}'; }

ds sync --json --no-scan a >"$tmp/a.json" 2>"$tmp/a.err" || bad "sync a: $(head -c 300 "$tmp/a.err")"
b12=$(bytes)
echo "  sync a: computed $(deltas "$tmp/a.json" computed), entry levels $(levels), $b12 delta bytes"
[ "$(deltas "$tmp/a.json" computed)" = 3 ] || bad "sync a computed $(deltas "$tmp/a.json" computed) deltas, want 3"
[ "$(entries | wc -l)" = 3 ] && [ "$(levels)" = 12 ] ||
  bad "a delta computed during a sync records level(s) '$(levels)', want 12: $(entries | tr '\n' ';')"

ds scan --precompute --json >"$tmp/pc.json" 2>"$tmp/pc.err" || bad "scan --precompute: $(head -c 300 "$tmp/pc.err")"
b19=$(bytes)
echo "  scan --precompute: entry levels $(levels), $b19 delta bytes (level 12: $b12)"
[ "$(levels)" = 19 ] || bad "after scan --precompute the entries record level(s) '$(levels)', want 19"
[ "$b19" -gt 0 ] && [ "$b12" -ge "$b19" ] && [ "$((b12 * 100))" -le "$((b19 * 125))" ] ||
  bad "level-12 deltas $b12 bytes against $b19 at level 19: outside [1, 1.25] times"

ds sync --json --no-scan b >"$tmp/b.json" 2>"$tmp/b.err" || bad "sync b: $(head -c 300 "$tmp/b.err")"
[ "$(deltas "$tmp/b.json" computed)" = 0 ] ||
  bad "sync b computed $(deltas "$tmp/b.json" computed) deltas: the level-19 entries should serve it"

# sync_delta_level = 19: a sync computes at 19 (the cache emptied first)
rm -f "$tmp/state/deltas/"*.zp?
sed -i 's/^\[console\]$/[console]\nsync_delta_level = 19/' "$conf"
ds sync --json --no-scan c >"$tmp/c.json" 2>"$tmp/c.err" || bad "sync c: $(head -c 300 "$tmp/c.err")"
[ "$(levels)" = 19 ] || bad "with sync_delta_level = 19 the sync's entries record level(s) '$(levels)'"
for s in a b c; do en_converged "$store" "$tmp/t/$s" "server $s"; done
st_exit "the level of deltas computed during a sync, and ahead of it"
