#!/usr/bin/env bash
# sync --as-of scan:GEN (issue 13): an operator who approved "the scan of
# Tuesday 14:02" pins exactly that scan generation, not a time.
#  - distsync scans [--json] lists the kept generations with their times
#    (and GET /v1/scans says the same);
#  - three scans: G1 (kb.bin v1), G2 (v2, later.txt), G3 (v3); s0 keeps v1
#    and s1 v2 referenced, so the retain store holds both;
#  - sync s2 --as-of scan:G1 ships v1 and no later.txt; sync s3 --as-of
#    scan:G2 ships v2 and later.txt (while the store holds v3);
#  - scan:999 (not kept) is an error naming it and the kept range, nothing
#    synced; scan:x is a usage error that shows the forms;
#  - through a running daemon: sync s5 --as-of scan:G1 (the run-now's
#    "as_of": "scan:G1", shown by GET /v1/runs/ID, after a restart too),
#    scan:999 fails the run with the same reason, "scan:x" is a 400.
set -uo pipefail
. "$(dirname "$0")/lib/sync.bash"
. "$(dirname "$0")/lib/engine.bash"
. "$(dirname "$0")/lib/daemon.bash"
. "$(dirname "$0")/lib/api.bash"
st_init sync_as_of_scan

state=$tmp/state
conf=$tmp/d.conf
sock=$state/distsync.sock
store=$tmp/store
mkdir -p "$store/patches" "$store/engines" "$store/definitions"
for v in v1 v2 v3; do head -c 100000 /dev/urandom >"$tmp/$v"; done
put() { cp "$tmp/$1" "$store/patches/kb.tmp" && mv "$store/patches/kb.tmp" "$store/patches/kb.bin"; }
put v1
echo a >"$store/engines/a.txt"
en_head "$conf" "$store" "$state"
for s in s0 s1 s2 s3 s4 s5 s6; do en_server "$conf" "$s" "$tmp/$s" local; done

# newest GEN: the last generation distsync scans --json lists
newest() {
  "$DISTSYNC" -c "$conf" scans --json >"$tmp/scans.json" || bad "scans --json failed"
  python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["scans"][-1]["generation"])' "$tmp/scans.json"
}

st_expect_rc 0 "sync s0 s1 (v1)" "$DISTSYNC" -c "$conf" sync s0 s1
g1=$(newest)
put v2
echo later >"$store/engines/later.txt"
st_expect_rc 0 "sync s1 (v2)" "$DISTSYNC" -c "$conf" sync s1
g2=$(newest)
put v3
st_expect_rc 0 "scan (v3)" "$DISTSYNC" -c "$conf" scan
g3=$(newest)
[ "$g1" -lt "$g2" ] && [ "$g2" -lt "$g3" ] || bad "scan generations not increasing: $g1 $g2 $g3"

# the listing: every kept generation, its start and end, oldest first
python3 - "$tmp/scans.json" "$g1" "$g2" "$g3" <<'PY' || bad "scans --json: $(cat "$tmp/scans.json")"
import json, re, sys
d = json.load(open(sys.argv[1]))
want = [int(x) for x in sys.argv[2:]]
iso = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
gens = [s["generation"] for s in d["scans"]]
assert d["keep_days"] == 62, d
assert gens == sorted(gens) and all(g in gens for g in want), gens
for s in d["scans"]:
    assert s["scan"] == "scan:%d" % s["generation"], s
    assert iso.match(s["started_at"]) and iso.match(s["completed_at"]), s
    assert s["started_at"] <= s["completed_at"] and s["pinned_by"] == [], s
PY
"$DISTSYNC" -c "$conf" scans >"$tmp/scans.txt" 2>"$tmp/scans.err" || bad "scans failed: $(cat "$tmp/scans.err")"
head -1 "$tmp/scans.txt" | grep -q "^SCAN *STARTED *COMPLETED *PINNED BY" || bad "scans: no header: $(head -2 "$tmp/scans.txt")"
start2=$(python3 -c 'import json,sys; print([s for s in json.load(open(sys.argv[1]))["scans"] if s["generation"] == int(sys.argv[2])][0]["started_at"])' "$tmp/scans.json" "$g2")
grep -Eq "^scan:$g2 +$start2 +[0-9T:Z-]+ +-$" "$tmp/scans.txt" || bad "scans: no line for scan:$g2 at $start2: $(cat "$tmp/scans.txt")"

# standalone: exactly the scan named
st_expect_rc 0 "sync s2 --as-of scan:$g1" "$DISTSYNC" -c "$conf" sync s2 --no-scan --as-of "scan:$g1"
grep -q "sync: shipping the store as of scan:$g1 (scan generation $g1, started " "$tmp/err" ||
  bad "sync --as-of scan:$g1 does not say what it ships: $(cat "$tmp/err")"
cmp -s "$tmp/s2/patches/kb.bin" "$tmp/v1" || bad "s2's kb.bin is not v1 (scan:$g1's)"
[ ! -e "$tmp/s2/engines/later.txt" ] || bad "s2 got later.txt (not in scan:$g1)"
st_expect_rc 0 "sync s3 --as-of scan:$g2" "$DISTSYNC" -c "$conf" sync s3 --no-scan --as-of "scan:$g2"
cmp -s "$tmp/s3/patches/kb.bin" "$tmp/v2" || bad "s3's kb.bin is not v2 (scan:$g2's; the store holds v3)"
[ -f "$tmp/s3/engines/later.txt" ] || bad "s3 lacks later.txt (in scan:$g2)"

st_expect_rc 1 "--as-of scan:999 (not kept)" "$DISTSYNC" -c "$conf" sync s4 --as-of scan:999
grep -q "scan:999: scan generation 999 is not kept (catalog .* keeps completed scans scan:[0-9]* to scan:[0-9]*; distsync scans lists them)" "$tmp/err" ||
  bad "--as-of scan:999: $(cat "$tmp/err")"
[ -z "$(ls -A "$tmp/s4")" ] || bad "--as-of scan:999 wrote to s4: $(ls -R "$tmp/s4")"
st_expect_rc 2 "--as-of scan:x" "$DISTSYNC" -c "$conf" sync s4 --as-of scan:x
grep -q "expected an RFC 3339 time .*, a duration back from now .* or a scan generation (scan:42; distsync scans lists them)" "$tmp/err" ||
  bad "--as-of scan:x: $(cat "$tmp/err")"

# through the daemon
log=$tmp/daemon.log
dm_start "$log" "$(date -u +%Y-%m-%dT%H:%M:%SZ)" 1 --no-scan
api_wait_up "$log" || st_exit sync_as_of_scan
api GET /v1/scans
expect 200 "GET /v1/scans"
api POST /v1/scans '{}'
expect 405 "POST /v1/scans"
api GET /v1/scans
"$DISTSYNC" -c "$conf" scans --json >"$tmp/scans2.json"
python3 -c 'import json,sys; a=json.loads(sys.argv[1]); b=json.load(open(sys.argv[2])); sys.exit(a != b)' "$body" "$tmp/scans2.json" ||
  bad "GET /v1/scans differs from scans --json: $body"
st_expect_rc 0 "sync s5 --as-of scan:$g1 through the daemon" "$DISTSYNC" -c "$conf" sync s5 --as-of "scan:$g1"
grep -q "through the daemon" "$tmp/err" || bad "sync s5 did not go through the daemon: $(cat "$tmp/err")"
id=$(sed -n 's/.*sync: run \([^ ]*\) through the daemon.*/\1/p' "$tmp/err")
cmp -s "$tmp/s5/patches/kb.bin" "$tmp/v1" || bad "through the daemon: s5's kb.bin is not v1"
[ ! -e "$tmp/s5/engines/later.txt" ] || bad "through the daemon: s5 got later.txt"
grep -q "run=$id: pinned to the store as of scan:$g1 (scan generation $g1" "$log" ||
  bad "the daemon did not log the pin: $(grep "$id" "$log" | tr '\n' '|')"
api GET "/v1/runs/$id"
[ "$(jq_py '(j["state"], j["as_of"])')" = "('ok', 'scan:$g1')" ] || bad "GET /v1/runs/$id: $body"
st_expect_rc 1 "sync s6 --as-of scan:999 through the daemon" "$DISTSYNC" -c "$conf" sync s6 --as-of scan:999
grep -q "scan:999: scan generation 999 is not kept (catalog .* keeps completed scans scan:[0-9]* to scan:[0-9]*" "$tmp/err" ||
  bad "scan:999 through the daemon: $(cat "$tmp/err")"
[ -z "$(ls -A "$tmp/s6")" ] || bad "scan:999 through the daemon wrote to s6"
api POST /v1/run-now '{"servers":["s6"],"as_of":"scan:x"}'
expect 400 "run-now with as_of scan:x"
grep -q 'scan:42' <<<"$body" || bad "run-now with as_of scan:x: the error does not show the form: $body"
dm_stop
# a past run reads the same after a restart
log=$tmp/daemon2.log
dm_start "$log" "$(date -u +%Y-%m-%dT%H:%M:%SZ)" 1 --no-scan
api_wait_up "$log" || st_exit sync_as_of_scan
api GET "/v1/runs/$id"
[ "$(jq_py 'j["as_of"]')" = "scan:$g1" ] || bad "GET /v1/runs/$id after a restart: $body"
dm_stop
st_exit sync_as_of_scan
