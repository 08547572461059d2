#!/usr/bin/env bash
# Issue 9: an update of many small files whose deltas are a few dozen bytes
# each (a rebuilt library's modules) must not pay four frames per file.
# Protocol version 6 sends each such file as one FILE_ONE frame, its zpatch
# in the compact framing of stream version 3. Two agent
# servers get the same update: one speaks version 6, the other is limited
# to version 5 (an older agent): the older one still gets the old frames
# (FILE_BEGIN, DELTA, DELTA_END, FILE_COMMIT) and converges, and the newer
# one costs at least 100 bytes less per file on the wire (116 here: 61
# bytes and the path of framing, 29 of zpatch framing), and its replies 40
# bytes less (FILE_DONE: 44 bytes less than FILE_OK). On main both
# cost the same.
set -euo pipefail
: "${DISTSYNC:?}" "${DS_SRC:?}"
source "$DS_SRC/tests/func/lib/sync.bash"
st_init sync_file_one
export DISTSYNC_TEST_NO_FSYNC=1
store=$tmp/store
state=$tmp/state
n=200
ds() { "$DISTSYNC" -c "$tmp/distsync.conf" "$@"; }

# gen SEED: n files of 6 KiB of pseudo-random bytes, each with a 16-byte
# field that changes with SEED (the rest stays).
gen() {
  python3 - "$store/engines/mods" "$n" "$1" <<'PY'
import os, random, sys
root, n, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
os.makedirs(root, exist_ok=True)
for i in range(n):
    r = random.Random(i)
    body = bytearray(r.randbytes(6144))
    body[3000:3016] = random.Random(seed * 100000 + i).randbytes(16)
    open(os.path.join(root, "module-%03d.so" % i), "wb").write(body)
PY
}
gen 1
mkdir -p "$tmp/a" "$tmp/b" "$state" "$store/patches" "$store/definitions"
printf '#!/bin/sh\nDISTSYNC_TEST_MAX_PROTOCOL=5 exec "%s" "$@"\n' "$DISTSYNC" >"$tmp/agent-v5"
chmod +x "$tmp/agent-v5"
cat >"$tmp/distsync.conf" <<CONF
[console]
store = $store
state = $state
[server a]
url = file://$tmp/a
transport = agent
agent = $DISTSYNC
[server b]
url = file://$tmp/b
transport = agent
agent = $tmp/agent-v5
CONF

# wire FILE SERVER [KEY]: bytes_wire (or KEY) of SERVER in a `sync --json` report
wire() {
  python3 -c 'import json,sys
d=[s for s in json.load(open(sys.argv[1]))["servers"] if s["server"]==sys.argv[2]][0]
assert d["status"]=="ok", d
print(d[sys.argv[3]])' "$1" "$2" "${3:-bytes_wire}"
}

ds scan >/dev/null
ds sync --all --json >"$tmp/s1.json" || bad "first sync failed: $(cat "$tmp/s1.json")"
gen 2
ds scan >/dev/null
ds sync --all --json >"$tmp/s2.json" 2>"$tmp/s2.err" || bad "update failed: $(cat "$tmp/s2.json" "$tmp/s2.err")"
st_check_converged "$store/engines" "$tmp/a/engines" "update (version 6 agent)"
st_check_converged "$store/engines" "$tmp/b/engines" "update (version 5 agent)"
a=$(wire "$tmp/s2.json" a)
b=$(wire "$tmp/s2.json" b)
echo "bytes_wire of $n small deltas: $a to a version 6 agent, $b to a version 5 agent"
[ $((a + 100 * n)) -le "$b" ] ||
  bad "version 6 agent: $a bytes, not at least $((100 * n)) less than the version 5 agent's $b"
# Each file's reply: FILE_DONE (20 bytes) instead of FILE_OK (64).
ra=$(wire "$tmp/s2.json" a bytes_received)
rb=$(wire "$tmp/s2.json" b bytes_received)
echo "bytes_received: $ra from the version 6 agent, $rb from the version 5 agent"
[ $((ra + 40 * n)) -le "$rb" ] ||
  bad "version 6 agent: received $ra bytes, not at least $((40 * n)) less than from the version 5 agent ($rb)"

# New and emptied files go as FILE_ONE too (LITERAL kind), and a file too
# large for one frame still goes as FILE_BEGIN and frames.
head -c 100000 /dev/urandom >"$store/engines/new.bin"
: >"$store/engines/mods/module-007.so"
head -c $((9 << 20)) /dev/urandom >"$store/engines/large.bin"
ds scan >/dev/null
ds sync --all --json >"$tmp/s3.json" 2>"$tmp/s3.err" || bad "third sync failed: $(cat "$tmp/s3.json" "$tmp/s3.err")"
st_check_converged "$store/engines" "$tmp/a/engines" "new, empty and large files (version 6)"
st_check_converged "$store/engines" "$tmp/b/engines" "new, empty and large files (version 5)"
st_exit sync_file_one
