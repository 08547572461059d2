#!/usr/bin/env bash
# The DST night in Europe/Paris through the API (issue 13): "daily 02:30"
# on 29 March 2026, when 02:30 does not exist. GET /v1/schedules gives the
# next fire as the daemon arms it (03:00 CEST = 01:00Z), and after it ran,
# last_fire is that instant with outcome ok and next_fire the 30 March
# 02:30 CEST (00:30Z); the preview endpoint agrees with schedule next.
set -uo pipefail
. "$(dirname "$0")/lib/sync.bash"
. "$(dirname "$0")/lib/engine.bash"
. "$(dirname "$0")/lib/daemon.bash"
. "$(dirname "$0")/lib/api.bash"
st_init daemon_api_dst

state=$tmp/state
conf=$tmp/d.conf
sock=$state/distsync.sock
en_fill "$tmp/store" 1 4096
en_head "$conf" "$tmp/store" "$state"
en_server "$conf" s1 "$tmp/t" local
printf '\n[schedule nightly]\nwhen = daily 02:30\ntz = Europe/Paris\nservers = s1\n' >>"$conf"

# nf: the schedule's (next_fire, last fire, last outcome) from GET /v1/schedules.
nf() {
  api GET /v1/schedules
  jq_py '[(s["next_fire"], (s["last_fire"] or {}).get("fire"), (s["last_fire"] or {}).get("outcome")) for s in j["schedules"] if s["schedule"] == "nightly"]'
}

log=$tmp/daemon.log
dm_start "$log" 2026-03-29T00:55:00Z 60 # a minute a second
api_wait_up "$log" || st_exit daemon_api_dst
got=$(nf)
case "$got" in
"[('2026-03-29T01:00:00Z', "*) ;;
*) bad "GET /v1/schedules before the DST night: $got (want next_fire 2026-03-29T01:00:00Z)" ;;
esac
api GET '/v1/schedules/nightly/preview?count=2&from=2026-03-29T00:00:00Z'
expect 200 "preview"
echo "$body" | grep -q '2026-03-29T03:00:00+02:00' && echo "$body" | grep -q '2026-03-30T02:30:00+02:00' ||
  bad "the preview over the DST night: $body"
dm_wait "$log" 'run=nightly@2026-03-29T01:00Z: ok' 30
got=$(nf)
[ "$got" = "[('2026-03-30T00:30:00Z', '2026-03-29T01:00:00Z', 'ok')]" ] ||
  bad "GET /v1/schedules after the DST-night fire: $got"
dm_stop
st_exit daemon_api_dst
