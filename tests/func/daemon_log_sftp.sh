#!/usr/bin/env bash
# daemon_log_run's rule (every line of a run carries run=ID, a server's
# server=NAME too) for a line logged by the SFTP receiver (transport_sftp.c
# steps it in its opener's log scope, whichever call drives it): a
# transport = sftp server behind a real sshd (tests/func/lib/sshd.bash)
# whose .distsync/manifest is garbage, so the receiver logs that it moved
# it to manifest.corrupt. Without the scope that line has no
# run= and no server=.
set -uo pipefail
: "${DISTSYNC:?}" "${DS_SRC:?}"
source "$DS_SRC/tests/func/lib/sync.bash"
source "$DS_SRC/tests/func/lib/sshd.bash"
source "$DS_SRC/tests/func/lib/engine.bash"
source "$DS_SRC/tests/func/lib/daemon.bash"
source "$DS_SRC/tests/func/lib/api.bash"
st_init daemon_log_sftp
export DISTSYNC_TEST_NO_FSYNC=1
sshd_start "$tmp/sshd"
sshd_known_hosts "$tmp/known_hosts"

state=$tmp/state conf=$tmp/d.conf sock=$tmp/state/distsync.sock root=$tmp/t1
en_fill "$tmp/store" 3 65536
en_head "$conf" "$tmp/store" "$state"
printf '\n[server s1]\nurl = ssh://%s@127.0.0.1:%s%s\ntransport = sftp\nidentity = %s\nknown_hosts = %s\nagent = %s agent\nclasses = patches engines definitions\n' \
  "$SSHD_USER" "$SSHD_PORT" "$root" "$SSH_KEY" "$tmp/known_hosts" "$DISTSYNC" >>"$conf"
mkdir -p "$root/.distsync"
echo 'not a manifest' >"$root/.distsync/manifest"

log=$tmp/daemon.log
DISTSYNC_TEST_NOW=$(dm_epoch 2026-03-10T00:00:00Z) DISTSYNC_TEST_SPEED=1 \
  "$DISTSYNC" -v -c "$conf" daemon >>"$log" 2>&1 &
dpid=$!
st_pids+=("$dpid")
api_wait_up "$log" || st_exit daemon_log_sftp
api POST /v1/run-now '{"servers":["s1"]}'
expect 202 "run-now"
id=$(jq_py 'j["id"]')
run_wait "$id" ok 60
dm_stop
st_check_converged "$tmp/store" "$root" "the sftp run"
line=$(grep 'moved to manifest.corrupt' "$log")
[ -n "$line" ] || bad "the receiver did not log the corrupt manifest: $(tr '\n' '|' <"$log")"
grep -q "^distsync: [a-z]*: run=$id server=s1: .*moved to manifest.corrupt" <<<"$line" ||
  bad "the SFTP receiver's line lacks run=$id server=s1: $line"
st_exit daemon_log_sftp
