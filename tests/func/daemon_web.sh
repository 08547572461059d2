#!/usr/bin/env bash
# The daemon's web status page (GET /), in a real browser: headless
# Chromium driven through DevTools (tests/func/lib/web_check.py) against a
# real daemon over TCP on loopback, with three file:// servers: one in sync
# (no site), one with a missing and an outdated file (site paris, capped at
# 2 Mbit so its run stays live for seconds), one frozen (site lyon).
#  - GET / and /ui/* are HTML, JavaScript and CSS with a Content-Security-
#    Policy of this origin only, from the binary (no other origin named);
#    the page needs no token, every /v1/ call still does; POST / is 405;
#  - the browser: the token form without a token, and again (saying it was
#    refused) with a wrong one; with #token= the page's
#    counts, sizes, states and frozen flags equal `distsync status --json`
#    and `distsync status`; a file name made of HTML stays text; Run now
#    shows a live run with a progress bar that `distsync runs --json` lists,
#    the server turns in sync by itself, the run's events open; the site's
#    Run now runs the site's server; through a
#    relay to the Unix socket no token is asked; no script error or CSP
#    violation;
#  - the rollouts (upgrade gate): each rollout's state and why it is
#    paused, its queue and staging, each ring's counts and why it is
#    closed, the slots in use against each cap, as `distsync rollout
#    status --json` gives them.
# Skips (77) only where Chromium cannot start.
set -uo pipefail
. "$(dirname "$0")/lib/sync.bash"
. "$(dirname "$0")/lib/engine.bash"
. "$(dirname "$0")/lib/daemon.bash"
. "$(dirname "$0")/lib/api.bash"
st_init daemon_web

state=$tmp/state
conf=$tmp/d.conf
sock=$state/distsync.sock
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
port=$(free_port)
token=tok-$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')
echo "$token" >"$tmp/token"
chmod 600 "$tmp/token"

en_fill "$tmp/store" 2 4096
en_head "$conf" "$tmp/store" "$state" "listen = 127.0.0.1:$port" "api_token_file = $tmp/token"
printf '\n[site paris]\nbandwidth = 2Mbit\nclients = par-*\nmax_concurrent_upgrades = 1\n\n[site lyon]\ntz = Europe/Paris\n' >>"$conf"
en_server "$conf" s-sync "$tmp/t1" local
en_server "$conf" s-missing "$tmp/t2" local "site = paris"
en_server "$conf" s-frozen "$tmp/t3" local "site = lyon"
printf '\n[schedule nightly]\nwhen = daily 02:00\ntz = Europe/Paris\nsites = paris, lyon\n' >>"$conf"
# two rollouts for the page's rollouts section: agent (a pilot ring, then
# wide) and tool (paused)
entok=en-$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')
(umask 077 && echo "$entok" >"$tmp/entoken")
cat >>"$conf" <<CONF

[package agent-7]
product = agent
version = 7.0
path = patches/f2.bin

[package tool-2]
product = tool
version = 2.0
path = engines/engines.txt

[ring pilot]
members = par-0*
size = 2

[ring wide]
members = par-*
size = 20

[rollout agent]
product = agent
version = 7.0
rings = pilot, wide
token_file = $tmp/entoken

[rollout tool]
product = tool
version = 2.0
rings = wide
token_file = $tmp/entoken
CONF
"$DISTSYNC" -c "$conf" scan >/dev/null 2>&1 || bad "scan failed"
"$DISTSYNC" -c "$conf" sync --all >/dev/null 2>&1 || bad "the first sync failed"
# new work: a 2.5 MiB file (about 10 s at 2 Mbit: the page sees it running), a file named in HTML,
# an outdated one; s-sync gets it all, s-missing and s-frozen do not
head -c $((2560 * 1024)) /dev/urandom >"$tmp/store/patches/big.bin"
echo pwn >"$tmp/store/patches/<img src=x onerror=document.title='pwned'>.txt"
head -c 4096 /dev/urandom >"$tmp/store/patches/f1.bin"
"$DISTSYNC" -c "$conf" scan >/dev/null 2>&1 || bad "the second scan failed"
"$DISTSYNC" -c "$conf" sync s-sync >/dev/null 2>&1 || bad "sync s-sync failed"
"$DISTSYNC" -c "$conf" freeze s-frozen --reason "disk swap" >/dev/null || bad "freeze failed"

# what the page must show: status --json (exit 3: work pending), and the
# frozen servers of status's text
"$DISTSYNC" -c "$conf" status --all --json >"$tmp/status.json" 2>"$tmp/status.err"
"$DISTSYNC" -c "$conf" status --all 2>/dev/null | awk '/^status /{s=$2; sub(":$", "", s)} /^  frozen:/{print s}' >"$tmp/frozen"
[ "$(cat "$tmp/frozen")" = s-frozen ] || bad "distsync status does not show s-frozen frozen: $(cat "$tmp/frozen")"
python3 - "$tmp/status.json" <<'PY' || bad "status --json is not the scene this test needs"
import json, sys
s = {x["server"]: x["counts"] for x in json.load(open(sys.argv[1]))}
assert s["s-sync"]["missing"] == 0 and s["s-sync"]["outdated"] == 0, s
assert s["s-missing"]["missing"] == 2 and s["s-missing"]["outdated"] == 1, s
assert s["s-frozen"]["missing"] == 2, s
PY

"$DISTSYNC" -c "$conf" rollout pause tool --reason "bad build" >/dev/null || bad "rollout pause failed"

log=$tmp/daemon.log
dm_start "$log" "$(date -u +%Y-%m-%dT%H:%M:%SZ)" 1
api_wait_up "$log" || st_exit daemon_web

# the rollouts' scene: par-01 granted (paris at its cap of 1), par-02
# waiting, par-10 refused (ring wide closed until the pilot succeeds)
for c in par-01 par-02 par-10; do
  curl -s -m 10 -o /dev/null -H "Authorization: Bearer $entok" -H 'Content-Type: application/json' \
    --data-binary "{\"client\":\"$c\",\"product\":\"agent\",\"version\":\"6.0\"}" \
    "http://127.0.0.1:$port/v1/upgrade/request"
done
{
  echo "["
  "$DISTSYNC" -c "$conf" rollout status agent --json
  echo ","
  "$DISTSYNC" -c "$conf" rollout status tool --json
  echo "]"
} >"$tmp/rollouts.json" 2>"$tmp/rollouts.err" || bad "rollout status --json failed: $(cat "$tmp/rollouts.err")"
python3 - "$tmp/rollouts.json" <<'PY' || bad "rollout status --json is not the scene this test needs: $(cat "$tmp/rollouts.json")"
import json, sys
a, t = json.load(open(sys.argv[1]))
assert (a["granted"], a["waiting"], a["state"]) == (1, 1, "active"), a
assert a["rings"][0]["open"] and not a["rings"][1]["open"] and a["rings"][1]["why"], a
assert t["state"] == "paused" and t["reason"] == "bad build", t
assert [c["used"] for c in a["caps"] if c["level"] == "site" and c["name"] == "paris"] == [1], a["caps"]
PY

# ---- the files, over plain HTTP ----
url=http://127.0.0.1:$port
hdrs() { curl -s -m 10 -D - -o "$tmp/body" "$@"; }
h=$(hdrs "$url/")
grep -qi '^content-type: text/html; charset=utf-8' <<<"$h" || bad "GET / is not text/html: $h"
grep -qi "^content-security-policy: default-src 'none'; script-src 'self'; style-src 'self';.*connect-src 'self'" <<<"$h" ||
  bad "GET / has no self-only Content-Security-Policy: $h"
grep -qi '^x-content-type-options: nosniff' <<<"$h" || bad "GET / without nosniff"
grep -q '<script src="/ui/app.js"' "$tmp/body" || bad "GET / is not the page: $(head -c 300 "$tmp/body")"
for f in app.js:text/javascript style.css:text/css icon.svg:image/svg+xml; do
  h=$(hdrs "$url/ui/${f%%:*}")
  grep -q '^HTTP/1.1 200' <<<"$h" && grep -qi "^content-type: ${f#*:}" <<<"$h" || bad "GET /ui/${f%%:*}: $h"
  cat "$tmp/body" >>"$tmp/all"
done
cat "$tmp/body" >>"$tmp/all"
if grep -Eo '(https?:)?//[a-z0-9.-]+\.[a-z]{2,}' "$tmp/all" | grep -v '^http://www\.w3\.org$' | grep -q .; then
  bad "the page names another origin: $(grep -Eo '(https?:)?//[a-z0-9.-]+\.[a-z]{2,}' "$tmp/all" | head -3)"
fi
grep -Eq '\.(innerHTML|outerHTML|insertAdjacentHTML)|document\.write' "$tmp/all" && bad "the page writes HTML from strings"
code=$(curl -s -m 10 -o /dev/null -w '%{http_code}' -X POST "$url/")
[ "$code" = 405 ] || bad "POST / is $code, not 405"
code=$(curl -s -m 10 -o /dev/null -w '%{http_code}' "$url/v1/servers")
[ "$code" = 401 ] || bad "GET /v1/servers without the token is $code, not 401"
code=$(curl -s -m 10 -o /dev/null -w '%{http_code}' "$url/ui/nothing.js")
[ "$code" = 401 ] || bad "an unknown file under /ui/ is $code without the token, not 401"

# ---- the browser ----
relay=""
if command -v socat >/dev/null; then # as an SSH tunnel to the socket would
  rport=$(free_port)
  socat "TCP-LISTEN:$rport,bind=127.0.0.1,reuseaddr,fork" "UNIX-CONNECT:$sock" 2>/dev/null &
  st_pids+=($!)
  relay=http://127.0.0.1:$rport
else
  echo "note: no socat: the page through the Unix socket is not checked"
fi
runs_before=$(dm_runs s-missing)
rc=0
DISTSYNC_CONF=$conf timeout 90 python3 "$DS_SRC/tests/func/lib/web_check.py" "$tmp" "$url" "$token" \
  "$tmp/status.json" "$tmp/frozen" s-missing "$relay" "$tmp/rollouts.json" || rc=$?
if [ "$rc" = 77 ]; then
  dm_stop
  exit 77
fi
[ "$rc" = 0 ] || bad "the page in Chromium (web_check.py exit $rc)"

# what the page's Run now did, seen from outside the browser
[ "$(dm_runs s-missing)" -gt "$runs_before" ] || bad "no run of s-missing in the history after Run now"
st_check_converged "$tmp/store" "$tmp/t2" "s-missing after the page's Run now"
[ ! -e "$tmp/t3/patches/big.bin" ] || bad "the frozen server was written"
[ ! -e "$tmp/t1/.distsync" ] || [ "$(dm_runs s-sync)" = 2 ] || bad "s-sync was synced by the page's Run now of s-missing"

dm_stop
grep -q "$token" "$log" && bad "the token is in the daemon's log"
st_exit daemon_web
