#!/usr/bin/env bash
# One hung server never stalls the others. Fake agents
# (tests/func/lib/fake_agent.py: a real agent does not hang on demand) that
# read HELLO then go silent, or stop in the middle of MANIFEST_DATA, or
# send garbage and then ignore the end of their input, sit before a healthy
# server with `timeout = 2s` (sync, then verify): each hung server fails within the timeout
# with an error naming it (and the request it hung in), its agent is
# killed, and the healthy server after them is synced. A slow target that keeps sending (a slice every
# 0.7 s for 5 s) is not a hang: `plan` on it succeeds.
set -uo pipefail
. "$(dirname "$0")/lib/sync.bash"
st_init sync_fake_agent_timeout
fake=$DS_SRC/tests/func/lib/fake_agent.py
store=$tmp/store known=$tmp/known conf=$tmp/d.conf
st_gen "$store" 0 "$known" --files 6 --max 4096 || bad "mkstore"
mkdir -p "$tmp/hung" "$tmp/stall" "$tmp/deaf" "$tmp/slow" "$tmp/good"
echo garbage-deaf >"$tmp/deaf/fake-mode"
echo silent >"$tmp/hung/fake-mode"
echo stall-manifest >"$tmp/stall/fake-mode"
echo slow-manifest >"$tmp/slow/fake-mode"
{
  printf '[console]\nstore = %s\nstate = %s\ntimeout = 2s\n' "$store" "$tmp/state"
  for s in hung stall deaf; do
    printf '\n[server %s]\nurl = file://%s\ntransport = agent\nagent = %s\nclasses = patches engines definitions\n' \
      "$s" "$tmp/$s" "$fake"
  done
  printf '\n[server good]\nurl = file://%s\ntransport = agent\nclasses = patches engines definitions\n' "$tmp/good"
  printf '\n[server slow]\nurl = file://%s\ntransport = agent\nagent = %s\nclasses = patches engines definitions\n' \
    "$tmp/slow" "$fake"
} >"$conf"
"$DISTSYNC" -c "$conf" scan >/dev/null 2>&1 || bad "scan failed"

# hung, stall, deaf, then good (slow is tested read-only below: the fake
# cannot take files).
start=$(date +%s)
rc=0
timeout 120 "$DISTSYNC" -c "$conf" sync hung stall deaf good >"$tmp/out" 2>"$tmp/err" || rc=$?
took=$(($(date +%s) - start))
echo "  sync hung stall deaf good: exit $rc in ${took} s"
grep -h "server hung\|server stall\|server deaf" "$tmp/out" | sed 's/^/    /' | head -4
[ "$rc" != 0 ] && [ "$rc" -lt 124 ] || bad "sync exit $rc (want: the hung servers fail, no hang)"
[ "$took" -le 45 ] || bad "sync took ${took} s with a 2 s timeout"
grep -q "server hung: no response from the target for 2 s (during HELLO)" "$tmp/out" "$tmp/err" ||
  bad "no timeout error naming server hung: $(head -c 400 "$tmp/err")"
grep -q "server stall: no response from the target for 2 s (during MANIFEST_GET)" "$tmp/out" "$tmp/err" ||
  bad "no timeout error naming server stall: $(head -c 400 "$tmp/err")"
grep -q "server deaf: .*agent for $tmp/deaf did not exit within 2 s of the end of its input: killed" \
  "$tmp/out" "$tmp/err" || bad "no error naming the deaf agent that was killed: $(head -c 400 "$tmp/err")"
st_check_converged "$store" "$tmp/good" "the healthy server after three hung ones"
# fakes_gone WHAT: no fake agent of this test survives (a killed one may
# take a moment to be reaped on a loaded machine).
fakes_gone() {
  local i
  for i in $(seq 50); do
    pgrep -f "$fake agent --root $tmp" >/dev/null || return 0
    sleep 0.1
  done
  bad "a fake agent outlived $1: $(pgrep -af "$fake agent --root $tmp" | head -3)"
}
fakes_gone "the run"

# verify waits on targets under the same timeout.
start=$(date +%s)
rc=0
timeout 120 "$DISTSYNC" -c "$conf" verify hung stall good >"$tmp/out" 2>"$tmp/err" || rc=$?
took=$(($(date +%s) - start))
echo "  verify hung stall good: exit $rc in ${took} s"
[ "$rc" = 4 ] || bad "verify exit $rc (want 4: the hung servers fail, no hang)"
[ "$took" -le 40 ] || bad "verify took ${took} s with a 2 s timeout"
grep -q "server hung: no response from the target for 2 s (during HELLO)" "$tmp/out" "$tmp/err" ||
  bad "verify: no timeout error naming server hung: $(head -c 400 "$tmp/err")"
grep -q "server stall: no response from the target for 2 s (during MANIFEST_GET)" "$tmp/out" "$tmp/err" ||
  bad "verify: no timeout error naming server stall: $(head -c 400 "$tmp/err")"
grep -q "good" "$tmp/out" || bad "verify did not report the healthy server after the hung ones"

# Interrupting verify or sync while a target hangs in HELLO ends it in
# seconds, not after the (here 600 s) timeout: verify returns at once, sync
# winds down for at most 10 s, then kills the agent.
sed 's/^timeout = 2s$/timeout = 600s/' "$conf" >"$tmp/long.conf"
interrupt_hung() { # CMD MAX_S
  local start rc=0 pid took
  start=$(date +%s)
  # --foreground: timeout forwards the SIGINT to distsync once (without it,
  # it signals its whole group too, a second SIGINT: "exit at once")
  timeout --foreground 60 "$DISTSYNC" -c "$tmp/long.conf" "$1" hung >"$tmp/out" 2>"$tmp/err" &
  pid=$!
  sleep 1
  kill -INT "$pid" 2>/dev/null
  wait "$pid" || rc=$?
  took=$(($(date +%s) - start))
  echo "  $1 hung, SIGINT after 1 s: exit $rc in ${took} s"
  [ "$rc" = 130 ] || bad "$1 interrupted while connecting: exit $rc (want 130)"
  [ "$took" -le "$2" ] || bad "$1 interrupted while connecting took ${took} s"
}
interrupt_hung verify 15
interrupt_hung sync 30
fakes_gone "the interrupted runs"

# A slow target is not a hung one.
start=$(date +%s)
rc=0
timeout 60 "$DISTSYNC" -c "$conf" plan slow >"$tmp/out" 2>"$tmp/err" || rc=$?
took=$(($(date +%s) - start))
echo "  plan slow: exit $rc in ${took} s"
[ "$rc" = 0 ] || bad "plan on a slow but live target failed (exit $rc): $(head -c 400 "$tmp/err")"
[ "$took" -ge 4 ] || bad "the slow target answered in ${took} s: the test did not exercise the timeout"
st_exit "sync_fake_agent_timeout"
