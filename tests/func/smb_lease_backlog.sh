#!/usr/bin/env bash
# A long SMB sync keeps its lease (issue 12). The SMB worker applies one
# file at a time, about 10 round trips each, and the console queued every
# small file's FILE_ONE at once (only the queued bytes bound them, and a
# small file or delta is a few KB or less), so the lease renewal it sent a
# third of lease_ttl later reached the worker behind all of them: once
# their work took longer than the lease had left, every later file failed
# with "FILE_BEGIN without a valid lease: the lease expired". Now at most 4
# FILE_ONEs are in flight to a receiver whose file operations cross the WAN.
# A real smbd behind tools/tcp-relay with 40 ms round trips, lease_ttl = 15
# (renewed every 5 s; the worker must see each renewal within 10 s), 36
# new files of 4 KB (about 0.5 s each here): main fails most of them.
set -uo pipefail
: "${DISTSYNC:?}" "${DS_SRC:?}"
source "$DS_SRC/tests/func/lib/sync.bash"
source "$DS_SRC/tests/func/lib/smbd.bash"
st_init smb_lease_backlog
smbd_start "$tmp/smbd"
store=$tmp/store target=$SMBD_SHARE_DIR/u
smbd_creds "$tmp/cred"
mkdir -p "$target" "$store/engines"
smbd_relay "$tmp/count" --delay-ms 20
cat >"$tmp/d.conf" <<CONF
[console]
store = $store
state = $tmp/state
lease_ttl = 15
[server u]
url = smb://127.0.0.1:$SMBD_RELAY_PORT/dist/u
credentials = $tmp/cred
classes = engines
CONF
for i in $(seq 36); do head -c 4096 /dev/urandom >"$store/engines/f$i"; done
t0=$(date +%s)
"$DISTSYNC" -c "$tmp/d.conf" sync u >"$tmp/out" 2>&1 || bad "sync: $(grep -v 'engines/f' "$tmp/out" | tail -3)"
echo "smb_lease_backlog: 36 files through 40 ms in $(($(date +%s) - t0)) s"
grep -q 'without a valid lease' "$tmp/out" &&
  bad "$(grep -c 'without a valid lease' "$tmp/out") files failed on an expired lease: $(grep -m1 'without a valid lease' "$tmp/out")"
st_check_converged "$store" "$target" "the sync"
st_exit smb_lease_backlog
