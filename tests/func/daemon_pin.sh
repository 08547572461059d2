#!/usr/bin/env bash
# Snapshot pinning (README, schedule semantics; `distsync daemon`): a
# delayed fire ships the store as of its anchor, not as of the fire.
#  - `monthly second tuesday +4 days 02:00` UTC: anchor 2026-03-11T00:00Z
#    (the end of Patch Tuesday, 10 March), fire 2026-03-14T02:00Z;
#  - kb.bin is v1 at the anchor (the daemon's anchor scan records the
#    generation and retains v1), v2 is written and scanned after it (by
#    another schedule's fire, which ships v2 to its server s2);
#  - gc between anchor and fire keeps v1 (a pending fire pinned it);
#  - the fire ships v1, never v2; recorded ok, history and target agree;
#  - the same fire on a copy of the state whose retain store lost v1: kb.bin
#    is reported gone (event, history's failed file, fire recorded failed),
#    the server keeps v0, nothing newer is shipped in its place; the rest
#    of the run ships;
set -uo pipefail
. "$(dirname "$0")/lib/sync.bash"
. "$(dirname "$0")/lib/engine.bash"
. "$(dirname "$0")/lib/daemon.bash"
st_init daemon_pin

state=$tmp/state
conf=$tmp/d.conf
store=$tmp/store
en_fill "$store" 1 4096
en_head "$conf" "$store" "$state"
en_server "$conf" s1 "$tmp/t" local
en_server "$conf" s2 "$tmp/t3" local
printf '\n[schedule patch]\nwhen = monthly second tuesday +4 days 02:00\ntz = UTC\nservers = s1\n' >>"$conf"
# another schedule, which scans (and ships the newest to s2) after the anchor;
# every scan here is the daemon's, on its test clock
printf '\n[schedule ingest]\nwhen = daily 12:00\ntz = UTC\nservers = s2\n' >>"$conf"

# kb.bin v0, v1, v2: 256 KiB, each a small edit of v0 (delta candidates)
python3 - "$tmp" <<'PY'
import os, random, sys
r = random.Random(13)
v0 = bytes(r.getrandbits(8) for _ in range(256 * 1024))
for name, at in (("v0", None), ("v1", 1000), ("v2", 200000)):
    b = bytearray(v0)
    if at is not None:
        b[at:at + 64] = os.urandom(64)
    open(os.path.join(sys.argv[1], name), "wb").write(b)
PY
put() { cp "$tmp/$1" "$store/patches/kb.tmp" && mv "$store/patches/kb.tmp" "$store/patches/kb.bin"; }
same() { cmp -s "$1" "$tmp/$2"; }

# s1 holds v0 (so its manifest is known and gc may collect)
put v0
"$DISTSYNC" -c "$conf" sync s1 >/dev/null 2>&1 || bad "setup: sync s1 failed"
put v1
echo added >"$store/engines/added.txt" # new at the anchor too

# The anchor: the daemon scans the store, pins that generation, retains v1.
log=$tmp/anchor.log
dm_start "$log" 2026-03-10T23:59:54Z 2
dm_wait "$log" 'run=patch@2026-03-14T02:00Z: anchor: scan generation [0-9]+ pinned, [1-9][0-9]* versions? retained' 30
dm_stop
same "$tmp/t/patches/kb.bin" v0 || bad "anchor: the anchor scan changed the server"

# After the anchor: v2 lands and is scanned (the newest generation) by the
# ingest schedule's fire, which ships it to s2.
put v2
echo later >"$store/engines/later.txt"
log=$tmp/ingest.log
dm_start "$log" 2026-03-12T11:59:54Z 2
dm_wait "$log" 'run=ingest@2026-03-12T12:00Z: ok' 30
dm_stop
same "$tmp/t3/patches/kb.bin" v2 || bad "ingest: s2 did not get v2 (a fire anchored at itself ships the newest)"

# A copy of the state whose retain store lost v1 (and every other version).
cp -a "$state" "$tmp/state2"
rm -rf "$tmp/state2/retain"
cp -a "$tmp/t" "$tmp/t2"
sed "s#$state#$tmp/state2#; s#file://$tmp/t\$#file://$tmp/t2#" "$conf" >"$tmp/d2.conf"

# gc between anchor and fire keeps the pinned v1 (s1 references only v0).
"$DISTSYNC" -c "$conf" gc --json >"$tmp/gc.json" 2>"$tmp/gc.err" || bad "gc failed: $(cat "$tmp/gc.err")"
python3 - "$tmp/gc.json" <<'PY' || bad "gc: pinned versions not kept: $(cat "$tmp/gc.json")"
import json, sys
g = json.load(open(sys.argv[1]))
sys.exit(0 if not g.get("kept_all") and g.get("pinned_versions", 0) >= 1 else 1)
PY

# The fire ships the store as of the anchor: v1, not v2; added.txt, not later.txt.
log=$tmp/fire.log
dm_start "$log" 2026-03-14T01:59:54Z 2
dm_wait "$log" 'run=patch@2026-03-14T02:00Z: ok' 30
dm_stop
grep -q 'run=patch@2026-03-14T02:00Z: pinned to the store as of 2026-03-11T00:00:00Z' "$log" ||
  bad "fire: no pin logged: $(grep 'patch@' "$log" | tr '\n' '|')"
same "$tmp/t/patches/kb.bin" v1 || bad "fire: kb.bin is not v1 (the version at the anchor)"
[ -f "$tmp/t/engines/added.txt" ] || bad "fire: added.txt (in the store at the anchor) not shipped"
[ ! -e "$tmp/t/engines/later.txt" ] || bad "fire: later.txt (added after the anchor) was shipped"
dm_fires patch | grep -q "^$(dm_epoch 2026-03-14T02:00Z)|ok|" ||
  bad "fire: not recorded ok: $(dm_fires patch | tr '\n' ' ')"
[ -z "$(ls -A "$state/pinned" 2>/dev/null)" ] || bad "fire: copies left in $state/pinned"

# The same fire where v1 is gone: reported, the server keeps v0.
conf=$tmp/d2.conf
state=$tmp/state2
log=$tmp/gone.log
dm_start "$log" 2026-03-14T01:59:54Z 2
dm_wait "$log" 'run=patch@2026-03-14T02:00Z: failed' 30
dm_stop
grep -q 'patches/kb.bin: pinned version as of 2026-03-11T00:00:00Z (scan generation [0-9]*) is gone' "$log" ||
  bad "gone: not reported: $(grep -i 'kb.bin' "$log" | tr '\n' '|')"
same "$tmp/t2/patches/kb.bin" v0 || bad "gone: the server's kb.bin changed (expected v0 kept)"
[ -f "$tmp/t2/engines/added.txt" ] || bad "gone: the rest of the run did not ship"
dm_fires patch | grep -q "^$(dm_epoch 2026-03-14T02:00Z)|failed|.*1 file failed" ||
  bad "gone: fire not recorded failed: $(dm_fires patch | tr '\n' ' ')"
"$DISTSYNC" -c "$conf" history s1 --events --json >"$tmp/h.json" || bad "gone: history failed"
python3 - "$tmp/h.json" <<'PY' || bad "gone: history lacks the failed file: $(head -c 600 "$tmp/h.json")"
import json, sys
runs = json.load(open(sys.argv[1]))
r = runs[0]
ev = [e for e in r.get("events", []) if e.get("path") == "patches/kb.bin"]
ok = r.get("files_failed") == 1 and any("is gone" in (e.get("message") or "") for e in ev)
sys.exit(0 if ok else 1)
PY
for l in "$tmp"/anchor.log "$tmp"/ingest.log "$tmp"/fire.log "$tmp"/gone.log; do dm_log_once "$l"; done
st_exit daemon_pin
