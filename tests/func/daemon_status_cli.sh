#!/usr/bin/env bash
# Issue 13: `status --offline [--json]` goes through a running daemon
# (GET /v1/status) with the output, lines and exit status of the
# standalone command, and answers while the daemon's run holds the engine.
# The proof that it went through the daemon: a store file added after the
# daemon's scan is not in its report (the daemon's catalog, as its last
# scan left it), while the standalone command scans first and lists it.
# Live `status` (which connects to each server) goes through the daemon
# too (daemon_status_live) and gives the same report during the daemon's
# run. Bad requests get 4xx.
set -uo pipefail
. "$(dirname "$0")/lib/sync.bash"
. "$(dirname "$0")/lib/engine.bash"
. "$(dirname "$0")/lib/daemon.bash"
. "$(dirname "$0")/lib/api.bash"
st_init daemon_status_cli

state=$tmp/state conf=$tmp/d.conf sock=$tmp/state/distsync.sock
dm_status_setup 65536 # s1: 256 KiB at 200 kbit/s, about 10 s
echo stray >"$tmp/t3/patches/stray.bin" # extra on s3 (unknown to the catalog: not listed offline)
rm "$tmp/store/patches/f4.bin"          # extra on s2 and s3, known
ds freeze s3 --reason 'disk swap' >/dev/null || bad "freeze failed"
ds scan >/dev/null 2>&1 || bad "scan failed"

args=("--offline" "--offline --json" "s2 --offline" "s1 s2 --offline --json" "s3 --offline")
for a in "${args[@]}"; do dm_status_out "sa.${a// /_}" "$a"; done
dm_status_out "sa.live" "s2 s3"
dm_status_out "sa.live_json" "s2 s3 --json"
grep -q '^status s1: FAILED: .*knows no manifest' "$tmp/sa.--offline.out" || bad "standalone status --offline: $(cat "$tmp/sa.--offline.out")"
grep -q '^  frozen: server s3 is frozen until thawed (disk swap)$' "$tmp/sa.--offline.out" || bad "no frozen line: $(cat "$tmp/sa.--offline.out")"

log=$tmp/daemon.log
dm_start "$log" 2026-03-10T00:00:00Z 1
api_wait_up "$log" || st_exit daemon_status_cli
api POST /v1/run-now '{"servers":["s1"]}'
expect 202 "run-now s1"
id=$(jq_py 'j["id"]')
for _ in $(seq 1 100); do
  [ "$(ds runs --json | python3 -c 'import json,sys; r=json.load(sys.stdin)["runs"]; print(len(r) == 1 and r[0]["state"] == "running")')" = True ] && break
  sleep 0.1
done
# during the run
for a in "${args[@]}"; do
  f=${a// /_}
  dm_status_out "d.$f" "$a"
  [ "$(dm_status_mask <"$tmp/sa.$f.out")" = "$(dm_status_mask <"$tmp/d.$f.out")" ] ||
    bad "status $a differs through the daemon: $(diff "$tmp/sa.$f.out" "$tmp/d.$f.out" | head -6)"
  cmp -s "$tmp/sa.$f.err" "$tmp/d.$f.err" || bad "status $a: stderr differs: $(cat "$tmp/sa.$f.err" "$tmp/d.$f.err")"
done
dm_status_out "d.live" "s2 s3"
dm_status_out "d.live_json" "s2 s3 --json"
for f in live live_json; do
  [ "$(dm_status_mask <"$tmp/sa.$f.out")" = "$(dm_status_mask <"$tmp/d.$f.out")" ] ||
    bad "live status ($f) during the daemon's run differs: $(diff "$tmp/sa.$f.out" "$tmp/d.$f.out" | head -6)"
done
[ "$(api GET /v1/runs/"$id" && jq_py 'j["state"]')" = running ] || bad "the run ended before the checks: the test proves nothing"

# bad requests
api GET '/v1/status?servers=nope'
expect 404 "status of an unknown server" && [[ $body == *"no server named 'nope'"* ]] || bad "unknown server: $body"
api GET '/v1/status?servers=%zz'
expect 400 "status with a bad escape"
api POST /v1/status '{}'
expect 405 "POST /v1/status"

# through the daemon, not standalone: the daemon's catalog has no new.bin
head -c 1000 /dev/urandom >"$tmp/store/patches/new.bin"
ds status s2 --offline --json >"$tmp/d.new" 2>&1
grep -q 'new\.bin' "$tmp/d.new" && bad "status --offline did not go through the daemon (it scanned): $(head -c 300 "$tmp/d.new")"
run_wait "$id" ok 30
dm_stop
ds status s2 --offline --json >"$tmp/sa.new" 2>&1
grep -q '"path":"patches/new\.bin"' "$tmp/sa.new" || bad "standalone status --offline does not list the new file: $(head -c 300 "$tmp/sa.new")"
st_exit daemon_status_cli
