# Helpers for the daemon tests (tests/func/daemon_*.sh), sourced after
# sync.bash and engine.bash. The daemon runs on the test clock of
# DS_TEST_HOOKS builds: DISTSYNC_TEST_NOW (epoch seconds) at start, moving
# DISTSYNC_TEST_SPEED times faster than real time.

# dm_epoch RFC3339: seconds since the epoch.
dm_epoch() { date -u -d "$1" +%s; }

# dm_start LOG NOW SPEED [daemon args...]: starts the daemon on $conf in the
# background; sets dpid.
dm_start() {
  local log=$1 now=$2 speed=$3
  shift 3
  DISTSYNC_TEST_NOW=$(dm_epoch "$now") DISTSYNC_TEST_SPEED=$speed \
    "$DISTSYNC" -c "$conf" daemon "$@" >>"$log" 2>&1 &
  dpid=$!
  st_pids+=("$dpid")
}

# dm_wait LOG PATTERN SECONDS: waits until LOG has a line matching PATTERN
# (grep -E); returns 1 (after saying so) when it does not within SECONDS.
dm_wait() {
  local i
  for i in $(seq 1 $(($3 * 10))); do
    grep -Eq "$2" "$1" 2>/dev/null && return 0
    sleep 0.1
  done
  bad "no line matching '$2' in $1 within $3 s; it has: $(tail -5 "$1" | tr '\n' '|')"
  return 1
}

# dm_stop [SIGNAL]: stops the daemon and checks it exits 0 within 20 s.
dm_stop() {
  local rc=0 i
  kill -"${1:-TERM}" "$dpid" 2>/dev/null
  for i in $(seq 1 200); do
    kill -0 "$dpid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$dpid" 2>/dev/null; then
    bad "the daemon did not stop within 20 s of SIG${1:-TERM}"
    kill -9 "$dpid"
  fi
  wait "$dpid" || rc=$?
  [ "$rc" = 0 ] || bad "the daemon exited $rc after SIG${1:-TERM}"
}

# dm_fires SCHEDULE: the recorded fires, "fire|outcome|reason" per line.
dm_fires() {
  python3 - "$state/catalog.db" "$1" <<'PY'
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
for f, o, r in db.execute("SELECT fire, outcome, COALESCE(reason, '') FROM schedule_fire"
                          " WHERE schedule = ? ORDER BY fire", (sys.argv[2],)):
    print(f"{f}|{o}|{r}")
PY
}

# dm_runs SERVER: how many runs the history records for SERVER.
dm_runs() {
  "$DISTSYNC" -c "$conf" history "$1" --json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))'
}
