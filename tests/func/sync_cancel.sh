#!/usr/bin/env bash
# SIGINT / SIGTERM during `distsync sync` to an agent over a slow link, and
# kill -9 of the console (issue 7 item 7):
#  - a terminal's Ctrl-C (SIGINT to the whole foreground process group) ends
#    the run as "cancelled" with exit 130: no lease left on the target, no
#    .part under .distsync/tmp, history says cancelled, status counts every
#    file present as in sync (the manifest was committed), no agent left, and
#    the next sync converges; it winds down in under 4 s although 16 MiB
#    were queued ahead of a 2 MB/s link (only the frame on the wire ends);
#  - SIGTERM: exit 143, same state;
#  - a second signal exits at once;
#  - after kill -9 the next command that opens the catalog (history) shows
#    the run as interrupted, not running.
set -uo pipefail
. "$(dirname "$0")/lib/sync.bash"
st_init sync_cancel
export DISTSYNC_TEST_NO_FSYNC=1 DISTSYNC DS_SLOW_BPS=${DS_SLOW_BPS:-2000000}
store=$tmp/store target=$tmp/t
mkdir -p "$store/patches" "$store/engines" "$target"
# 40 MB in 1 MB files at 2 MB/s: the session queues up to 16 MiB ahead of
# the link; a cancel must drop what has not begun on the wire (8 s of
# sending) rather than push it first
for i in $(seq 1 40); do head -c 1000000 /dev/urandom >"$store/patches/p$i.bin"; done
head -c 3000 /dev/urandom >"$store/engines/small.dat"
st_conf "$tmp/d.conf" "$store" "$tmp/state" ag "file://$target" agent
printf 'agent = %s\n' "$DS_SRC/tests/func/lib/slow_agent.py" >>"$tmp/d.conf"
# a second server: `sync ag ag2` cancelled during ag never starts ag2 (one
# server at a time: in parallel, ag2 would run beside ag)
mkdir -p "$tmp/t2"
printf '\n[server ag2]\nurl = file://%s\ntransport = agent\nclasses = patches engines\n' "$tmp/t2" >>"$tmp/d.conf"
sed -i '/^state = /a max_servers = 1' "$tmp/d.conf"
ds() { "$DISTSYNC" -c "$tmp/d.conf" "$@"; }
ds scan >/dev/null || bad "scan"

# content files on the target
ncontent() { find "$target" -path "$target/.distsync" -prune -o -type f -print | wc -l; }
# wait_content N: until the target holds N content files (10 s at most)
wait_content() {
  local i
  for i in $(seq 200); do [ "$(ncontent)" -ge "$1" ] && return 0; sleep 0.05; done
  return 1
}
wait_gone() { # PID...: until these processes exit (the agent sees EOF)
  local a i
  for a in "$@"; do
    for i in $(seq 100); do kill -0 "$a" 2>/dev/null || break; sleep 0.05; done
  done
}
last_run() { # FIELD: of the newest run in history --json
  ds history --json --limit 1 | python3 -c 'import json,sys
d=json.load(sys.stdin); r=d[0] if isinstance(d,list) else d["runs"][0]; print(r[sys.argv[1]])' "$1"
}
# check_wound_down WHAT: the target holds no lease and no partial file
check_wound_down() {
  [ ! -e "$target/.distsync/lease" ] || bad "$1: lease left on the target: $(cat "$target/.distsync/lease" | head -c 200)"
  if [ -d "$target/.distsync/tmp" ] && [ -n "$(find "$target/.distsync/tmp" -mindepth 1 -print -quit)" ]; then
    bad "$1: partial files left: $(find "$target/.distsync/tmp" -mindepth 1 | head -3 | tr '\n' ' ')"
  fi
  local st
  st=$(last_run status) || bad "$1: history --json failed"
  [ "$st" = cancelled ] || bad "$1: history says '$st', want cancelled"
  ds status ag --json --no-scan >"$tmp/st.json" 2>"$tmp/st.err" || ds status ag --json >"$tmp/st.json" 2>"$tmp/st.err"
  python3 - "$tmp/st.json" "$(ncontent)" "$1" <<'PY' || fail=1
import json, sys
d = json.load(open(sys.argv[1]))[0]
present, what = int(sys.argv[2]), sys.argv[3]
c = d["counts"]
if c["in_sync"] != present or c.get("drifted", 0):
    print(f"FAIL: {what}: status says {c} with {present} files present on the target", file=sys.stderr)
    sys.exit(1)
PY
}

# cancel_with SIG WANT_RC WHAT: start a sync in its own session (a terminal's
# process group), wait until some files are published, send SIG to the group.
cancel_with() {
  local sig=$1 want=$2 what=$3 pid rc=0 t0 agents ms
  rm -rf "$target" && mkdir -p "$target"
  setsid "$DISTSYNC" -c "$tmp/d.conf" sync ag ag2 >"$tmp/out" 2>"$tmp/err" &
  pid=$!
  st_pids+=("$pid")
  wait_content 2 || bad "$what: nothing was published within 10 s"
  agents=$(pgrep -P "$pid" 2>/dev/null || true)
  t0=$(date +%s%3N)
  kill -"$sig" -- -"$pid"
  wait "$pid" || rc=$?
  ms=$(($(date +%s%3N) - t0))
  echo "$what: exit $rc after $ms ms, $(ncontent) of 41 files published"
  [ "$ms" -lt 4000 ] || bad "$what: the console took $ms ms to wind down (queued output not dropped?)"
  [ "$rc" = "$want" ] || bad "$what: exit $rc, want $want: $(head -c 600 "$tmp/err")"
  grep -q "cancelled" "$tmp/err" || bad "$what: stderr does not say cancelled: $(head -c 300 "$tmp/err")"
  [ "$(ncontent)" -lt 41 ] || bad "$what: the sync finished before the signal (make the link slower)"
  sleep 0.3
  for a in $agents; do kill -0 "$a" 2>/dev/null && bad "$what: agent $a outlived its console"; done
  check_wound_down "$what"
  [ -z "$(ls -A "$tmp/t2")" ] || bad "$what: server ag2 was started after the cancel"
  ds history --server ag2 --json | grep -q '"id"' && bad "$what: history has a run for ag2"
  ds sync ag >"$tmp/out2" 2>&1 || bad "$what: next sync failed: $(head -c 400 "$tmp/out2")"
  st_check_converged "$store" "$target" "$what: next sync"
}

cancel_with INT 130 "SIGINT (Ctrl-C)"
cancel_with TERM 143 "SIGTERM"

# a second signal exits at once (the link is slow enough that winding down
# the window of files in flight takes a while)
rm -rf "$target" && mkdir -p "$target"
DS_SLOW_BPS=300000 "$DISTSYNC" -c "$tmp/d.conf" sync ag >"$tmp/out" 2>"$tmp/err" &
pid=$!
st_pids+=("$pid")
wait_content 1 || bad "second signal: nothing published within 10 s"
agents=$(pgrep -P "$pid" 2>/dev/null || true)
kill -TERM "$pid"; sleep 0.2; kill -INT "$pid" 2>/dev/null
t0=$(date +%s%3N); rc=0; wait "$pid" || rc=$?
[ "$rc" = 130 ] || bad "second signal: exit $rc, want 130 (at once, on the second signal)"
echo "second signal: exit $rc after $(($(date +%s%3N) - t0)) ms"
wait_gone $agents
ds sync ag >/dev/null 2>&1 || bad "second signal: next sync failed"
st_check_converged "$store" "$target" "after a second signal"

# kill -9: the next command that opens the catalog marks the run interrupted
rm -rf "$target" && mkdir -p "$target"
"$DISTSYNC" -c "$tmp/d.conf" sync ag >"$tmp/out" 2>"$tmp/err" &
pid=$!
st_pids+=("$pid")
wait_content 1 || bad "kill -9: nothing published within 10 s"
agents=$(pgrep -P "$pid" 2>/dev/null || true)
kill -9 "$pid"; wait "$pid" 2>/dev/null
wait_gone $agents
st=$(last_run status)
[ "$st" = interrupted ] || bad "kill -9: history says '$st' for the killed run, want interrupted"
ds sync ag >/dev/null 2>&1 || bad "kill -9: next sync failed"
st_check_converged "$store" "$target" "after kill -9"
st_exit sync_cancel
