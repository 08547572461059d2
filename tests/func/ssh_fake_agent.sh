#!/usr/bin/env bash
# Hostile and hung targets behind a real sshd: a fake agent
# (tests/func/lib/fake_agent.py, run as the ssh:// server's agent command:
# no real agent misbehaves on demand) that goes silent after HELLO, stops
# in the middle of MANIFEST_DATA, or ignores the end of its input, sits
# before a healthy ssh:// server with io_timeout = 2s (longer where python3
# starts slowly, measured): each fails within the timeout naming the server (and the request it hung in), and the healthy
# one is synced. A fake streaming an endless manifest or listing over SSH
# is cut at the 256 MiB caps with the console's peak RSS bounded.
set -uo pipefail
: "${DISTSYNC:?}" "${DS_SRC:?}"
source "$DS_SRC/tests/func/lib/sync.bash"
source "$DS_SRC/tests/func/lib/sshd.bash"
st_init ssh_fake_agent
sshd_start "$tmp/sshd"
fake=$DS_SRC/tests/func/lib/fake_agent.py
store=$tmp/store known=$tmp/known conf=$tmp/d.conf
st_gen "$store" 0 "$known" --files 6 --max 4096 || bad "mkstore"
sshd_known_hosts "$tmp/known_hosts"
# io: the io_timeout under test, 2 s, or longer on a box where starting the
# fake agent (python3 and its imports) is slow: at least 4 times the
# slowest of 3 measured starts, so the fake answers HELLO in time and the
# timeout that fires is the one of the request it hangs in
slowest=0
for _ in 1 2 3; do
  t0=$(date +%s%3N)
  python3 -c 'import hashlib, os, struct, sys, time'
  ms=$(($(date +%s%3N) - t0))
  [ "$ms" -le "$slowest" ] || slowest=$ms
done
io=$(((slowest * 4 + 999) / 1000))
[ "$io" -ge 2 ] || io=2
echo "  python3 starts in ${slowest} ms at most: io_timeout = ${io}s"
# srv NAME DIR AGENT [IO_TIMEOUT]: an ssh:// server section ($io by default)
srv() {
  printf '\n[server %s]\nurl = ssh://127.0.0.1:%s%s\ntransport = agent\nidentity = %s\nknown_hosts = %s\nagent = %s\n' \
    "$1" "$SSHD_PORT" "$2" "$SSH_KEY" "$tmp/known_hosts" "$3"
  printf 'io_timeout = %s\nclasses = patches engines definitions\n' "${4:-${io}s}"
}
mkdir -p "$tmp/hung" "$tmp/stall" "$tmp/deaf" "$tmp/good" "$tmp/bigman" "$tmp/biglist"
echo silent >"$tmp/hung/fake-mode"
echo stall-manifest >"$tmp/stall/fake-mode"
echo garbage-deaf >"$tmp/deaf/fake-mode"
echo "endless-manifest $((1 << 30))" >"$tmp/bigman/fake-mode"
echo "endless-list $((1 << 30))" >"$tmp/biglist/fake-mode"
{
  printf '[console]\nstore = %s\nstate = %s\n' "$store" "$tmp/state"
  for s in hung stall deaf; do srv "$s" "$tmp/$s" "$fake agent"; done
  # the endless streams test the size caps, not silence: a loaded box may
  # pause the fake agent for longer than 2 s
  for s in bigman biglist; do srv "$s" "$tmp/$s" "$fake agent" 60s; done
  srv good "$tmp/good" "$DISTSYNC agent"
} >"$conf"
"$DISTSYNC" -c "$conf" scan >/dev/null 2>&1 || bad "scan failed"

# fakes_left: pids of this test's fake agents still running (sshd runs
# them; a deaf one ignores the end of its input, see README Known limits)
fakes_left() { pgrep -f "$fake agent --root $tmp" 2>/dev/null || true; }

start=$(date +%s)
rc=0
timeout 120 "$DISTSYNC" -c "$conf" sync hung stall deaf good >"$tmp/out" 2>"$tmp/err" || rc=$?
took=$(($(date +%s) - start))
echo "  sync hung stall deaf good: exit $rc in ${took} s"
[ "$rc" = 4 ] || bad "sync exit $rc (want 4: the hung servers fail, no hang)"
[ "$took" -le $((45 + 10 * (io - 2))) ] || bad "sync took ${took} s with a ${io} s timeout"
grep -q "server hung: no response from the target for $io s (during HELLO)" "$tmp/out" "$tmp/err" ||
  bad "no timeout error naming server hung: $(head -c 400 "$tmp/out")"
grep -q "server stall: no response from the target for $io s (during MANIFEST_GET)" "$tmp/out" "$tmp/err" ||
  bad "no timeout error naming server stall: $(head -c 400 "$tmp/out")"
grep -q "server deaf: " "$tmp/out" || bad "no error naming server deaf: $(head -c 400 "$tmp/out")"
st_check_converged "$store" "$tmp/good" "the healthy ssh:// server after three hung ones"
left=$(fakes_left)
[ -z "$left" ] || kill -9 $left 2>/dev/null # by pid: the deaf one outlives its connection

# endless streams over SSH: refused at the caps, memory bounded
max_kb=${DS_CAPS_MAX_RSS_KB:-409600}
for s in bigman:manifest biglist:listing; do
  name=${s%%:*} what=${s#*:} rc=0
  /usr/bin/time -f %M -o "$tmp/rss" timeout 300 "$DISTSYNC" -c "$conf" sync "$name" \
    >"$tmp/out" 2>"$tmp/err" || rc=$?
  kb=$(tail -n 1 "$tmp/rss")
  echo "  $name: exit $rc, console peak RSS $((kb / 1024)) MiB"
  [ "$rc" = 4 ] || bad "$name: sync exit $rc (want 4)"
  grep -q "server $name: .*$what is larger than the 256 MiB limit" "$tmp/out" "$tmp/err" ||
    bad "$name: no error naming the server and the $what cap: $(head -c 400 "$tmp/out")"
  [ "$kb" -lt "$max_kb" ] || bad "$name: console peak RSS ${kb} KiB, over ${max_kb} KiB"
done
left=$(fakes_left)
[ -z "$left" ] || kill -9 $left 2>/dev/null
st_exit ssh_fake_agent
