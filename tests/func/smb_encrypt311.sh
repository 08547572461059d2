#!/usr/bin/env bash
# encrypt = yes against a real smbd that speaks only SMB 3.1.1 (server min
# protocol = SMB3_11): in 3.1.1 the server offers encryption through the
# cipher of its ENCRYPTION_CAPABILITIES negotiate context, not the
# capability flag. With server smb encrypt = required the server is
# accepted and a sync goes through; with server smb encrypt = off (no
# cipher offered) it is refused before any login, naming the server.
set -euo pipefail
: "${DISTSYNC:?}" "${DS_SRC:?}"
source "$DS_SRC/tests/func/lib/sync.bash"
source "$DS_SRC/tests/func/lib/smbd.bash"
st_init smb_encrypt311
unset DISTSYNC_SMB_USER DISTSYNC_SMB_PASSWORD DISTSYNC_SMB_DOMAIN
SMBD_EXTRA="server min protocol = SMB3_11
  server smb encrypt = required" smbd_start "$tmp/smbd"
store=$tmp/store known=$tmp/known target=$SMBD_SHARE_DIR/e
mkdir -p "$target"
smbd_creds "$tmp/cred"
p=$SMBD_PORT
cat >"$tmp/d.conf" <<CONF
[console]
store = $store
state = $tmp/state
[server e]
url = smb://127.0.0.1:$p/dist/e
credentials = $tmp/cred
encrypt = yes
connect_timeout = 10s
classes = patches engines definitions
CONF
ds() { "$DISTSYNC" -c "$tmp/d.conf" "$@"; }

st_gen "$store" 0 "$known" --files 4 --max 64 || bad "mkstore"
# the server really is 3.1.1 only: an SMB 3.0.2 client is turned away
smbd_client dist -c ls -m SMB3_02 >/dev/null 2>&1 && bad "smbd accepts SMB 3.0.2"
out=$(ds config check --connect 2>&1) || bad "connect to a 3.1.1-only encrypting server: $out"
[[ "$out" == *"signed, encrypted)"* ]] || bad "connect: $out"
ds scan >/dev/null 2>&1 || bad "scan"
ds sync e >"$tmp/out" 2>&1 || bad "sync to a 3.1.1-only encrypting server: $(cat "$tmp/out")"
st_check_converged "$store" "$target" "sync over SMB 3.1.1"

# the same 3.1.1-only server without encryption: refused before a login
SMBD_EXTRA="server min protocol = SMB3_11
  server smb encrypt = off" smbd_restart
: >"$SMBD_DIR/log/smbd.log"
rc=0
out=$(ds config check --connect 2>&1) || rc=$?
[ "$rc" = 4 ] && [[ "$out" == *"server e: encrypt = yes, but 127.0.0.1:$p does not offer SMB3 encryption (dialect 3.1.1)"* ]] ||
  bad "a 3.1.1 server without encryption -> exit $rc: $out"
st_exit smb_encrypt311
