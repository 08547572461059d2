#!/usr/bin/env bash
# kill -9 of `distsync sync --all` while many servers are in flight (issue
# 8, "Engine tests"; the "Sync end to end" checks, with many servers): 12
# file:// servers (6 in-process, 6 through the agent), each capped at 2Mbit
# so 2 MiB of new incompressible content keeps it busy for seconds. Twice:
# a new store generation, a capped sync killed once several targets have
# files in flight, then
#  - on every target each visible file is a version the store once had
#    (sha256), nothing the target had is lost, and the manifest decodes;
#  - no agent outlives its console;
#  - an uncapped rerun converges every target (diff -r, manifest = store),
#    and history shows the killed runs as interrupted, none running.
# A reader reads every target file whole during all of it and must never
# see a partial or mixed file. DS_SEED=N replays the random kill points.
set -uo pipefail
. "$(dirname "$0")/lib/sync.bash"
. "$(dirname "$0")/lib/engine.bash"
st_init engine_kill9
seed=${DS_SEED:-$$}
RANDOM=$seed
echo "seed $seed (DS_SEED=$seed replays)"
store=$tmp/store known=$tmp/known
roots=()
en_head "$tmp/fast.conf" "$store" "$tmp/state"
en_head "$tmp/slow.conf" "$store" "$tmp/state"
for i in $(seq 1 12); do
  tr=local
  [ $((i % 2)) = 0 ] && tr=agent
  en_server "$tmp/fast.conf" "k$i" "$tmp/t/k$i" $tr
  en_server "$tmp/slow.conf" "k$i" "$tmp/t/k$i" $tr "bandwidth = 2Mbit"
  roots+=("$tmp/t/k$i")
done

# sync_all WHAT: an uncapped `sync --all`; every target must converge.
sync_all() {
  local rc=0 r
  "$DISTSYNC" -c "$tmp/fast.conf" sync --all >"$tmp/out" 2>"$tmp/err" || rc=$?
  [ $rc = 0 ] || bad "$1: sync --all exited $rc: $(head -c 600 "$tmp/err")"
  for r in "${roots[@]}"; do en_converged "$store" "$r" "$1: ${r##*/}"; done
}

# in_flight: how many targets have a file under .distsync/tmp.
in_flight() {
  local r n=0
  for r in "${roots[@]}"; do [ "$(en_nparts "$r")" -gt 0 ] && n=$((n + 1)); done
  echo $n
}

# kill_mid_run ROUND: a capped sync --all, kill -9 once 3 or more targets
# have files in flight (plus a random 0-2 s), then check every target.
kill_mid_run() {
  local what="round $1" pid i n=0 delay agents a r ended=""
  for r in "${roots[@]}"; do st_list "$r" "$r.before"; done
  "$DISTSYNC" -c "$tmp/slow.conf" sync --all --no-scan >"$tmp/kout" 2>"$tmp/kerr" &
  pid=$!
  st_pids+=("$pid")
  for i in $(seq 300); do
    n=$(in_flight)
    [ "$n" -ge 3 ] && break
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  delay=$((RANDOM % 2000))
  sleep "$(printf '%d.%03d' $((delay / 1000)) $((delay % 1000)))"
  n=$(in_flight)
  agents=$(pgrep -P "$pid" 2>/dev/null || true)
  kill -0 "$pid" 2>/dev/null || ended=" (the sync had already ended)"
  kill -9 "$pid" 2>/dev/null
  wait "$pid" 2>/dev/null
  echo "$what: killed with $n targets holding files in flight$ended"
  [ "$n" -ge 3 ] || bad "$what: $n targets had files in flight when killed, want 3 or more (servers in parallel, capped)$ended"
  for a in $agents; do
    en_wait_gone "$a"
    kill -0 "$a" 2>/dev/null && bad "$what: agent pid $a still alive 5 s after its console was killed"
  done
  for r in "${roots[@]}"; do
    st_check_versions "$r" "$known" "$what: ${r##*/}"
    st_check_kept "$r" "$r.before" "$store" "$what: ${r##*/}"
    en_manifest_valid "$r" "$what: ${r##*/}"
  done
}

# check_history: the killed runs are interrupted, no run is left running.
check_history() {
  "$DISTSYNC" -c "$tmp/fast.conf" history --json >"$tmp/hist" 2>"$tmp/herr" ||
    { bad "history --json failed: $(head -c 300 "$tmp/herr")"; return; }
  python3 - "$tmp/hist" <<'PY' || fail=1
import json, sys
st = [r["status"] for r in json.load(open(sys.argv[1]))]
print(f"history: {len(st)} runs, {st.count('interrupted')} interrupted")
if "running" in st:
    sys.exit(f"FAIL: history: {st.count('running')} runs still 'running' after the reruns")
if st.count("interrupted") < 6:
    sys.exit(f"FAIL: history: {st.count('interrupted')} runs interrupted by 2 kills of a 12-server batch, want 6 or more")
PY
}

en_fill "$store" 8 262144 "$known"
"$DISTSYNC" -c "$tmp/fast.conf" scan >/dev/null 2>&1 || bad "scan"
sync_all "first sync"
python3 "$ENGINE_CHECK" reader "$known" "$tmp/stop" "$tmp/reader.out" "${roots[@]}" &
rpid=$!
st_pids+=("$rpid")
for round in 1 2; do
  [ "$fail" = 0 ] || break
  en_fill "$store" 8 262144 "$known"
  "$DISTSYNC" -c "$tmp/fast.conf" scan >/dev/null 2>&1 || bad "scan round $round"
  kill_mid_run $round
  sync_all "rerun after round $round"
done
touch "$tmp/stop"
wait "$rpid"
read -r reads nbad <"$tmp/reader.out" || { reads=0 nbad=1; }
echo "reader: $reads whole-file reads, $nbad bad"
[ "${nbad:-1}" = 0 ] || bad "reader saw partial or mixed files: $(tail -n +2 "$tmp/reader.out")"
[ "${reads:-0}" -ge 500 ] || bad "reader made only $reads reads: the test proves nothing"
check_history
st_exit "engine_kill9 (seed $seed)"
