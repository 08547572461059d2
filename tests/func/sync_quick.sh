#!/usr/bin/env bash
# Quick deltas (README "Quick deltas"): a delta a run computes while its
# server's link is idle is quick (zstd level 3, stream version 1, no BSDIFF
# record), so an idle link never waits on BSDIFF's suffix sort. On a
# rebuilt 2 MiB binary:
#   - fast (a local agent, no cap) gets a quick delta: counted in --json and
#     on its summary line, a .zpq entry in the delta cache, bytes above the
#     full delta's;
#   - capped (bandwidth = 10Mbit, under 100 Mbit/s) and off (quick_deltas =
#     no) get the full delta (BSDIFF records, .zpb), none quick, fewer bytes;
#   - big (a 200Mbit cap) counts as idle: it asks for a quick one;
#   - fast2, synced after the full delta is cached, asks for a quick one and
#     is given the full one (its bytes are the full delta's);
#   - a version 4 agent gets a quick version 1 zpatch (the same .zpq).
# Every server converges; config check refuses a bad value by file:line.
set -uo pipefail
. "$(dirname "$0")/lib/sync.bash"
st_init sync_quick
export DISTSYNC_TEST_NO_FSYNC=1
store=$tmp/store conf=$tmp/q.conf
mkdir -p "$store/engines"
gen() { st_rebuilt "$@"; }
gen "$store/engines/prog" 0
names="fast capped off big fast2 old"
args=()
for s in $names; do args+=("$s" "file://$tmp/t/$s" agent); mkdir -p "$tmp/t/$s"; done
st_conf "$conf" "$store" "$tmp/state" "${args[@]}"
sed -i '/^\[server capped\]/a bandwidth = 10Mbit' "$conf"
sed -i '/^\[server big\]/a bandwidth = 200Mbit' "$conf"
sed -i '/^\[server off\]/a quick_deltas = no' "$conf"
sed -i '/^\[server fast\]/a quick_deltas = auto' "$conf"
ds() { "$DISTSYNC" -c "$conf" "$@"; }
ds config check >/dev/null 2>&1 || bad "config check: $(ds config check 2>&1 | head -3)"
ds config check --json 2>/dev/null | python3 -c '
import json, sys
q = {s["name"]: s["quick_deltas"] for s in json.load(sys.stdin)["servers"]}
assert q["fast"] == "auto" and q["off"] == "no" and q["capped"] == "auto", q' ||
  bad "config check --json lacks quick_deltas (auto, no)"
ds scan >/dev/null 2>&1 || bad "scan v1"
ds sync fast capped off big fast2 >/dev/null 2>&1 || bad "sync v1"
DISTSYNC_TEST_MAX_PROTOCOL=4 ds sync old >/dev/null 2>&1 || bad "sync old v1"

gen "$store/engines/prog" 4096
ds scan >/dev/null 2>&1 || bad "scan v2"
# one at a time: each run computes (or finds) its own delta
sync1() { # sync1 NAME [ENV...]
  local n=$1
  shift
  env "$@" "$DISTSYNC" -c "$conf" sync "$n" --json >"$tmp/$n.json" 2>"$tmp/$n.err" ||
    bad "sync $n v2: $(head -c 300 "$tmp/$n.err")"
}
field() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["servers"][0][sys.argv[2]])' "$tmp/$1.json" "$2" 2>/dev/null || echo -1; }
sync1 fast
ls "$tmp/state/deltas/" | grep -q '\.zpq$' || bad "fast: no quick entry (.zpq) in the delta cache"
ls "$tmp/state/deltas/" | grep -q '\.zpb$' && bad "fast: a full entry (.zpb) was computed for an idle link"
sync1 big
sync1 capped
sync1 off
sync1 fast2
sync1 old DISTSYNC_TEST_MAX_PROTOCOL=4
ls "$tmp/state/deltas/" | grep -q '\.zpb$' || bad "capped: no full entry (.zpb) in the delta cache"
ls "$tmp/state/deltas/" | grep -q '\.zpd$' && bad "old (v4): a full version 1 entry (.zpd) for an idle link"
for s in $names; do
  printf '  %-7s quick %s wire %s\n' "$s" "$(field "$s" quick_deltas)" "$(field "$s" bytes_wire)"
done
[ "$(field fast quick_deltas)" = 1 ] || bad "fast: quick_deltas $(field fast quick_deltas), 1 expected"
[ "$(field big quick_deltas)" = 1 ] || bad "big (200Mbit cap): quick_deltas $(field big quick_deltas), 1 expected"
[ "$(field old quick_deltas)" = 1 ] || bad "old (v4): quick_deltas $(field old quick_deltas), 1 expected"
[ "$(field capped quick_deltas)" = 0 ] || bad "capped (10Mbit): $(field capped quick_deltas) quick deltas"
[ "$(field off quick_deltas)" = 0 ] || bad "off (quick_deltas = no): $(field off quick_deltas) quick deltas"
fw=$(field fast bytes_wire) cw=$(field capped bytes_wire) ow=$(field off bytes_wire)
f2=$(field fast2 bytes_wire)
[ "$cw" -gt 0 ] && [ "$((cw * 2))" -lt "$fw" ] || bad "the full delta ($cw B) is not 2x below the quick one ($fw B)"
[ "$ow" -gt 0 ] && [ "$((ow * 2))" -lt "$fw" ] || bad "off: $ow B, not 2x below the quick delta ($fw B)"
# fast2 asked for a quick delta after the full one was cached: it got that
[ "$(field fast2 quick_deltas)" = 1 ] || bad "fast2: quick_deltas $(field fast2 quick_deltas), 1 expected"
[ "$f2" -gt 0 ] && [ "$((f2 * 2))" -lt "$fw" ] || bad "fast2 did not get the cached full delta: $f2 B against quick $fw B"
for s in $names; do st_check_converged "$store" "$tmp/t/$s" "server $s (v2)"; done
# the summary line says it
gen "$store/engines/prog" 8192
ds scan >/dev/null 2>&1 || bad "scan v3"
ds sync fast >"$tmp/line" 2>&1 || bad "sync fast v3: $(cat "$tmp/line")"
grep -q "copied [^)]*, 1 quick delta)" "$tmp/line" || bad "summary line lacks the quick count: $(cat "$tmp/line")"
st_check_converged "$store" "$tmp/t/fast" "server fast (v3)"
# a bad value names the file and line
printf '\n[server bad]\nurl = file://%s/t/bad\nquick_deltas = sometimes\n' "$tmp" >>"$conf"
out=$("$DISTSYNC" -c "$conf" config check 2>&1)
[[ "$out" == *"$conf:"*"quick_deltas"*"expected auto or no"* ]] || bad "bad quick_deltas: $out"
st_exit "sync_quick"
