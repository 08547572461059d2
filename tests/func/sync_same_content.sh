#!/usr/bin/env bash
# Identical contents cross the link once per run: two paths with the same
# bytes (git's usr/bin/git and usr/lib/git-core/git), created and then
# updated together, through `distsync agent`. The second path is a COPY of
# the first on the target (the plan says "copy of"): the run's wire bytes
# stay under 1.25x one file (2x before), and both targets hold the bytes.
set -uo pipefail
. "$(dirname "$0")/lib/sync.bash"
st_init sync_same_content
export DISTSYNC_TEST_NO_FSYNC=1
store=$tmp/store conf=$tmp/s.conf
mkdir -p "$store/engines/bin" "$store/engines/lib/git-core" "$tmp/t"
size=$((1024 * 1024))
put() { # put SEED: the same random MiB at both paths, and a small other file
  head -c $size /dev/urandom >"$store/engines/bin/git"
  cp "$store/engines/bin/git" "$store/engines/lib/git-core/git"
  head -c 5000 /dev/urandom >"$store/engines/lib/other"
}
st_conf "$conf" "$store" "$tmp/state" t "file://$tmp/t" agent
ds() { "$DISTSYNC" -c "$conf" "$@"; }
wire() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["servers"][0]["bytes_wire"])' "$1" 2>/dev/null || echo -1; }
for round in create update; do
  put
  ds scan >/dev/null 2>&1 || bad "scan ($round)"
  ds plan t >"$tmp/plan.$round" 2>&1 || bad "plan ($round)"
  grep -q "engines/lib/git-core/git.*copy of engines/bin/git" "$tmp/plan.$round" ||
    bad "$round: the plan does not copy the second path from the first: $(grep git-core "$tmp/plan.$round")"
  ds sync t --json >"$tmp/$round.json" 2>"$tmp/$round.err" || bad "sync ($round): $(head -c 300 "$tmp/$round.err")"
  w=$(wire "$tmp/$round.json")
  echo "  $round: wire $w bytes for two paths of $size identical bytes (+5000)"
  [ "$w" -gt "$size" ] || bad "$round: $w bytes on the wire, less than the content itself?"
  [ "$w" -lt $((size * 5 / 4)) ] || bad "$round: $w bytes on the wire: the content crossed twice"
  st_check_converged "$store" "$tmp/t" "$round"
done
st_exit "sync_same_content"
