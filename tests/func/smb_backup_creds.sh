#!/usr/bin/env bash
# An smb:// server's credentials file is a secret to `distsync backup`, as
# an identity file is: without --include-secrets its bytes are nowhere in
# the archive and the backup says it left it out (the MANIFEST lists it as
# omitted); with --include-secrets it is in, with its mode (0600), and
# `restore --dry-run` on a fresh console accepts its destination.
set -euo pipefail
: "${DISTSYNC:?}" "${DS_SRC:?}"
source "$DS_SRC/tests/func/lib/sync.bash"
st_init smb_backup_creds
unset DISTSYNC_SMB_USER DISTSYNC_SMB_PASSWORD DISTSYNC_SMB_DOMAIN
mkdir -p "$tmp/store/patches" "$tmp/creds"
pw="SMB-PW-$RANDOM$RANDOM-do-not-ship"
(umask 077 && printf 'username=distsync\npassword=%s\n' "$pw" >"$tmp/creds/lyon.cred")
printf '[console]\nstore = %s\nstate = %s\n[server lyon-1]\nurl = smb://fs1.example/dist/c\ncredentials = %s\n' \
  "$tmp/store" "$tmp/state" "$tmp/creds/lyon.cred" >"$tmp/c.conf"
ds() { "$DISTSYNC" -c "$tmp/c.conf" "$@"; }
ds scan >/dev/null 2>&1 || bad "scan"

ds backup --out "$tmp/b1.tar.zst" >"$tmp/out" 2>"$tmp/err" || bad "backup: $(cat "$tmp/err")"
grep -q "left out secret $tmp/creds/lyon.cred" "$tmp/err" ||
  bad "backup does not say the credentials were left out: $(cat "$tmp/err")"
zstd -dcq "$tmp/b1.tar.zst" >"$tmp/b1.tar"
grep -qa -- "$pw" "$tmp/b1.tar" && bad "the password is in the archive without --include-secrets"
mkdir "$tmp/x1" && zstd -dcq "$tmp/b1.tar.zst" | tar -x -C "$tmp/x1"
grep -qx "omitted secret $tmp/creds/lyon.cred" "$tmp/x1/MANIFEST" ||
  bad "MANIFEST: $(cat "$tmp/x1/MANIFEST")"

ds backup --out "$tmp/b2.tar.zst" --include-secrets >"$tmp/out" 2>"$tmp/err" ||
  bad "backup --include-secrets: $(cat "$tmp/err")"
zstd -dcq "$tmp/b2.tar.zst" >"$tmp/b2.tar"
grep -qa -- "$pw" "$tmp/b2.tar" || bad "the credentials are not in the archive with --include-secrets"
mkdir "$tmp/x2" && zstd -dcq "$tmp/b2.tar.zst" | tar -x -C "$tmp/x2"
grep -q "^file .* secret .* 0600 $tmp/creds/lyon.cred\$" "$tmp/x2/MANIFEST" ||
  bad "MANIFEST with secrets: $(cat "$tmp/x2/MANIFEST")"
rm -rf "$tmp/state" "$tmp/creds" "$tmp/c.conf"
"$DISTSYNC" restore --dry-run "$tmp/b2.tar.zst" >"$tmp/out" 2>&1 || bad "restore --dry-run: $(cat "$tmp/out")"
grep -q "$tmp/creds/lyon.cred" "$tmp/out" || bad "restore --dry-run does not place the credentials: $(cat "$tmp/out")"
st_exit smb_backup_creds
