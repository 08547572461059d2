#!/usr/bin/env bash
# SFTP mode keeps several files in flight (real OpenSSH sshd behind
# tools/tcp-relay holding each chunk 20 ms each way: a 40 ms round trip).
# 96 files of 8 KiB in six new nested directories go to a transport =
# sftp server. Each file costs at
# least 9 round trips one after the other (create, the write's
# acknowledgement, fsync, attributes, size check, close, the lstat of its
# parent and of its path, rename): one file at a time that is >= 34 s
# here, whatever the load. The sync must take less than half that floor,
# arrive byte for byte, and the sshd log must show the receiver opened
# more than one SFTP channel on its one connection. Then every file
# changes: over the old files a shell account's replaces are mv -f, which
# must go through one exec for the run (a shell loop), not an exec each
# (4 round trips each, during which no other file moved): fewer command
# sessions than a quarter of the files (the shell probe, the loop, the
# manifest's own mv), and again under half the floor (9 round
# trips a file plus 4 for an exec of mv: >= 50 s one file at a time).
set -uo pipefail
: "${DISTSYNC:?}" "${DS_SRC:?}"
source "$DS_SRC/tests/func/lib/sync.bash"
source "$DS_SRC/tests/func/lib/sshd.bash"
st_init ssh_sftp_pipeline
export DISTSYNC_TEST_NO_FSYNC=1
sshd_start "$tmp/sshd"
store=$tmp/store target=$tmp/t conf=$tmp/d.conf
nfiles=96 rtt_ms=40
mkdir -p "$target" "$tmp/state"
# six new nested directories, so that slots race to create the same parents
fpath() { echo "$store/patches/sub/d$((10#$1 % 6))/x/f$1.bin"; }
for i in $(seq -w 1 $nfiles); do
  mkdir -p "$(dirname "$(fpath $i)")"
  head -c 8192 /dev/urandom >"$(fpath $i)"
done
rport=$(sshd_free_port)
python3 "$DS_SRC/tools/tcp-relay" "$rport" "$SSHD_PORT" "$tmp/count" --delay-ms $((rtt_ms / 2)) &
st_pids+=($!)
for _ in $(seq 50); do [ -s "$tmp/count" ] && break; sleep 0.1; done
sshd_known_hosts "$tmp/known_hosts" "$rport"
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

# every file changes: the replaces go through the mv loop
for i in $(seq -w 1 $nfiles); do head -c 8192 /dev/urandom >"$(fpath $i)"; done
"$DISTSYNC" -c "$conf" scan >/dev/null || bad "scan"
before=$(grep -c "Starting session: command" "$SSHD_DIR/sshd.log")
t0=$(date +%s.%N)
"$DISTSYNC" -c "$conf" sync --no-scan --json s >"$tmp/u.json" 2>"$tmp/u.err" ||
  bad "update failed: $(head -c 600 "$tmp/u.err")"
t1=$(date +%s.%N)
st_check_converged "$store" "$target" "sftp pipeline, update"
python3 -c 'import json,sys; d=json.load(open(sys.argv[1]))["servers"][0]
sys.exit(0 if d["updated"] == int(sys.argv[2]) else 1)' "$tmp/u.json" "$nfiles" ||
  bad "update: not $nfiles files updated: $(cat "$tmp/u.json")"
execs=$(($(grep -c "Starting session: command" "$SSHD_DIR/sshd.log") - before))
wall=$(echo "$t1 - $t0" | bc)
floor=$(echo "$nfiles * 13 * $rtt_ms / 1000" | bc -l | sed "s/0*$//")
echo "$nfiles files replaced: $wall s, $execs command sessions (one file at a time: >= $floor s)"
[ "$execs" -lt $((nfiles / 4)) ] || bad "$execs command sessions for $nfiles replaces: an exec of mv per file"
[ "$(echo "$wall < $floor / 2" | bc -l)" = 1 ] ||
  bad "$wall s to replace $nfiles files: not under half the one-file-at-a-time floor of $floor s"
st_exit ssh_sftp_pipeline
