#!/usr/bin/env bash
# A version with an empty part ("1.0.", "1..0", "2.-rc", "3.0+") is refused
# where it is read: config check names file:line, the section and the
# key (a [package]'s version and from, a [rollout]'s version); the gate's
# API answers a client's request or report carrying one with a 400 naming
# "version". "7.0", "7.0-rc1" and "7.0+b2" stay valid.
set -uo pipefail
. "$(dirname "$0")/lib/sync.bash"
. "$(dirname "$0")/lib/engine.bash"
. "$(dirname "$0")/lib/daemon.bash"
. "$(dirname "$0")/lib/api.bash"
st_init config_version_parts

gate_init 16
gate_console
gate_rollout r0 'c-*'
printf '\n[site paris]\nclients = c-*\n' >>"$conf"
good=$(cat "$conf")
check() { "$DISTSYNC" -c "$conf" config check >"$tmp/out" 2>&1; }
check || bad "the valid config: $(cat "$tmp/out")"
for v in 1.0. 1..0 2.-rc 3.0+ .1; do
  for at in "package agent-7:version" "package agent-7:from" "rollout agent:version"; do
    sec=${at%%:*} key=${at#*:}
    awk -v sec="[$sec]" -v key="$key" -v v="$v" '
      /^\[/ { insec = ($0 == sec) }
      insec && key == "from" && /^version = / { print; print "from = " v; next }
      insec && key == "version" && /^version = / { print "version = " v; next }
      { print }' <<<"$good" >"$conf"
    line=$(grep -n "^$key = $v\$" "$conf" | cut -d: -f1)
    rc=0
    check || rc=$?
    [ "$rc" = 2 ] || bad "$key = $v in [$sec]: config check exit $rc, expected 2: $(cat "$tmp/out")"
    grep -qF "d.conf:$line: [$sec] key '$key': invalid version '$v'" "$tmp/out" ||
      bad "$key = $v in [$sec]: the error does not name file:$line, the section and the key: $(cat "$tmp/out")"
  done
done
for v in 7.0-rc1 7.0+b2 7_0; do
  sed "0,/^version = 7.0$/s//version = 7.1/; s/^\(path = .*\)$/\1\nfrom = $v/" <<<"$good" >"$conf"
  sed -i '/^\[rollout agent\]/,$s/^version = 7.0$/version = 7.1/' "$conf"
  check || bad "from = $v: $(cat "$tmp/out")"
done

# the gate's API
echo "$good" >"$conf"
log=$tmp/daemon.log
dm_start "$log" 2026-03-10T01:00:00Z 1
api_wait_up "$log" || st_exit config_version_parts
for v in 7.0. 6..9; do
  code=$(curl -s -m 10 -o "$tmp/body" -w '%{http_code}' -H "Authorization: Bearer $entok" \
    -H 'Content-Type: application/json' \
    --data-binary "{\"client\":\"c-1\",\"product\":\"agent\",\"version\":\"$v\",\"site\":\"paris\"}" \
    "http://127.0.0.1:$port/v1/upgrade/request")
  [ "$code" = 400 ] && grep -qF '\"version\": expected a version' "$tmp/body" ||
    bad "an upgrade request from version $v: HTTP $code: $(cat "$tmp/body")"
done
code=$(curl -s -m 10 -o "$tmp/body" -w '%{http_code}' -H "Authorization: Bearer $entok" \
  -H 'Content-Type: application/json' \
  --data-binary '{"client":"c-1","product":"agent","version":"6.9","site":"paris"}' \
  "http://127.0.0.1:$port/v1/upgrade/request")
[ "$code" = 200 ] || bad "an upgrade request from version 6.9: HTTP $code: $(cat "$tmp/body")"
dm_stop
st_exit config_version_parts
