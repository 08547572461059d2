#!/usr/bin/env bash
# The real-smbd harness (tests/func/lib/smbd.bash) works and is what the
# smb:// tests rely on: smbclient puts and gets files through the share (the
# bytes land in the backing directory), the second share reaches the same
# directory, the encrypted share is served, a wrong password is refused, a
# client that offers only SMB1 is refused (floor SMB2), and smbd_stop leaves
# no smbd behind.
set -euo pipefail
: "${DISTSYNC:?}" "${DS_SRC:?}"
source "$DS_SRC/tests/func/lib/sync.bash"
source "$DS_SRC/tests/func/lib/smbd.bash"
st_init smb_harness
smbd_start "$tmp/smbd"

head -c 300000 /dev/urandom >"$tmp/up.bin"
smbd_client dist -c "put $tmp/up.bin up.bin" >"$tmp/out" 2>&1 || bad "put failed: $(cat "$tmp/out")"
cmp -s "$tmp/up.bin" "$SMBD_SHARE_DIR/up.bin" || bad "the put file is not in the backing directory"
smbd_client dist2 -c "get up.bin $tmp/down.bin" >"$tmp/out" 2>&1 || bad "get failed: $(cat "$tmp/out")"
cmp -s "$tmp/up.bin" "$tmp/down.bin" || bad "the file read back through dist2 differs"
smbd_client enc -c "put $tmp/up.bin e.bin" >"$tmp/out" 2>&1 || bad "put to enc failed: $(cat "$tmp/out")"
cmp -s "$tmp/up.bin" "$SMBD_ENC_DIR/e.bin" || bad "the file put to enc is not in its directory"

# a wrong password
printf 'username = %s\npassword = wrong-%s\n' "$SMBD_USER" "$SMBD_PASSWORD" >"$tmp/bad.auth"
if smbclient //127.0.0.1/dist -p "$SMBD_PORT" -A "$tmp/bad.auth" -c ls >"$tmp/out" 2>&1; then
  bad "a wrong password was accepted"
fi
grep -q NT_STATUS_LOGON_FAILURE "$tmp/out" || bad "wrong password: $(cat "$tmp/out")"

# the floor: SMB1 only is refused
if smbd_client dist -c ls --option='client max protocol=NT1' --option='client min protocol=NT1' \
  >"$tmp/out" 2>&1; then
  bad "an SMB1-only client was served"
fi

# smbd_stop stops the listener and its children
pid=$SMBD_PID
smbd_stop
kill -0 "$pid" 2>/dev/null && bad "smbd $pid still runs after smbd_stop"
[ -z "$(pgrep -P "$pid" 2>/dev/null || true)" ] || bad "children of smbd $pid still run"
st_exit smb_harness
