#!/usr/bin/env bash
# A lost SMB worker is replaced within the run (real smbd): 12 files of
# 1 MiB of random bytes go to an smb:// server capped at 16 Mbit/s (~6 s).
#  1. kill -9 of the worker once 3 files are on the share: the same sync
#     succeeds, byte-exact; the run's events name the worker's death
#     ("reconnecting" naming the SMB worker, "connection ended" naming
#     signal 9) and the new worker ("reconnected"); no file is created
#     twice and the wire bytes stay below everything plus two files.
#  2. SIGSTOP of the worker (timeout = 3s): the frozen worker is killed
#     (not left stopped), a new one finishes the same run.
#  3. A worker that keeps dying (every new one killed, retries = 2): the
#     run gives up after the bound, exit 4, saying so.
set -uo pipefail
: "${DISTSYNC:?}" "${DS_SRC:?}"
source "$DS_SRC/tests/func/lib/sync.bash"
source "$DS_SRC/tests/func/lib/smbd.bash"
st_init smb_reconnect
smbd_start "$tmp/smbd"
store=$tmp/store target=$SMBD_SHARE_DIR/k conf=$tmp/d.conf
url=smb://127.0.0.1:$SMBD_PORT/dist/k
smbd_creds "$tmp/cred"
mkdir -p "$store/patches" "$target" "$tmp/state"
nfiles=12 fsize=$((1 << 20))
for i in $(seq -w 1 $nfiles); do head -c $fsize /dev/urandom >"$store/patches/f$i.bin"; done
cat >"$conf" <<CONF
[console]
store = $store
state = $tmp/state
classes = patches

[server k]
url = $url
credentials = $tmp/cred
bandwidth = 16Mbit
timeout = 3s
CONF
ds() { "$DISTSYNC" -c "$conf" "$@"; }
ds scan >/dev/null || bad "scan"

worker() { pgrep -f -- "smb-worker --url $url " | head -1 || true; }

# wait_files N: until N files are on the share; prints the worker's pid
wait_files() {
  local n=0
  for _ in $(seq 400); do
    n=$(find "$target/patches" -name 'f*.bin' 2>/dev/null | wc -l)
    [ "$n" -ge "$1" ] && break
    sleep 0.025
  done
  echo "$n files on the share" >&2
  worker
}

# check_run WHAT SIGNAL: the last run's events and bytes
check_run() {
  ds history k --events --json --limit 1 >"$tmp/h.json" || { bad "$1: history failed"; return; }
  python3 - "$tmp/h.json" "$nfiles" "$fsize" "$1" "$2" <<'PY' || fail=1
import json, sys
runs = json.load(open(sys.argv[1]))
nfiles, fsize, what, sig = int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5]
ev = runs[0]["events"]
outs = [e["outcome"] for e in ev]
def bad(m):
    print("FAIL: %s: %s" % (what, m), file=sys.stderr)
    sys.exit(1)
for o in ("reconnecting", "connection ended", "reconnected"):
    if o not in outs:
        bad("no '%s' event: %s" % (o, outs))
rec = ev[outs.index("reconnecting")]["message"]
if "SMB worker for server k" not in rec and "no response from the target" not in rec:
    bad("the 'reconnecting' event names neither the worker nor the silence: %s" % rec)
ended = ev[outs.index("connection ended")]["message"]
if "SMB worker for server k killed by signal %s" % sig not in ended:
    bad("the 'connection ended' event does not name signal %s: %s" % (sig, ended))
cut = outs.index("reconnecting")
before = [e["path"] for e in ev[:cut] if e["kind"] == "file" and e["outcome"] == "created"]
created = [e["path"] for e in ev if e["kind"] == "file" and e["outcome"] == "created"]
if len(before) < 2:
    bad("only %d files committed before the loss" % len(before))
again = sorted(set(p for p in created if created.count(p) > 1))
if again:
    bad("files sent again after the reconnect: %s" % again)
wire = runs[0]["bytes_wire"]
if wire > (nfiles + 2) * fsize:
    bad("%d wire bytes for %d files of %d: committed files were resent" % (wire, nfiles, fsize))
print("%s: %d committed before the loss, run wire bytes %d (data %d): %s" %
      (what, len(before), wire, nfiles * fsize, rec))
PY
}

# 1. kill -9
rc=0
ds sync k --json >"$tmp/s1.json" 2>"$tmp/s1.err" &
pid=$!
st_pids+=("$pid")
w=$(wait_files 3)
[ -n "$w" ] && kill -9 "$w" || bad "kill -9: no SMB worker to kill"
wait "$pid" || rc=$?
[ "$rc" = 0 ] || bad "kill -9: the sync exited $rc: $(head -c 800 "$tmp/s1.err")"
st_check_converged "$store" "$target" "after kill -9 of the worker"
check_run "kill -9" 9

# 2. SIGSTOP: killed past timeout, replaced
rm -rf "${target:?}"/* "$target/.distsync" "$tmp/state/targets" 2>/dev/null
rc=0
ds sync k --json >"$tmp/s2.json" 2>"$tmp/s2.err" &
pid=$!
st_pids+=("$pid")
w=$(wait_files 3)
[ -n "$w" ] && kill -STOP "$w" || bad "SIGSTOP: no SMB worker to stop"
for _ in $(seq 300); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
kill -0 "$pid" 2>/dev/null && bad "SIGSTOP: the sync did not end within 30 s"
wait "$pid" || rc=$?
[ "$rc" = 0 ] || bad "SIGSTOP: the sync exited $rc: $(head -c 800 "$tmp/s2.err")"
state=$(ps -o stat= -p "$w" 2>/dev/null || true)
[ -z "$state" ] || { bad "the frozen worker $w was not reaped (state $state)"; kill -CONT "$w"; }
st_check_converged "$store" "$target" "after SIGSTOP of the worker"
grep -q 'no response from the target for 3 s' "$tmp/s2.err" || bad "SIGSTOP: the silence is not named: $(head -c 800 "$tmp/s2.err")"
check_run "SIGSTOP" 9

# 3. every worker killed: gives up after retries = 2
rm -rf "${target:?}"/* "$target/.distsync" 2>/dev/null
sed -i 's/^timeout = 3s$/timeout = 3s\nretries = 2\nretry_backoff = 1s/' "$conf"
rc=0
t0=$(date +%s)
ds sync k >"$tmp/s3.out" 2>"$tmp/s3.err" &
pid=$!
st_pids+=("$pid")
w=$(wait_files 1)
kills=0
while kill -0 "$pid" 2>/dev/null; do
  w=$(worker)
  if [ -n "$w" ]; then kill -9 "$w" 2>/dev/null && kills=$((kills + 1)); fi
  sleep 0.02
done
wait "$pid" || rc=$?
echo "killed $kills workers; the run ended after $(($(date +%s) - t0)) s, exit $rc"
[ "$rc" = 4 ] || bad "keeps dying: exit $rc, expected 4: $(head -c 800 "$tmp/s3.err")"
[ "$kills" -ge 3 ] || bad "keeps dying: only $kills workers killed"
grep -q 'gave up after 2 reconnects, retries = 2' "$tmp/s3.err" "$tmp/s3.out" ||
  bad "keeps dying: no message names the bound: $(cat "$tmp/s3.err" "$tmp/s3.out" | tail -5)"
grep -q 'SMB worker for server k' "$tmp/s3.err" "$tmp/s3.out" || bad "keeps dying: the worker is not named"
st_exit smb_reconnect
