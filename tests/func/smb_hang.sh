#!/usr/bin/env bash
# Two smb:// servers in one run, against a real smbd: the SMB worker of
# one is frozen (SIGSTOP) in the middle of a file. The engine notices the
# silence after the server's `timeout`, reaps the frozen worker (it is
# killed, not left stopped: its connection, and with it its share-mode
# lock, goes) and reports the server; the other server completes in the
# same run; the next sync converges.
set -uo pipefail
: "${DISTSYNC:?}" "${DS_SRC:?}"
source "$DS_SRC/tests/func/lib/sync.bash"
source "$DS_SRC/tests/func/lib/smbd.bash"
st_init smb_hang
smbd_start "$tmp/smbd"
store=$tmp/store known=$tmp/known
smbd_creds "$tmp/cred"
mkdir -p "$SMBD_SHARE_DIR/ha" "$SMBD_SHARE_DIR/hb"
{
  printf '[console]\nstore = %s\nstate = %s\n' "$store" "$tmp/state"
  for s in ha hb; do
    printf '[server %s]\nurl = smb://127.0.0.1:%s/dist/%s\ncredentials = %s\n' \
      "$s" "$SMBD_PORT" "$s" "$tmp/cred"
    printf 'classes = patches engines definitions\nbandwidth = 64Mbit\ntimeout = 3s\nretries = 0\n'
  done
} >"$tmp/d.conf"
ds() { "$DISTSYNC" -c "$tmp/d.conf" "$@"; }

st_gen "$store" 0 "$known" --files 4 --max 64 || bad "mkstore"
ds scan >/dev/null 2>&1 && ds sync ha hb >/dev/null 2>"$tmp/err" || bad "first sync: $(cat "$tmp/err")"
# a big new file: about 5 s at 64 Mbit/s on each server
head -c 40000000 /dev/urandom >"$store/engines/big.bin"
ds scan >/dev/null 2>&1 || bad "scan"
t0=$(date +%s)
ds sync ha hb >"$tmp/out" 2>&1 &
spid=$!
st_pids+=("$spid")
wpid=""
for _ in $(seq 300); do
  wpid=$(pgrep -f -- "smb-worker --url smb://127.0.0.1:$SMBD_PORT/dist/ha " | head -1 || true)
  [ -n "$wpid" ] && [ -n "$(find "$SMBD_SHARE_DIR/ha/.distsync/tmp" -name 'ds-*.part' -size +1k 2>/dev/null)" ] && break
  sleep 0.05
done
[ -n "$wpid" ] || bad "no SMB worker for ha writing a tmp file seen"
kill -STOP "$wpid"
for _ in $(seq 300); do kill -0 "$spid" 2>/dev/null || break; sleep 0.1; done
if kill -0 "$spid" 2>/dev/null; then
  bad "the sync did not end within 30 s of its worker's freeze"
  kill -CONT "$wpid" 2>/dev/null
fi
rc=0
wait "$spid" || rc=$?
echo "the run ended $(($(date +%s) - t0)) s after it started (exit $rc)"
[ "$rc" != 0 ] || bad "the sync succeeded although ha's worker was frozen: $(cat "$tmp/out")"
grep -q 'sync ha: FAILED' "$tmp/out" || bad "ha is not reported failed: $(cat "$tmp/out")"
grep -q 'sync hb: ok' "$tmp/out" || bad "hb did not complete in the same run: $(cat "$tmp/out")"
st_check_converged "$store" "$SMBD_SHARE_DIR/hb" "hb, beside a frozen worker"
state=$(ps -o stat= -p "$wpid" 2>/dev/null || true)
[ -z "$state" ] || bad "the frozen worker $wpid was not reaped (state $state)"
kill -CONT "$wpid" 2>/dev/null
ds sync ha >"$tmp/out2" 2>&1 || bad "the sync after the freeze: $(cat "$tmp/out2")"
st_check_converged "$store" "$SMBD_SHARE_DIR/ha" "ha after the freeze"
st_exit smb_hang
