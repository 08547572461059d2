#!/usr/bin/env bash
# kill -9 of the SMB worker in the middle of a file, against a real smbd
# (tests/func/lib/smbd.bash): the run reports the worker's death and ends
# (no hang), the run's other server (file://) completes; every file visible
# in the share's backing directory is a whole known version; the next sync
# converges (the dead worker's share-mode lock went with its connection,
# its tmp file is cleaned up) within the server's bandwidth cap. retries =
# 0: the run ends with the death (a new worker within the run, the
# default, is smb_reconnect's).
set -uo pipefail
: "${DISTSYNC:?}" "${DS_SRC:?}"
source "$DS_SRC/tests/func/lib/sync.bash"
source "$DS_SRC/tests/func/lib/smbd.bash"
st_init smb_kill9
smbd_start "$tmp/smbd"
store=$tmp/store known=$tmp/known target=$SMBD_SHARE_DIR/k
smbd_creds "$tmp/cred"
mkdir -p "$target"
url=smb://127.0.0.1:$SMBD_PORT/dist/k
cat >"$tmp/d.conf" <<CONF
[console]
store = $store
state = $tmp/state
[server k]
url = $url
credentials = $tmp/cred
classes = patches engines definitions
prune = yes
bandwidth = 64Mbit
retries = 0
[server loc]
url = file://$tmp/loc
create_root = yes
classes = patches engines definitions
prune = yes
bandwidth = 64Mbit
CONF
ds() { "$DISTSYNC" -c "$tmp/d.conf" "$@"; }

st_gen "$store" 0 "$known" --files 4 --max 256 || bad "mkstore"
ds scan >/dev/null 2>&1 && ds sync k loc >/dev/null 2>"$tmp/err" || bad "first sync: $(cat "$tmp/err")"
st_check_converged "$store" "$target" "first sync"
# a big new file: about 5 s at 64 Mbit/s
head -c 40000000 /dev/urandom >"$store/engines/big.bin"
python3 -c 'import hashlib,sys; print("engines/big.bin", hashlib.sha256(open(sys.argv[1],"rb").read()).hexdigest())' \
  "$store/engines/big.bin" >>"$known"
ds scan >/dev/null 2>&1 || bad "scan"
ds sync k loc >"$tmp/out" 2>&1 &
spid=$!
st_pids+=("$spid")
wpid="" part=""
for _ in $(seq 300); do
  wpid=$(pgrep -f -- "smb-worker --url $url " | head -1 || true)
  part=$(find "$target/.distsync/tmp" -name 'ds-*.part' -size +1k 2>/dev/null | head -1)
  [ -n "$wpid" ] && [ -n "$part" ] && break
  sleep 0.05
done
[ -n "$wpid" ] && [ -n "$part" ] || bad "no worker ($wpid) writing a tmp file ($part) seen"
kill -9 "$wpid" 2>/dev/null
rc=0
for _ in $(seq 200); do kill -0 "$spid" 2>/dev/null || break; sleep 0.1; done
kill -0 "$spid" 2>/dev/null && bad "the sync did not end within 20 s of the worker's death"
wait "$spid" || rc=$?
[ "$rc" != 0 ] || bad "the sync succeeded although its worker was killed: $(cat "$tmp/out")"
grep -q 'SMB worker for server k' "$tmp/out" || bad "the failure does not name the SMB worker: $(cat "$tmp/out")"
st_check_versions "$target" "$known" "after the kill"
st_check_converged "$store" "$tmp/loc" "the other server of the run, after the kill"
[ ! -e "$target/engines/big.bin" ] || bad "big.bin is visible although its transfer was killed"

t0=$(date +%s%N)
ds sync k >"$tmp/out" 2>&1 || bad "the sync after the kill: $(cat "$tmp/out")"
ms=$((($(date +%s%N) - t0) / 1000000))
# the server's cap counts the bytes written to its worker: 40 MB at 64 Mbit/s is 5 s
[ "$ms" -ge 4000 ] || bad "40 MB went to the SMB worker in $ms ms, faster than its 64 Mbit/s cap"
st_check_converged "$store" "$target" "after the kill and a resync"
st_exit smb_kill9
