#!/usr/bin/env bash
# `distsync verify` and the listing in SFTP mode (transport = sftp) against
# a real OpenSSH sshd: LIST and HASH are stepped non-blocking in the SFTP
# receiver (sftp_list.c, sftp_hash.c), resumed when the SSH socket is
# ready. A tree of 90 files in nested directories (one of 6 MiB, which
# HASH reads in several calls) syncs and verifies clean; a file tampered
# with (same size), one deleted and one whose parent became a symlink are
# each reported (exit 3), the symlink refused, nothing read through it;
# --repair restores the tampered and deleted files.
set -uo pipefail
: "${DISTSYNC:?}" "${DS_SRC:?}"
source "$DS_SRC/tests/func/lib/sync.bash"
source "$DS_SRC/tests/func/lib/sshd.bash"
st_init ssh_sftp_verify
export DISTSYNC_TEST_NO_FSYNC=1
sshd_start "$tmp/sshd"
ds() { "$DISTSYNC" -c "$tmp/distsync.conf" "$@"; }

mkdir -p "$tmp/state"
for d in 1 2 3; do
  for s in a b c d e; do
    mkdir -p "$tmp/store/patches/d$d/s$s"
    for f in $(seq 1 6); do printf 'file %s %s %s\n' "$d" "$s" "$f" >"$tmp/store/patches/d$d/s$s/f$f.txt"; done
  done
done
head -c $((6 << 20)) /dev/urandom >"$tmp/store/patches/d1/big.bin"
sshd_known_hosts "$tmp/known_hosts"
ta="$tmp/ta"
mkdir -p "$ta"
printf '[console]\nstore = %s\nstate = %s\nclasses = patches\n' "$tmp/store" "$tmp/state" \
  >"$tmp/distsync.conf"
printf '\n[server a]\nurl = ssh://%s@127.0.0.1:%s%s\ntransport = sftp\nidentity = %s\nknown_hosts = %s\n' \
  "$SSHD_USER" "$SSHD_PORT" "$ta" "$SSH_KEY" "$tmp/known_hosts" >>"$tmp/distsync.conf"

ds scan >/dev/null || bad "scan"
ds sync a >"$tmp/s1" 2>&1 || bad "first sftp sync failed: $(cat "$tmp/s1")"
st_check_converged "$tmp/store" "$ta" "first sftp sync"
ds plan a >"$tmp/plan1" 2>&1 || bad "plan after the sync failed: $(cat "$tmp/plan1")"
grep -q "0 to create, 0 to update, 0 to delete, 91 unchanged" "$tmp/plan1" ||
  bad "the listing missed files: $(head -5 "$tmp/plan1")"
ds verify a >"$tmp/v1" 2>&1 || bad "verify over sftp exits $?: $(cat "$tmp/v1")"

# tampered (same size), deleted, and a parent turned into a symlink to a
# copy outside the root (nothing is read through it)
printf 'X' | dd of="$ta/patches/d1/big.bin" bs=1 seek=4000000 conv=notrunc status=none
rm "$ta/patches/d2/sb/f5.txt"
mkdir -p "$tmp/outside"
mv "$ta/patches/d3/sc" "$tmp/outside/sc"
ln -s "$tmp/outside/sc" "$ta/patches/d3/sc"
rc=0
ds verify a >"$tmp/v2" 2>&1 || rc=$?
[ "$rc" = 3 ] || bad "verify over sftp: exit $rc, expected 3: $(tail -c 800 "$tmp/v2")"
grep -q "drifted patches/d1/big.bin" "$tmp/v2" || bad "verify did not name the tampered file: $(tail -c 800 "$tmp/v2")"
grep -q "missing patches/d2/sb/f5.txt" "$tmp/v2" || bad "verify did not name the deleted file: $(tail -c 800 "$tmp/v2")"
[ "$(grep -c "unreadable patches/d3/sc/f.*d3/sc on .* is a symlink: refused" "$tmp/v2")" = 6 ] ||
  bad "verify did not refuse the 6 files behind the symlink: $(tail -c 800 "$tmp/v2")"

ds verify --repair a >"$tmp/v3" 2>&1 || true
cmp -s "$tmp/store/patches/d1/big.bin" "$ta/patches/d1/big.bin" || bad "--repair did not restore big.bin"
cmp -s "$tmp/store/patches/d2/sb/f5.txt" "$ta/patches/d2/sb/f5.txt" || bad "--repair did not restore f5.txt"
[ -L "$ta/patches/d3/sc" ] && [ -z "$(ls "$tmp/outside/sc" | grep -v '^f[0-9]*\.txt$')" ] ||
  bad "something was written through the symlinked directory"
st_exit ssh_sftp_verify
