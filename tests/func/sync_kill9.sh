#!/usr/bin/env bash
# kill -9 during `distsync sync` to a file:// server, at random points, with
# transport=local and transport=agent, and kill -9 of the agent alone. After
# each kill: every visible target file is absent, an old version or the new
# one (sha256 against all versions ever generated); the rerun converges
# (diff -r) and leaves nothing in <target>/.distsync/tmp; an agent does not
# outlive its console; history shows the killed runs as interrupted.
# Each kill comes at a random point of the first two thirds of the last
# full sync's time, or of a kill that came after its sync ended
# (st_kill_delay: derived from measured times, on a loaded box too).
# DS_SEED=N replays the random points; KILLS=N per transport (default 8).
set -uo pipefail
. "$(dirname "$0")/lib/sync.bash"
st_init sync_kill9
seed=${DS_SEED:-$$}
RANDOM=$seed
kills=${KILLS:-8}
echo "seed $seed (DS_SEED=$seed replays)"
store=$tmp/store known=$tmp/known
st_conf "$tmp/d.conf" "$store" "$tmp/state" \
  loc "file://$tmp/t-local" local ag "file://$tmp/t-agent" agent
ds() { "$DISTSYNC" -c "$tmp/d.conf" "$@"; }
mkdir -p "$tmp/t-local" "$tmp/t-agent"
st_gen "$store" 0 "$known" --files 30 --max 2048 || bad "mkstore"
gen=0

# now_ms: monotonic-enough wall clock in ms.
now_ms() { date +%s%3N; }

# full_sync SERVER TARGET WHAT: a complete sync that must converge; sets dur_ms.
full_sync() {
  local t0 rc=0
  t0=$(now_ms)
  ds sync "$1" --json >"$tmp/out" 2>"$tmp/err" || rc=$?
  dur_ms=$(($(now_ms) - t0))
  [ $rc = 0 ] || bad "$3: rerun of sync $1 exited $rc: $(head -c 600 "$tmp/err")"
  st_check_converged "$store" "$2" "$3"
}

# next_gen: the store's next version, scanned.
next_gen() {
  gen=$((gen + 1))
  st_gen "$store" "$gen" "$known" || bad "mkstore gen $gen"
  ds scan >/dev/null 2>&1 || bad "scan gen $gen"
}

# kill_console SERVER TARGET: sync, kill -9 at a random point, check, rerun.
kill_console() {
  local srv=$1 target=$2 delay pid agents a i
  st_kill_delay 20
  st_list "$target" "$tmp/before"
  "$DISTSYNC" -c "$tmp/d.conf" sync "$srv" --json >"$tmp/kout" 2>"$tmp/kerr" &
  pid=$!
  st_pids+=("$pid")
  sleep "$(printf '%d.%03d' $((delay / 1000)) $((delay % 1000)))"
  agents=$(pgrep -P "$pid" 2>/dev/null || true)
  kill -9 "$pid" 2>/dev/null
  wait "$pid" 2>/dev/null
  if [ $? = 137 ]; then midrun=$((midrun + 1)); else st_kill_missed; fi
  attempts=$((attempts + 1))
  st_check_versions "$target" "$known" "$srv gen $gen, console killed after ${delay} ms"
  st_check_kept "$target" "$tmp/before" "$store" "$srv gen $gen, console killed after ${delay} ms"
  for a in $agents; do # the agent must notice its console died
    for i in $(seq 50); do kill -0 "$a" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$a" 2>/dev/null; then
      bad "$srv: agent pid $a still alive 5 s after its console was killed"
      kill -9 "$a" 2>/dev/null
    fi
  done
  full_sync "$srv" "$target" "$srv gen $gen after a console kill at ${delay} ms"
}

# kill_agent: sync through the agent, kill -9 the agent alone.
kill_agent() {
  local delay pid a="" rc=0 i
  st_kill_delay 20
  st_list "$tmp/t-agent" "$tmp/before"
  "$DISTSYNC" -c "$tmp/d.conf" sync ag --json >"$tmp/kout" 2>"$tmp/kerr" &
  pid=$!
  st_pids+=("$pid")
  for i in $(seq 200); do
    a=$(pgrep -P "$pid" 2>/dev/null | head -1 || true)
    [ -n "$a" ] && break
    sleep 0.01
  done
  sleep "$(printf '%d.%03d' $((delay / 1000)) $((delay % 1000)))"
  [ -n "$a" ] && kill -9 "$a" 2>/dev/null
  wait "$pid" || rc=$?
  if [ $rc != 0 ]; then midrun=$((midrun + 1)); else st_kill_missed; fi
  attempts=$((attempts + 1))
  if [ $rc -ge 128 ]; then
    bad "ag: console died with signal $((rc - 128)) when its agent was killed"
  elif [ $rc != 0 ] && ! grep -q "ag" "$tmp/kerr" "$tmp/kout"; then
    bad "ag: agent killed: exit $rc but no error names the server: $(head -c 400 "$tmp/kerr")"
  fi
  st_check_versions "$tmp/t-agent" "$known" "ag gen $gen, agent killed after ${delay} ms"
  st_check_kept "$tmp/t-agent" "$tmp/before" "$store" "ag gen $gen, agent killed after ${delay} ms"
  full_sync ag "$tmp/t-agent" "ag gen $gen after an agent kill at ${delay} ms"
}

ds scan >/dev/null 2>&1 || bad "first scan"
dur_ms=400 midrun=0 attempts=0
for srv in loc ag; do
  target=$tmp/t-local
  [ $srv = ag ] && target=$tmp/t-agent
  kill_console $srv "$target" # during the first, whole-file sync
done
for k in $(seq "$kills"); do
  next_gen
  kill_console loc "$tmp/t-local"
  kill_console ag "$tmp/t-agent"
  [ "$fail" = 0 ] || break
done
for k in 1 2 3; do
  [ "$fail" = 0 ] || break
  next_gen
  kill_agent
  full_sync loc "$tmp/t-local" "loc gen $gen"
done

echo "kills that landed mid-sync: $midrun of $attempts"
[ $((midrun * 2)) -ge "$attempts" ] || bad "only $midrun of $attempts kills landed during a sync"

# Killed runs were recorded, and none is left 'running'.
ds history --json >"$tmp/hist" 2>"$tmp/herr" || bad "history exited $?: $(cat "$tmp/herr")"
python3 - "$tmp/hist" <<'PY' || fail=1
import json, sys
runs = json.load(open(sys.argv[1]))
st = [r["status"] for r in runs]
if "running" in st:
    sys.exit(f"FAIL: history: runs still 'running' after reruns: {st.count('running')}")
if st.count("interrupted") < 1:
    sys.exit(f"FAIL: history: no run marked interrupted after kill -9 ({len(runs)} runs: {set(st)})")
if st.count("ok") < 2:
    sys.exit(f"FAIL: history: fewer than 2 ok runs: {st}")
PY
st_exit "sync_kill9 ($((2 * kills + 5)) console/agent kills, seed $seed)"
