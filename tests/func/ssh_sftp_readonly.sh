#!/usr/bin/env bash
# A target root on a read-only file system, behind a real OpenSSH sshd
# (a tmpfs remounted ro after a first sync), in SFTP mode and in agent
# mode (red-team pass). SFTP's exclusive create of .distsync/lease fails
# with status 4, which OpenSSH also sends for an existing file, so it was
# taken for "created meanwhile" and retried until "the lease file keeps
# changing": the server was reported BUSY ("another console holds the
# lease; --wait waits for it", exit 5), which sends an admin after a
# console that does not exist. It is now a failure (exit 4, "failed" in
# --json) naming the lease file and the likely causes. Agent mode names
# the errno. Nothing on the target changes; a remount rw converges.
# Skips (77) without a tmpfs (not root).
set -uo pipefail
: "${DISTSYNC:?}" "${DS_SRC:?}"
source "$DS_SRC/tests/func/lib/sync.bash"
source "$DS_SRC/tests/func/lib/sshd.bash"
st_init ssh_sftp_readonly
export DISTSYNC_TEST_NO_FSYNC=1
ra=$tmp/ro-agent
rs=$tmp/ro-sftp
mkdir -p "$ra" "$rs"
for r in "$ra" "$rs"; do
  if ! mount -t tmpfs -o size=4m distsync-test-ro "$r" 2>"$tmp/merr"; then
    umount "$ra" 2>/dev/null
    echo "SKIP: ssh_sftp_readonly: cannot mount a tmpfs: $(cat "$tmp/merr")"
    exit 77
  fi
done
cleanup() { umount "$ra" "$rs" 2>/dev/null; }
trap 'sshd_stop; st_cleanup; cleanup; [ "${KEEP:-0}" = 1 ] || rm -rf "$tmp"' EXIT
sshd_start "$tmp/sshd"
trap 'sshd_stop; st_cleanup; cleanup; [ "${KEEP:-0}" = 1 ] || rm -rf "$tmp"' EXIT
sshd_known_hosts "$tmp/known_hosts"
store=$tmp/store
mkdir -p "$store/patches" "$tmp/state"
head -c 20000 /dev/urandom >"$store/patches/a.bin"
cat >"$tmp/d.conf" <<CONF
[console]
store = $store
state = $tmp/state
classes = patches

[server sf]
url = ssh://$SSHD_USER@127.0.0.1:$SSHD_PORT$rs
transport = sftp
identity = $SSH_KEY
known_hosts = $tmp/known_hosts

[server ag]
url = ssh://$SSHD_USER@127.0.0.1:$SSHD_PORT$ra
transport = agent
agent = $DISTSYNC agent
identity = $SSH_KEY
known_hosts = $tmp/known_hosts
CONF
ds() { "$DISTSYNC" -c "$tmp/d.conf" "$@"; }
ds scan >/dev/null 2>&1 || bad "scan"
ds sync sf ag >"$tmp/o" 2>&1 || bad "first sync (rw) failed: $(cat "$tmp/o")"

head -c 30000 /dev/urandom >"$store/patches/b.bin"
mount -o remount,ro "$ra" && mount -o remount,ro "$rs" || bad "cannot remount ro"
before=$(ls -laR "$ra" "$rs")
rc=0
ds sync --json sf ag >"$tmp/s.json" 2>"$tmp/s.err" || rc=$?
[ "$rc" = 4 ] || bad "read-only targets: sync exit $rc, expected 4: $(cat "$tmp/s.err" "$tmp/s.json")"
grep -q "another console\|keeps changing" "$tmp/s.err" &&
  bad "a read-only target is blamed on another console: $(cat "$tmp/s.err")"
python3 - "$tmp/s.json" >"$tmp/st" <<'PY' || bad "sync --json: $(cat "$tmp/s.json")"
import json, sys
d = json.load(open(sys.argv[1]))
for s in d["servers"]:
    print(s["server"], s["status"], s.get("error", ""))
PY
grep -q "^sf failed .*lease file .*$rs/.distsync/lease.*read-only file system" "$tmp/st" ||
  bad "SFTP on a read-only target: not failed naming the lease and the cause: $(cat "$tmp/st")"
grep -q "^ag failed .*Read-only file system" "$tmp/st" ||
  bad "agent on a read-only target: not failed naming the errno: $(cat "$tmp/st")"
[ "$(ls -laR "$ra" "$rs")" = "$before" ] || bad "a read-only target changed"

mount -o remount,rw "$ra" && mount -o remount,rw "$rs" || bad "cannot remount rw"
ds sync sf ag >"$tmp/o" 2>&1 || bad "sync after remount rw failed: $(cat "$tmp/o")"
st_check_converged "$store" "$rs" "SFTP after remount rw"
st_check_converged "$store" "$ra" "agent after remount rw"
exit $fail
