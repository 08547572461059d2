#!/usr/bin/env bash
# SFTP mode keeps several files in flight (real OpenSSH sshd behind
# tools/tcp-relay holding each chunk 20 ms each way: a 40 ms round trip).
# 96 files of 8 KiB go to a transport = sftp server. Each file costs at
# least 9 round trips one after the other (create, the write's
# acknowledgement, fsync, attributes, size check, close, the lstat of its
# parent and of its path, rename): one file at a time that is >= 34 s
# here, whatever the load. The sync must take less than half that floor,
# arrive byte for byte, and the sshd log must show the receiver opened
# more than one SFTP channel on its one connection.
set -uo pipefail
: "${DISTSYNC:?}" "${DS_SRC:?}"
source "$DS_SRC/tests/func/lib/sync.bash"
source "$DS_SRC/tests/func/lib/sshd.bash"
st_init ssh_sftp_pipeline
export DISTSYNC_TEST_NO_FSYNC=1
sshd_start "$tmp/sshd"
store=$tmp/store target=$tmp/t conf=$tmp/d.conf
nfiles=96 rtt_ms=40
mkdir -p "$store/patches/sub" "$target" "$tmp/state"
for i in $(seq -w 1 $nfiles); do head -c 8192 /dev/urandom >"$store/patches/sub/f$i.bin"; done
rport=$(sshd_free_port)
python3 "$DS_SRC/tools/tcp-relay" "$rport" "$SSHD_PORT" "$tmp/count" --delay-ms $((rtt_ms / 2)) &
st_pids+=($!)
for _ in $(seq 50); do [ -s "$tmp/count" ] && break; sleep 0.1; done
echo "[127.0.0.1]:$rport $(cut -d' ' -f1,2 "$SSHD_HOSTKEY.pub")" >"$tmp/known_hosts"
cat >"$conf" <<CONF
[console]
store = $store
state = $tmp/state
classes = patches

[server s]
url = ssh://$SSHD_USER@127.0.0.1:$rport$target
transport = sftp
identity = $SSH_KEY
known_hosts = $tmp/known_hosts
CONF
"$DISTSYNC" -c "$conf" scan >/dev/null || bad "scan"
t0=$(date +%s.%N)
"$DISTSYNC" -c "$conf" sync --no-scan s >"$tmp/s.out" 2>&1 || bad "sync failed: $(head -c 600 "$tmp/s.out")"
t1=$(date +%s.%N)
st_check_converged "$store" "$target" "sftp pipeline"
wall=$(echo "$t1 - $t0" | bc)
floor=$(echo "$nfiles * 9 * $rtt_ms / 1000" | bc -l | sed "s/0*$//")
echo "$nfiles files over a 40 ms round trip: $wall s (one file at a time: >= $floor s)"
[ "$(echo "$wall < $floor / 2" | bc -l)" = 1 ] ||
  bad "$wall s for $nfiles files: not under half the one-file-at-a-time floor of $floor s"
chans=$(grep -c "Starting session: subsystem 'sftp'" "$SSHD_DIR/sshd.log")
[ "$chans" -gt 2 ] || bad "the sync opened $chans SFTP channels: files went one at a time"
st_exit ssh_sftp_pipeline
