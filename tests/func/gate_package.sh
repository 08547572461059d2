#!/usr/bin/env bash
# GET /v1/upgrade/package/TOKEN against the real daemon (issue 14): the
# gate serves a grant's package from the content store, paced by the
# engine's limiter under the site's max_upgrade_bandwidth:
#  - two clients of site paris (max_upgrade_bandwidth = 4Mbit, 500 kB/s)
#    download the 600,000-byte package at once: both together take about
#    2 x 600,000 / 500,000 = 2.4 s (asserted within [1.9, 8] s: the lower
#    bound is the cap, the upper a loaded machine), and each copy has the
#    store's SHA-256;
#  - GET /v1/sites counts the bytes sent to paris (1,200,000 and more);
#  - a client that goes away after 0.5 s got part of the file; its
#    download ends (none in progress) and the daemon serves on;
#  - a Range request resumes (206, the tail's bytes);
#  - a wrong token is 403, a reported grant's token 404; neither sends bytes.
set -uo pipefail
. "$(dirname "$0")/lib/sync.bash"
. "$(dirname "$0")/lib/engine.bash"
. "$(dirname "$0")/lib/daemon.bash"
. "$(dirname "$0")/lib/api.bash"
st_init gate_package

gate_init 600000
mkdir -p "$tmp/t1"
gate_console
cat >>"$conf" <<CONF

[site paris]
clients = par-*
max_upgrade_bandwidth = 4Mbit

[server s1]
url = file://$tmp/t1
site = paris
CONF
gate_rollout wide 'par-*' 'lease = 15m'
gate_up gate_package 1 s1
api_url=http://127.0.0.1:$port
EN=(-H "Authorization: Bearer $entok")
OP=(-H "Authorization: Bearer $optok")
want=$(sha256sum <"$tmp/store/engines/agent-7.0.msi" | cut -d' ' -f1)

grant() { # CLIENT: prints the grant's token
  api POST /v1/upgrade/request "{\"client\":\"$1\",\"product\":\"agent\",\"version\":\"6.0\"}" "${EN[@]}"
  [ "$(jq_py 'j["decision"]')" = grant ] || { bad "no grant for $1: $body"; return 1; }
  jq_py 'j["token"]'
}
t1=$(grant par-01)
t2=$(grant par-02)

# ---- two downloads at once, paced by the site's cap ----
fetch() { # TOKEN OUT [CURL ARGS...]
  local t=$1 o=$2
  shift 2
  curl -s -m 30 -o "$o" -w '%{http_code}' "$@" "${EN[@]}" "$api_url/v1/upgrade/package/$t"
}
t0=$(date +%s.%N)
fetch "$t1" "$tmp/p1" >"$tmp/c1" &
p1=$!
fetch "$t2" "$tmp/p2" >"$tmp/c2" &
p2=$!
wait "$p1" "$p2"
el=$(python3 -c "import time; print(round(time.time() - $t0, 2))")
echo "two downloads of 600,000 bytes at 4Mbit: ${el}s (expected about 2.4)"
for i in 1 2; do
  [ "$(cat "$tmp/c$i")" = 200 ] || bad "download $i: HTTP $(cat "$tmp/c$i")"
  [ "$(sha256sum <"$tmp/p$i" | cut -d' ' -f1)" = "$want" ] || bad "download $i: not the store's bytes"
done
python3 -c "import sys; sys.exit(0 if 1.9 <= $el <= 8 else 1)" ||
  bad "two downloads took ${el}s: not paced at the site's max_upgrade_bandwidth (expected about 2.4 s)"

api GET /v1/sites "" "${OP[@]}"
sent=$(jq_py '[s["upgrade_bytes"] for s in j["sites"] if s["site"] == "paris"][0]')
[ "$sent" = 1200000 ] || bad "GET /v1/sites counts $sent bytes sent to paris, expected 1200000"

# ---- a client that goes away mid-download: the download ends there ----
fetch "$t1" "$tmp/cut" -m 0.5 >/dev/null
sleep 0.5
api GET /v1/sites "" "${OP[@]}"
read -r cut active <<<"$(jq_py '"%d %d" % [(s["upgrade_bytes"], s["upgrade_downloads"]) for s in j["sites"] if s["site"] == "paris"][0]')"
[ "$active" = 0 ] || bad "$active downloads still in progress after the client went away"
[ $((cut - 1200000)) -gt 0 ] && [ $((cut - 1200000)) -lt 600000 ] ||
  bad "a download cut after 0.5 s sent $((cut - 1200000)) bytes (expected some, not all 600000)"
base=$cut

# ---- resume ----
code=$(fetch "$t1" "$tmp/tail" -H 'Range: bytes=599000-')
[ "$code" = 206 ] || bad "Range: HTTP $code, expected 206"
tail -c 1000 "$tmp/store/engines/agent-7.0.msi" | cmp -s - "$tmp/tail" || bad "Range: not the last 1000 bytes"
code=$(fetch "$t1" "$tmp/none" -H 'Range: bytes=700000-')
[ "$code" = 416 ] || bad "a Range past the end: HTTP $code, expected 416"

# ---- wrong and ended tokens ----
code=$(fetch 0123456789abcdef0123456789abcdef "$tmp/w")
[ "$code" = 403 ] || bad "a wrong token: HTTP $code, expected 403"
grep -q '"error"' "$tmp/w" || bad "a wrong token: no {\"error\"}: $(head -c 200 "$tmp/w")"
api POST /v1/upgrade/report "{\"token\":\"$t2\",\"outcome\":\"success\",\"version\":\"7.0\"}" "${EN[@]}"
expect 200 "report par-02"
code=$(fetch "$t2" "$tmp/e")
[ "$code" = 404 ] || bad "a reported grant's token: HTTP $code, expected 404"
code=$(curl -s -m 10 -o /dev/null -w '%{http_code}' "$api_url/v1/upgrade/package/$t1")
[ "$code" = 401 ] || bad "no enrolment token: HTTP $code, expected 401"
api GET /v1/sites "" "${OP[@]}"
[ "$(jq_py '[s["upgrade_bytes"] for s in j["sites"] if s["site"] == "paris"][0]')" = $((base + 1000)) ] ||
  bad "refused downloads sent bytes: $body"

st_exit gate_package
