#!/usr/bin/env bash
# The CLI uses a running daemon (its socket answers) and works standalone
# when none runs, with the same output:
#  - schedule next [NAME] [--json]: the same lines and JSON either way;
#  - freeze / thaw: the same lines; the daemon logs them;
#  - sync: a run-now the daemon queues behind its running run, so a sync
#    started during a daemon run waits and succeeds, never "busy", never
#    two writers; its lines and --json are those of a standalone sync
#    (elapsed time and byte counts aside);
#  - history [--events] [--json]: the same lines and JSON (GET /v1/history);
#  - runs [--json]: the live runs with progress (none without a daemon);
#    cancel RUN ends one: the sync following it reports it cancelled.
set -uo pipefail
. "$(dirname "$0")/lib/sync.bash"
. "$(dirname "$0")/lib/engine.bash"
. "$(dirname "$0")/lib/daemon.bash"
. "$(dirname "$0")/lib/api.bash"
st_init daemon_api_cli

state=$tmp/state
conf=$tmp/d.conf
sock=$state/distsync.sock
en_fill "$tmp/store" 4 65536 # 256 KiB: about 5 s at 400 kbit/s
en_head "$conf" "$tmp/store" "$state"
en_server "$conf" s1 "$tmp/t1" local "bandwidth = 400kbit"
en_server "$conf" s2 "$tmp/t2" local
en_server "$conf" s3 "$tmp/t3" local
printf '\n[schedule nightly]\nwhen = daily 02:00\ntz = Europe/Paris\nservers = s1\n' >>"$conf"
printf '\n[schedule weekly]\nwhen = weekly Sun 03:30\ntz = UTC\nservers = s2\n' >>"$conf"
"$DISTSYNC" -c "$conf" scan >/dev/null 2>&1 || bad "scan failed"

ds() { "$DISTSYNC" -c "$conf" "$@"; }
# masks what differs from run to run: elapsed time, byte counts
mask() { sed -E 's/"(elapsed_s|bytes_[a-z]+)":[0-9.e+-]+/"\1":N/g; s/, [0-9.]+ [KMG]?i?B on the wire \(literal [^)]*\), [0-9.]+ ?[a-z]+$/, BYTES, TIME/'; }

# ---- standalone ----
ds runs --json >"$tmp/runs.none" 2>/dev/null || bad "runs without a daemon exited $?"
[ "$(cat "$tmp/runs.none")" = '{"runs":[]}' ] || bad "runs --json without a daemon: $(cat "$tmp/runs.none")"
rc=0
ds cancel 'now-1@x' >/dev/null 2>"$tmp/err" || rc=$?
[ "$rc" = 1 ] && grep -q 'no daemon is running' "$tmp/err" || bad "cancel without a daemon: exit $rc: $(cat "$tmp/err")"
for args in "--json" "" "nightly --json" "nightly" "weekly --count 3"; do
  # shellcheck disable=SC2086
  ds schedule next $args --from 2026-03-28T12:00:00Z >"$tmp/sn.${args// /_}.standalone" ||
    bad "schedule next $args (standalone) exited $?"
done
ds freeze s3 --until 2030-01-01T00:00:00Z --reason 'disk swap' >"$tmp/freeze.standalone" || bad "freeze exited $?"
ds thaw s3 s2 >"$tmp/thaw.standalone" || bad "thaw exited $?"
ds sync s2 >/dev/null 2>&1 || bad "sync s2 (standalone) exited $?"
# the same no-op sync either way
ds sync s2 --json >"$tmp/sync2.json.standalone" 2>/dev/null || bad "sync s2 --json (standalone) exited $?"
ds sync s2 >"$tmp/sync2.txt.standalone" 2>/dev/null || bad "sync s2 (standalone) exited $?"

# ---- through the daemon ----
log=$tmp/daemon.log
dm_start "$log" 2026-03-10T00:00:00Z 1
api_wait_up "$log" || st_exit daemon_api_cli
for args in "--json" "" "nightly --json" "nightly" "weekly --count 3"; do
  f=$tmp/sn.${args// /_}
  # shellcheck disable=SC2086
  ds schedule next $args --from 2026-03-28T12:00:00Z >"$f.daemon" || bad "schedule next $args (daemon) exited $?"
  cmp -s "$f.standalone" "$f.daemon" || bad "schedule next $args differs: $(diff "$f.standalone" "$f.daemon" | head -5)"
done
rc=0
ds schedule next nope >/dev/null 2>"$tmp/err" || rc=$?
[ "$rc" = 2 ] && grep -q "no schedule named 'nope'" "$tmp/err" || bad "schedule next nope (daemon): exit $rc: $(cat "$tmp/err")"
ds freeze s3 --until 2030-01-01T00:00:00Z --reason 'disk swap' >"$tmp/freeze.daemon" || bad "freeze (daemon) exited $?"
cmp -s "$tmp/freeze.standalone" "$tmp/freeze.daemon" || bad "freeze output differs: $(cat "$tmp/freeze.standalone" "$tmp/freeze.daemon")"
grep -q 'server s3: frozen through the API' "$log" || bad "freeze did not go through the daemon"
ds thaw s3 s2 >"$tmp/thaw.daemon" || bad "thaw (daemon) exited $?"
cmp -s "$tmp/thaw.standalone" "$tmp/thaw.daemon" || bad "thaw output differs: $(cat "$tmp/thaw.standalone" "$tmp/thaw.daemon")"
grep -q 'server s3: thawed through the API' "$log" || bad "thaw did not go through the daemon"
ds sync s2 --json >"$tmp/sync2.json.daemon" 2>"$tmp/err" || bad "sync s2 --json (daemon) exited $?: $(cat "$tmp/err")"
grep -q 'through the daemon' "$tmp/err" || bad "sync did not say it went through the daemon: $(cat "$tmp/err")"
[ "$(mask <"$tmp/sync2.json.standalone")" = "$(mask <"$tmp/sync2.json.daemon")" ] ||
  bad "sync --json differs: $(cat "$tmp/sync2.json.standalone" "$tmp/sync2.json.daemon")"
ds sync s2 >"$tmp/sync2.txt.daemon" 2>/dev/null || bad "sync s2 (daemon) exited $?"
[ "$(mask <"$tmp/sync2.txt.standalone")" = "$(mask <"$tmp/sync2.txt.daemon")" ] ||
  bad "sync text differs: $(cat "$tmp/sync2.txt.standalone" "$tmp/sync2.txt.daemon")"

# a sync during the daemon's run waits for it, then runs: never busy
api POST /v1/run-now '{"servers":["s1"]}'
expect 202 "run-now s1"
first=$(jq_py 'j["id"]')
for _ in $(seq 1 50); do
  [ "$(ds runs --json | python3 -c 'import json,sys; r=json.load(sys.stdin)["runs"]; print(len(r) == 1 and r[0]["progress"]["bytes_done"] > 0)')" = True ] && break
  sleep 0.1
done
ds runs >"$tmp/runs.txt" 2>&1
grep -Eq "^run $first: running \(manual\), 1 server, .* of 256\.[0-9] KiB \([0-9]+%\), .* on the wire, .*, ETA " "$tmp/runs.txt" ||
  bad "runs (text) while s1 syncs: $(cat "$tmp/runs.txt")"
grep -q '^  s1: syncing, ' "$tmp/runs.txt" || bad "runs does not show s1's progress: $(cat "$tmp/runs.txt")"
rc=0
ds sync s1 >"$tmp/sync1.txt" 2>"$tmp/sync1.err" || rc=$?
[ "$rc" = 0 ] || bad "sync s1 during the daemon's run exited $rc: $(cat "$tmp/sync1.txt" "$tmp/sync1.err")"
grep -q '^sync s1: ok, ' "$tmp/sync1.txt" || bad "sync s1 said: $(cat "$tmp/sync1.txt")"
run_wait "$first" ok 5
en_converged "$tmp/store" "$tmp/t1" "s1"
[ "$(ds history s1 --json | python3 -c 'import json,sys; print(sorted(r["status"] for r in json.load(sys.stdin)))')" = \
  "['ok', 'ok']" ] || bad "history of s1 (two runs, one after the other): $(ds history s1 --json)"

# cancel through the CLI: the sync following the run reports it
echo more >>"$tmp/store/patches/f1.bin"
head -c 262144 /dev/urandom >"$tmp/store/patches/f9.bin"
ds sync s1 >"$tmp/sync3.txt" 2>"$tmp/sync3.err" &
spid=$!
for _ in $(seq 1 100); do
  id=$(ds runs --json 2>/dev/null | python3 -c 'import json,sys; r=json.load(sys.stdin)["runs"]; print(r[0]["id"] if r and r[0]["state"] == "running" else "")')
  [ -n "$id" ] && break
  sleep 0.1
done
[ -n "$id" ] || bad "the sync's run never ran"
out=$(ds cancel "$id" 2>&1) || bad "cancel $id exited $?: $out"
[ "$out" = "run $id: cancelling (its servers wind down)" ] || bad "cancel said: $out"
rc=0
wait "$spid" || rc=$?
[ "$rc" = 4 ] || bad "the cancelled sync exited $rc: $(cat "$tmp/sync3.txt" "$tmp/sync3.err")"
grep -q '^sync s1: CANCELLED, ' "$tmp/sync3.txt" || bad "the cancelled sync said: $(cat "$tmp/sync3.txt")"
rc=0
out=$(ds cancel "$id" 2>&1) || rc=$?
[ "$rc" = 1 ] && echo "$out" | grep -q "already ended (cancelled)" || bad "a second cancel: exit $rc: $out"

hist=("" "--json" "s1 --events" "s1 --events --json" "--limit 1 s1" "--site nowhere")
for args in "${hist[@]}"; do
  # shellcheck disable=SC2086
  ds history $args >"$tmp/h.${args// /_}.daemon" 2>&1
done
dm_stop
for args in "${hist[@]}"; do
  f=$tmp/h.${args// /_}
  # shellcheck disable=SC2086
  ds history $args >"$f.standalone" 2>&1
  cmp -s "$f.standalone" "$f.daemon" || bad "history $args differs: $(diff "$f.standalone" "$f.daemon" | head -6)"
done
[ "$(wc -l <"$tmp/h.s1_--events.daemon")" -gt 10 ] || bad "history s1 --events is short: $(cat "$tmp/h.s1_--events.daemon")"
st_exit daemon_api_cli
