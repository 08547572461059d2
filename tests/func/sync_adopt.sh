#!/usr/bin/env bash
# Adopt in place (issue 7 item 15): after the target's manifest is lost,
# files that already hold the right bytes are confirmed by the receiver
# (ADOPT, protocol version 2) and recorded in its manifest without being
# rewritten: every file keeps its inode, the run reports them adopted, and
# (almost) nothing is written on the target. Both transports.
set -uo pipefail
. "$(dirname "$0")/lib/sync.bash"
st_init sync_adopt
store=$tmp/store
mkdir -p "$store/definitions/d" "$store/engines"
for i in $(seq 1 12); do head -c $((2 << 20)) /dev/urandom >"$store/definitions/d/f$i.dat"; done
head -c $((8 << 20)) /dev/urandom >"$store/engines/engine.bin"
total=$(du -sb "$store" | cut -f1)

inodes() { (cd "$1" && find definitions engines -type f -printf '%p %i\n' | LC_ALL=C sort); }
# written_kb CMD...: bytes dirtied on disk by CMD and its children, in kB
# (getrusage ru_oublock, 512-byte units).
written_kb() {
  local o
  o=$(/usr/bin/time -f 'OUBLOCK %O' "$@" 2>&1 >"$tmp/run.json") || { echo "$o" >&2; return 1; }
  echo $(($(sed -n 's/^OUBLOCK //p' <<<"$o" | tail -1) / 2))
}

for tr in local agent; do
  t=$tmp/t-$tr
  mkdir -p "$t"
  st_conf "$tmp/$tr.conf" "$store" "$tmp/state-$tr" t "file://$t" "$tr"
  ds() { "$DISTSYNC" -c "$tmp/$tr.conf" "$@"; }
  ds scan >/dev/null || bad "$tr: scan"
  ds sync t >/dev/null || bad "$tr: first sync"
  before=$(inodes "$t")
  rm -f "$t/.distsync/manifest"
  w=$(written_kb "$DISTSYNC" -c "$tmp/$tr.conf" sync t --json) || bad "$tr: resync failed"
  after=$(inodes "$t")
  [ "$before" = "$after" ] || bad "$tr: inodes changed: $(diff <(echo "$before") <(echo "$after") | head -4)"
  python3 - "$tmp/run.json" <<'PY' || bad "$tr: run report: $(cat "$tmp/run.json")"
import json, sys
s = json.load(open(sys.argv[1]))["servers"][0]
assert s["adopted"] == 13, s
assert s["created"] == 0 and s["bytes_copied"] == 0 and s["bytes_target"] == 0, s
PY
  echo "sync_adopt: $tr: $((total / 1024)) kB adopted, $w kB written on disk during the resync"
  [ "$w" -lt $((total / 1024 / 10)) ] || bad "$tr: $w kB written for $((total / 1024)) kB of adopted files"
  for f in $(cd "$store" && find . -type f); do
    cmp -s "$store/$f" "$t/$f" || bad "$tr: $f differs"
  done
  # the manifest is back: the next run keeps everything
  ds sync t --json >"$tmp/run2.json" || bad "$tr: third sync"
  python3 -c 'import json,sys; s=json.load(open(sys.argv[1]))["servers"][0]; sys.exit(s["adopted"] != 0)' \
    "$tmp/run2.json" || bad "$tr: files adopted again: the manifest did not record them"
done
[ "$fail" = 0 ] && echo "sync_adopt: ok"
exit "$fail"
