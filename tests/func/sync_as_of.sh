#!/usr/bin/env bash
# distsync sync --as-of TIME (issue 13): the desired set as the store was at
# TIME, standalone and through the daemon's run-now, as a delayed
# schedule's fire ships it.
#  - kb.bin v1 and a.txt are scanned (and v1 shipped to s1, so the retain
#    store holds it); after TIME, kb.bin becomes v2 and later.txt appears;
#  - sync s2 --as-of TIME ships v1 (from the retain store) and not
#    later.txt; a plain sync ships v2 (unpinned again);
#  - the same through a running daemon (run-now with "as_of") to s4, and
#    GET /v1/runs/ID shows as_of;
#  - with the retain store lost, sync s3 --as-of TIME reports kb.bin's
#    pinned version gone, exits 4, ships the rest, and never puts v2 there;
#    the same through the daemon to s5 (the run recorded failed);
#  - a TIME before every kept scan is an error (nothing synced); a TIME in
#    the future or not a time is a usage error (exit 2).
set -uo pipefail
. "$(dirname "$0")/lib/sync.bash"
. "$(dirname "$0")/lib/engine.bash"
. "$(dirname "$0")/lib/daemon.bash"
. "$(dirname "$0")/lib/api.bash"
st_init sync_as_of

state=$tmp/state
conf=$tmp/d.conf
sock=$state/distsync.sock
store=$tmp/store
mkdir -p "$store/patches" "$store/engines" "$store/definitions"
head -c 200000 /dev/urandom >"$tmp/v1"
head -c 200000 /dev/urandom >"$tmp/v2"
cp "$tmp/v1" "$store/patches/kb.bin"
echo a >"$store/engines/a.txt"
en_head "$conf" "$store" "$state"
for s in s1 s2 s3 s4 s5; do en_server "$conf" "$s" "$tmp/$s" local; done

st_expect_rc 0 "sync s1 (v1)" "$DISTSYNC" -c "$conf" sync s1
sleep 1.2
when=$(date -u +%Y-%m-%dT%H:%M:%SZ)
sleep 1.2
cp "$tmp/v2" "$store/patches/kb.tmp" && mv "$store/patches/kb.tmp" "$store/patches/kb.bin"
echo later >"$store/engines/later.txt"

st_expect_rc 0 "sync s2 --as-of $when" "$DISTSYNC" -c "$conf" sync s2 --as-of "$when"
grep -q "sync: shipping the store as of $when (scan generation [0-9]*)" "$tmp/err" ||
  bad "sync --as-of does not say what it ships: $(cat "$tmp/err")"
cmp -s "$tmp/s2/patches/kb.bin" "$tmp/v1" || bad "s2's kb.bin is not v1 (the version at $when)"
[ -f "$tmp/s2/engines/a.txt" ] || bad "s2 lacks a.txt (in the store at $when)"
[ ! -e "$tmp/s2/engines/later.txt" ] || bad "s2 got later.txt (added after $when)"
st_expect_rc 0 "sync s2 (newest)" "$DISTSYNC" -c "$conf" sync s2
cmp -s "$tmp/s2/patches/kb.bin" "$tmp/v2" || bad "a plain sync after --as-of did not ship v2"
[ -f "$tmp/s2/engines/later.txt" ] || bad "a plain sync after --as-of did not ship later.txt"

st_expect_rc 2 "--as-of in the future" "$DISTSYNC" -c "$conf" sync s3 --as-of 2099-01-01T00:00:00Z
grep -q "is in the future" "$tmp/err" || bad "--as-of in the future: $(cat "$tmp/err")"
st_expect_rc 2 "--as-of not a time" "$DISTSYNC" -c "$conf" sync s3 --as-of=yesterday
grep -q "expected an RFC 3339 time" "$tmp/err" || bad "--as-of=yesterday: $(cat "$tmp/err")"
st_expect_rc 1 "--as-of before every scan" "$DISTSYNC" -c "$conf" sync s3 --as-of 2001-01-01T00:00:00Z
grep -q "the store as of 2001-01-01T00:00:00Z: no scan of the store that started by then is kept" "$tmp/err" ||
  bad "--as-of before every scan: $(cat "$tmp/err")"
[ -z "$(ls -A "$tmp/s3")" ] || bad "--as-of before every scan wrote to s3: $(ls -R "$tmp/s3")"

# through the daemon: the run-now carries as_of
log=$tmp/daemon.log
dm_start "$log" "$(date -u +%Y-%m-%dT%H:%M:%SZ)" 1
api_wait_up "$log" || st_exit sync_as_of
st_expect_rc 0 "sync s4 --as-of through the daemon" "$DISTSYNC" -c "$conf" sync s4 --as-of "$when"
grep -q "through the daemon" "$tmp/err" || bad "sync s4 did not go through the daemon: $(cat "$tmp/err")"
id=$(sed -n 's/.*sync: run \([^ ]*\) through the daemon.*/\1/p' "$tmp/err")
cmp -s "$tmp/s4/patches/kb.bin" "$tmp/v1" || bad "through the daemon: s4's kb.bin is not v1"
[ ! -e "$tmp/s4/engines/later.txt" ] || bad "through the daemon: s4 got later.txt"
grep -q "run=$id: pinned to the store as of $when (scan generation" "$log" ||
  bad "the daemon did not log the pin: $(grep "run $id" "$log" | tr '\n' '|')"
api GET "/v1/runs/$id"
[ "$(jq_py '(j["state"], j["as_of"])')" = "('ok', '$when')" ] || bad "GET /v1/runs/$id: $body"
api POST /v1/run-now '{"servers":["s4"],"as_of":"tomorrow"}'
expect 400 "run-now with a bad as_of"
dm_stop

# the retain store lost v1: reported gone, never replaced by v2
rm -rf "$state/retain"
st_expect_rc 4 "sync s3 --as-of with v1 gone" "$DISTSYNC" -c "$conf" sync s3 --as-of "$when"
grep -q "patches/kb.bin: pinned version as of $when (scan generation [0-9]*) is gone" "$tmp/err" ||
  bad "gone: not reported: $(cat "$tmp/out" "$tmp/err")"
[ ! -e "$tmp/s3/patches/kb.bin" ] || bad "gone: s3 got a kb.bin (v2 in place of the gone v1?)"
[ -f "$tmp/s3/engines/a.txt" ] || bad "gone: the rest (a.txt) was not shipped"
[ ! -e "$tmp/s3/engines/later.txt" ] || bad "gone: s3 got later.txt"
# the same through the daemon: the run fails, the file is reported gone
log=$tmp/daemon2.log
dm_start "$log" "$(date -u +%Y-%m-%dT%H:%M:%SZ)" 1
api_wait_up "$log" || st_exit sync_as_of
st_expect_rc 4 "sync s5 --as-of with v1 gone, through the daemon" "$DISTSYNC" -c "$conf" sync s5 --as-of "$when"
id=$(sed -n 's/.*sync: run \([^ ]*\) through the daemon.*/\1/p' "$tmp/err")
grep -q "run=$id server=s5: patches/kb.bin: pinned version as of $when (scan generation [0-9]*) is gone" "$log" ||
  bad "gone through the daemon: not logged: $(grep "s5" "$log" | tr '\n' '|')"
[ ! -e "$tmp/s5/patches/kb.bin" ] || bad "gone through the daemon: s5 got a kb.bin"
[ -f "$tmp/s5/engines/a.txt" ] || bad "gone through the daemon: the rest (a.txt) was not shipped"
api GET "/v1/runs/$id"
[ "$(jq_py '(j["state"], j["servers"][0]["report"]["failed_files"])')" = "('failed', 1)" ] ||
  bad "gone through the daemon: GET /v1/runs/$id: $body"
dm_stop
st_exit sync_as_of
