#!/usr/bin/env bash
# A fake agent (tests/func/lib/fake_agent.py: no real agent sends this)
# streams an endless MANIFEST_DATA, LIST_DATA or SIG_DATA reply. The console
# must fail that server with an error naming the server and the stream, and
# its peak RSS (/usr/bin/time %M) must stay bounded: the caps are 256 MiB of
# manifest, 256 MiB of listing, and a signature no longer than one of the
# file's listed size. The fake stops after 1 GiB, so a console without caps
# ends too (after holding all of it).
set -uo pipefail
. "$(dirname "$0")/lib/sync.bash"
st_init sync_fake_agent_caps
fake=$DS_SRC/tests/func/lib/fake_agent.py
store=$tmp/store
mkdir -p "$store/patches"
head -c 2000000 /dev/urandom >"$store/patches/big.bin"
max_kb=${DS_CAPS_MAX_RSS_KB:-409600} # 400 MiB: the 256 MiB cap plus the console

# run_fake MODE STREAM_PATTERN
run_fake() {
  local mode=$1 want=$2 t=$tmp/t-$1 conf=$tmp/$1.conf rc=0 kb
  mkdir -p "$t"
  echo "$mode $((1 << 30))" >"$t/fake-mode"
  printf '[console]\nstore = %s\nstate = %s\n\n[server fake-%s]\nurl = file://%s\ntransport = agent\nagent = %s\nclasses = patches engines definitions\n' \
    "$store" "$tmp/state-$mode" "$mode" "$t" "$fake" >"$conf"
  "$DISTSYNC" -c "$conf" scan >/dev/null 2>&1 || bad "$mode: scan failed"
  /usr/bin/time -f %M -o "$tmp/rss" timeout 300 "$DISTSYNC" -c "$conf" sync "fake-$mode" \
    >"$tmp/out" 2>"$tmp/err" || rc=$?
  kb=$(tail -n 1 "$tmp/rss")
  echo "  $mode: exit $rc, console peak RSS $((kb / 1024)) MiB: $(grep -m1 "fake-$mode" "$tmp/err" "$tmp/out" | head -c 300)"
  [ "$rc" != 0 ] && [ "$rc" -lt 124 ] || bad "$mode: sync exit $rc (want a clean failure)"
  grep -q "server fake-$mode: .*$want" "$tmp/err" "$tmp/out" ||
    bad "$mode: no error naming the server and the stream ($want): $(head -c 400 "$tmp/err")"
  [ "$kb" -lt "$max_kb" ] || bad "$mode: console peak RSS ${kb} KiB, over ${max_kb} KiB"
}

run_fake endless-manifest "manifest is larger than the 256 MiB limit"
run_fake endless-list "listing is larger than the 256 MiB limit"
run_fake endless-sig "signature of patches/big.bin is larger than"
st_exit "sync_fake_agent_caps"
