#!/usr/bin/env bash
# Issue 9: a no-op sync must not fetch the whole manifest and listing again.
# Two servers (agent and local) over a store of 3,000 small files: with the
# target cache (STATE/targets/<server>.{manifest,list}) a no-op sync
# receives under 10% of what it receives without it; drift made behind
# distsync's back (a changed and a deleted file) is still seen by status and
# repaired by sync; a corrupt or deleted cache file is ignored (full fetch)
# and rewritten valid; an agent limited to protocol version 3 still syncs.
set -euo pipefail
: "${DISTSYNC:?}" "${DS_SRC:?}"
source "$DS_SRC/tests/func/lib/sync.bash"
st_init sync_target_cache
export DISTSYNC_TEST_NO_FSYNC=1
store=$tmp/store
state=$tmp/state
ds() { "$DISTSYNC" -c "$tmp/distsync.conf" "$@"; }

st_small_store "$store"
mkdir -p "$tmp/a" "$tmp/b" "$state" "$store/patches" "$store/engines"
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
transport = local
CONF
ds scan >/dev/null

# recv FILE SERVER: bytes_received of SERVER in a `sync --json` report
recv() {
  python3 -c 'import json,sys
d=[s for s in json.load(open(sys.argv[1]))["servers"] if s["server"]==sys.argv[2]][0]
assert d["status"]=="ok", d
print(d["bytes_received"])' "$1" "$2"
}
# cache_ok FILE: a well-formed cache file (magic, length, SHA-256 trailer)
cache_ok() {
  python3 -c 'import hashlib,struct,sys
b=open(sys.argv[1],"rb").read()
assert b[:8]==b"DSTCACHE" and len(b)>=56, "header"
assert struct.unpack(">Q",b[-40:-32])[0]==len(b)-56, "length"
assert hashlib.sha256(b[:-32]).digest()==b[-32:], "checksum"' "$1"
}
status_clean() {
  python3 -c 'import json,sys
for d in json.load(open(sys.argv[1])):
    bad={k: d[k] for k in ("missing","outdated","drifted") if d[k]}
    assert not bad, (d["server"], bad)' "$1"
}

ds sync --all --json >"$tmp/s1.json" || bad "first sync failed: $(cat "$tmp/s1.json")"
st_check_converged "$store/definitions" "$tmp/a/definitions" "first sync (a)"
st_check_converged "$store/definitions" "$tmp/b/definitions" "first sync (b)"
for s in a b; do
  for k in manifest list; do
    cache_ok "$state/targets/$s.$k" || bad "cache file $s.$k missing or malformed after a sync"
  done
done

# Without the cache: the full fetch (compressed in protocol version 4).
mv "$state/targets" "$tmp/targets.saved" || true
ds sync --all --json >"$tmp/full.json" || bad "no-op sync without cache failed"
# With the cache: only the digests cross the link.
ds sync --all --json >"$tmp/noop.json" || bad "no-op sync with cache failed"
for s in a b; do
  full=$(recv "$tmp/full.json" $s)
  noop=$(recv "$tmp/noop.json" $s)
  echo "server $s: no-op sync bytes_received: $full without the cache, $noop with it"
  [ $((noop * 10)) -lt "$full" ] ||
    bad "server $s: a no-op sync with the cache received $noop bytes, not < 10% of $full"
done
ds status --json >"$tmp/st0.json" || true
status_clean "$tmp/st0.json" || bad "status not clean after the no-op syncs"

# Drift behind distsync's back: changed content (and mtime), a deleted file.
for s in a b; do
  echo "changed behind our back" >>"$tmp/$s/definitions/d05/file-00500.dat"
  rm "$tmp/$s/definitions/d07/file-00700.dat"
done
ds status --json >"$tmp/st1.json" || true
python3 - "$tmp/st1.json" <<'PY' || bad "status with a warm cache misses the drift: $(head -c 600 "$tmp/st1.json")"
import json, sys
for d in json.load(open(sys.argv[1])):
    drift = [e["path"] for e in d["drifted"] + d["outdated"]]
    assert "definitions/d05/file-00500.dat" in drift, (d["server"], drift)
    assert "definitions/d07/file-00700.dat" in [e["path"] for e in d["missing"]], d["server"]
PY
ds sync --all --json >"$tmp/s2.json" || bad "sync after drift failed: $(cat "$tmp/s2.json")"
st_check_converged "$store/definitions" "$tmp/a/definitions" "sync after drift (a)"
st_check_converged "$store/definitions" "$tmp/b/definitions" "sync after drift (b)"
ds status --json >"$tmp/st2.json" || true
status_clean "$tmp/st2.json" || bad "status not clean after repairing the drift"

# A corrupt cache file is ignored (full fetch) and rewritten valid.
if [ -f "$state/targets/a.list" ]; then
  printf 'X' | dd of="$state/targets/a.list" bs=1 seek=100 conv=notrunc 2>/dev/null
fi
mkdir -p "$state/targets"
printf 'garbage' >"$state/targets/b.manifest"
ds sync --all --json >"$tmp/s3.json" 2>"$tmp/s3.err" || bad "sync with a corrupt cache failed"
grep -q "target cache .*a.list ignored" "$tmp/s3.err" ||
  bad "corrupt a.list not reported: $(cat "$tmp/s3.err")"
cache_ok "$state/targets/a.list" || bad "corrupt a.list not rewritten"
cache_ok "$state/targets/b.manifest" || bad "corrupt b.manifest not rewritten"
st_check_converged "$store/definitions" "$tmp/a/definitions" "sync with a corrupt cache (a)"
ds sync --all --json >"$tmp/s4.json" || bad "no-op sync after the rewrite failed"
[ "$(recv "$tmp/s4.json" a)" -lt 2000 ] || bad "rewritten cache not used: $(recv "$tmp/s4.json" a) bytes"

# Deleted cache files, then more drift: still correct.
rm -rf "$state/targets"
echo "again" >>"$tmp/a/definitions/d10/file-01000.dat"
ds sync --all --json >"$tmp/s5.json" || bad "sync without the cache failed"
st_check_converged "$store/definitions" "$tmp/a/definitions" "sync without the cache (a)"

# An agent limited to protocol version 3: no packed replies, no *_SAME,
# same results (the console sends the plain requests after HELLO_OK).
echo "v3 drift" >>"$tmp/a/definitions/d11/file-01100.dat"
DISTSYNC_TEST_MAX_PROTOCOL=3 ds sync a --json >"$tmp/v3.json" ||
  bad "sync with a version 3 agent failed: $(cat "$tmp/v3.json")"
st_check_converged "$store/definitions" "$tmp/a/definitions" "sync with a version 3 agent"
DISTSYNC_TEST_MAX_PROTOCOL=3 ds sync a --json >"$tmp/v3noop.json" ||
  bad "no-op sync with a version 3 agent failed"
v3=$(recv "$tmp/v3noop.json" a)
echo "server a, version 3 agent: no-op sync bytes_received: $v3"
[ "$v3" -gt "$(recv "$tmp/full.json" a)" ] ||
  bad "version 3 agent: $v3 bytes, expected the uncompressed full fetch"

st_exit sync_target_cache
