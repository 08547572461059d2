#!/usr/bin/env bash
# Issue 9: after a sync commits, the console knows the manifest the target
# now holds (its own changes, acknowledged), so the refresh that follows the
# commit, and the next run, cost a digest instead of the whole manifest.
# A store of 3,000 small files on one agent server: a sync that changes one
# file receives under 10% of what a sync without the target cache receives
# (on main it fetched the whole manifest again after its commit; the
# listing, whose directory mtimes the console cannot know, is still fetched
# again by the run after a change). Drift made
# behind distsync's back after such a sync is still seen and repaired: the
# cached manifest is only a hint that the target confirms by its digest.
set -euo pipefail
: "${DISTSYNC:?}" "${DS_SRC:?}"
source "$DS_SRC/tests/func/lib/sync.bash"
st_init sync_manifest_predict
export DISTSYNC_TEST_NO_FSYNC=1
store=$tmp/store
state=$tmp/state
ds() { "$DISTSYNC" -c "$tmp/distsync.conf" "$@"; }

st_small_store "$store"
mkdir -p "$tmp/a" "$state" "$store/patches" "$store/engines"
cat >"$tmp/distsync.conf" <<CONF
[console]
store = $store
state = $state
[server a]
url = file://$tmp/a
transport = agent
agent = $DISTSYNC
prune = yes
CONF

# recv FILE: bytes_received of server a in a `sync --json` report
recv() {
  python3 -c 'import json,sys
d=json.load(open(sys.argv[1]))["servers"][0]
assert d["status"]=="ok", d
print(d["bytes_received"])' "$1"
}

ds scan >/dev/null
ds sync a --json >"$tmp/s1.json" || bad "first sync failed: $(cat "$tmp/s1.json")"
st_check_converged "$store/definitions" "$tmp/a/definitions" "first sync"

# One changed file, one new, one deleted: the sync's own commit.
echo "changed" >>"$store/definitions/d05/file-00500.dat"
echo "new" >"$store/definitions/d05/new.dat"
rm "$store/definitions/d07/file-00700.dat"
ds scan >/dev/null
ds sync a --json >"$tmp/s2.json" || bad "second sync failed: $(cat "$tmp/s2.json")"
st_check_converged "$store/definitions" "$tmp/a/definitions" "second sync"

# The same change without the target cache: the whole manifest crosses.
mv "$state/targets" "$tmp/targets.saved"
echo "changed again" >>"$store/definitions/d05/file-00501.dat"
ds scan >/dev/null
ds sync a --json >"$tmp/full.json" || bad "sync without the cache failed"
rm -rf "$state/targets" && mv "$tmp/targets.saved" "$state/targets"
# ... and again with the cache (the one the second sync left, now stale by
# one file: the target answers the digest with the whole manifest once).
ds sync a --json >"$tmp/s3.json" || bad "sync with a stale cache failed"
echo "changed a third time" >>"$store/definitions/d05/file-00502.dat"
ds scan >/dev/null
ds sync a --json >"$tmp/s4.json" || bad "fourth sync failed: $(cat "$tmp/s4.json")"
st_check_converged "$store/definitions" "$tmp/a/definitions" "fourth sync"
full=$(recv "$tmp/full.json")
s2=$(recv "$tmp/s2.json")
s4=$(recv "$tmp/s4.json")
# The second sync still fetches the listing in full (the first sync changed
# it, and the console cannot predict the directories' mtimes); the fourth
# starts with a current listing, so what it receives is the manifest's.
echo "bytes_received of a sync changing files: $s2 (listing changed) and $s4 with the cache, $full without it"
[ $((s4 * 10)) -lt "$full" ] || bad "fourth sync received $s4 bytes, not < 10% of $full"
[ "$s2" -lt "$full" ] || bad "second sync received $s2 bytes, not less than $full"

# Drift behind distsync's back after a sync that predicted the manifest:
# seen and repaired, not hidden by the cache.
echo "changed behind our back" >>"$tmp/a/definitions/d09/file-00900.dat"
rm "$tmp/a/definitions/d08/file-00800.dat"
python3 - "$tmp/a/.distsync/manifest" <<'PY'
# A manifest edited behind the console's back (another tool rewrote it):
# the entry of file-00900 loses its last SHA-256 byte's value.
import hashlib, struct, sys
p = sys.argv[1]
b = bytearray(open(p, "rb").read())
i = b.find(b"definitions/d09/file-00900.dat")
assert i > 0
e = i + len("definitions/d09/file-00900.dat") + 16 + 31
b[e] ^= 0xFF
b[-32:] = hashlib.sha256(bytes(b[:-32])).digest()
open(p, "wb").write(bytes(b))
PY
ds sync a --json >"$tmp/s5.json" || bad "sync after drift failed: $(cat "$tmp/s5.json")"
st_check_converged "$store/definitions" "$tmp/a/definitions" "sync after drift"
ds status --json >"$tmp/st.json" || true
python3 - "$tmp/st.json" <<'PY' || bad "status not clean after repairing the drift: $(head -c 600 "$tmp/st.json")"
import json, sys
for d in json.load(open(sys.argv[1])):
    bad = {k: d[k] for k in ("missing", "outdated", "drifted") if d[k]}
    assert not bad, (d["server"], bad)
PY

st_exit sync_manifest_predict
