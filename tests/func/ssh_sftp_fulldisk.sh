#!/usr/bin/env bash
# An SFTP server whose disk fills during a sync (a real OpenSSH sshd, the
# target root on a 256 KiB tmpfs): OpenSSH's sftp-server answers a write
# on a full disk with SSH_FX_FAILURE (status 4, SFTP v3 has no "no space"
# code), which the console printed as "Input/output error (SFTP status 4)"
# (new-admin pass): misleading, as nothing failed on the console. The
# error now says the server gave no reason and names the usual ones (a
# full disk, a quota). The failed file is not published, no tmp file is
# left, and the files that fit are. Skips (77) without a tmpfs (not root).
set -uo pipefail
: "${DISTSYNC:?}" "${DS_SRC:?}"
source "$DS_SRC/tests/func/lib/sync.bash"
source "$DS_SRC/tests/func/lib/sshd.bash"
st_init ssh_sftp_fulldisk
root=$tmp/small
mkdir -p "$root"
if ! mount -t tmpfs -o size=256k distsync-test-sftp "$root" 2>"$tmp/merr"; then
  echo "SKIP: ssh_sftp_fulldisk: cannot mount a tmpfs: $(cat "$tmp/merr")"
  exit 77
fi
trap 'sshd_stop; st_cleanup; umount "$root" 2>/dev/null; [ "${KEEP:-0}" = 1 ] || rm -rf "$tmp"' EXIT
sshd_start "$tmp/sshd"
trap 'sshd_stop; st_cleanup; umount "$root" 2>/dev/null; [ "${KEEP:-0}" = 1 ] || rm -rf "$tmp"' EXIT
sshd_known_hosts "$tmp/known_hosts"
store=$tmp/store
mkdir -p "$store/patches" "$tmp/state"
head -c 20000 /dev/urandom >"$store/patches/a-small.bin"
head -c 600000 /dev/urandom >"$store/patches/b-big.bin"
printf '[console]\nstore = %s\nstate = %s\nclasses = patches\n[server s]\nurl = ssh://%s@127.0.0.1:%s%s\ntransport = sftp\nidentity = %s\nknown_hosts = %s\n' \
  "$store" "$tmp/state" "$SSHD_USER" "$SSHD_PORT" "$root" "$SSH_KEY" "$tmp/known_hosts" >"$tmp/d.conf"
ds() { "$DISTSYNC" -c "$tmp/d.conf" "$@"; }
ds scan >/dev/null 2>&1 || bad "scan"

st_expect_ds 4 "patches/b-big.bin" sync s
out=$(ds sync s 2>&1)
[[ $out == *"the server gave no reason (SFTP status 4"*"full disk"* ]] ||
  bad "a full disk over SFTP: the error does not name the likely causes: $out"
[[ $out == *"Input/output error"* ]] && bad "a full disk over SFTP is called an I/O error: $out"
[ -e "$root/patches/b-big.bin" ] && bad "the file that did not fit was published"
cmp -s "$store/patches/a-small.bin" "$root/patches/a-small.bin" || bad "the file that fits was not published"
left=$(find "$root/.distsync/tmp" -type f 2>/dev/null | wc -l)
[ "$left" = 0 ] || bad "$left tmp files left behind: $(ls -la "$root/.distsync/tmp")"
exit $fail
