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

# dm_log_once LOG: no line of LOG names its run or server twice: after
# "run=ID" the rest of the line never says ID again, and after "server=S"
# never "server S:" (issue 13: "run=ID: run ID: ok").
dm_log_once() {
  local twice
  twice=$(python3 - "$1" <<'PY'
import re, sys
for line in open(sys.argv[1], errors="replace"):
    m = re.search(r"run=(\S+?)(?: server=(\S+?))?: (.*)$", line)
    if not m:
        continue
    run, srv, rest = m.group(1), m.group(2), m.group(3)
    if run in rest or (srv and re.search(r"server " + re.escape(srv) + r":", rest)):
        print(line.rstrip())
PY
)
  [ -z "$twice" ] || bad "log lines name their run or server twice in $1: $twice"
  grep -q "run=" "$1" || bad "no line of $1 carries run="
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

# dm_status_setup BYTES: the set-up of the daemon status tests: $conf on
# $tmp/store (en_fill: 4 patches of BYTES each) and $state, with three
# local servers, s1 throttled to 200 kbit/s (a run of s1 holds the daemon's
# engine for a while), s2 and s3 synced once; defines ds.
dm_status_setup() {
  en_fill "$tmp/store" 4 "$1"
  en_head "$conf" "$tmp/store" "$state"
  en_server "$conf" s1 "$tmp/t1" local "bandwidth = 200kbit"
  en_server "$conf" s2 "$tmp/t2" local
  en_server "$conf" s3 "$tmp/t3" local
  ds() { "$DISTSYNC" -c "$conf" "$@"; }
  ds sync s2 s3 >/dev/null 2>&1 || bad "first sync failed"
}

# dm_status_out NAME ARGS: `ds status ARGS` (ARGS split on spaces): its
# stdout and then "exit N" into $tmp/NAME.out, its stderr into $tmp/NAME.err.
dm_status_out() {
  local rc=0
  # shellcheck disable=SC2086
  ds status $2 >"$tmp/$1.out" 2>"$tmp/$1.err" || rc=$?
  echo "exit $rc" >>"$tmp/$1.out"
}

# dm_status_mask: stdin to stdout with the console's retain store line
# masked: its size on disk (its WAL grows with any writer) and its
# versions (a run retains the versions it sends while it sends).
dm_status_mask() {
  sed -E 's/"console_retain":\{[^}]*\}/"console_retain":N/g; s/retain: [0-9]+ versions, [0-9.]+ [KMG]?i?B stored, [0-9.]+ [KMG]?i?B on disk/retain: N/'
}
