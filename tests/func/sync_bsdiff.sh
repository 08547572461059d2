#!/usr/bin/env bash
# A rebuilt binary (pointers moved by an inserted function, a few code
# bytes changed): a version 5 agent gets a zpatch of stream version 2 whose
# BSDIFF records carry the moved addresses as small byte-wise differences;
# a version 4 agent (DISTSYNC_TEST_MAX_PROTOCOL=4) still gets the version 1
# zpatch it can apply (zstd with the old build as prefix). The version 5
# server gets well under half the bytes; both converge to the same bytes.
set -uo pipefail
. "$(dirname "$0")/lib/sync.bash"
st_init sync_bsdiff
export DISTSYNC_TEST_NO_FSYNC=1
store=$tmp/store conf=$tmp/b.conf
mkdir -p "$store/engines" "$tmp/new" "$tmp/old"
gen() { st_rebuilt "$@"; }
gen "$store/engines/prog" 0
st_conf "$conf" "$store" "$tmp/state" new "file://$tmp/new" agent old "file://$tmp/old" agent
st_full_deltas "$conf"
ds() { "$DISTSYNC" -c "$conf" "$@"; }
ds scan >/dev/null 2>&1 || bad "scan v1"
ds sync new >/dev/null 2>&1 || bad "sync new v1"
DISTSYNC_TEST_MAX_PROTOCOL=4 ds sync old >/dev/null 2>&1 || bad "sync old v1"

gen "$store/engines/prog" 4096
ds scan >/dev/null 2>&1 || bad "scan v2"
ds sync new --json >"$tmp/new.json" 2>"$tmp/new.err" || bad "sync new v2: $(head -c 300 "$tmp/new.err")"
DISTSYNC_TEST_MAX_PROTOCOL=4 ds sync old --json >"$tmp/old.json" 2>"$tmp/old.err" ||
  bad "sync old v2 (a version 4 agent): $(head -c 300 "$tmp/old.err")"
wire() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["servers"][0]["bytes_wire"])' "$1" 2>/dev/null || echo -1; }
bw=$(wire "$tmp/new.json") zw=$(wire "$tmp/old.json")
echo "  wire: bsdiff zpatch (v5) $bw bytes, zpatch (v4) $zw bytes, file $(stat -c %s "$store/engines/prog")"
[ "$bw" -gt 0 ] || bad "no bytes on the wire for the v5 server"
[ "$zw" -gt 0 ] || bad "no bytes on the wire for the v4 server"
[ "$bw" -gt 0 ] && [ "$((bw * 2))" -lt "$zw" ] || bad "v5 not 2x below v4: $bw vs $zw"
ls "$tmp/state/deltas/" | grep -q '\.zpb$' || bad "no version 2 zpatch (.zpb) in the delta cache"
ls "$tmp/state/deltas/" | grep -q '\.zpd$' || bad "no version 1 zpatch (.zpd) for the version 4 agent"
st_check_converged "$store" "$tmp/new" "server new (v5)"
st_check_converged "$store" "$tmp/old" "server old (v4)"
st_exit "sync_bsdiff"
