#!/usr/bin/env bash
# Connecting to smb:// servers (a real Samba smbd, tests/func/lib/smbd.bash)
# with `distsync config check --connect`: a good account reaches its share
# and directory, every message after the login is signed (read on the wire
# by tests/func/lib/smb_wire.py), and with encrypt = yes every one is an
# SMB3 transform (encrypted); a wrong password, a missing share, a missing
# directory, a file where the directory should be and a closed port fail
# with exit 4 and a message naming the server (and the user for the login),
# never the password; a credentials file with mode 0644 is refused before
# any connection (exit 2, naming the file and its mode); encrypt = yes
# against a server that does not offer SMB3 encryption is refused
# (libsmbclient 4.17 alone would go on unencrypted).
set -euo pipefail
: "${DISTSYNC:?}" "${DS_SRC:?}"
source "$DS_SRC/tests/func/lib/sync.bash"
source "$DS_SRC/tests/func/lib/smbd.bash"
st_init smb_connect
unset DISTSYNC_SMB_USER DISTSYNC_SMB_PASSWORD DISTSYNC_SMB_DOMAIN
smbd_start "$tmp/smbd"
mkdir -p "$SMBD_SHARE_DIR/content" "$tmp/store"
: >"$SMBD_SHARE_DIR/plain.txt"
smbd_creds "$tmp/good.cred"
smbd_creds "$tmp/bad.cred" "$SMBD_USER" "not-$SMBD_PASSWORD"

smbd_wire "$tmp/wire"
wport=$SMBD_WIRE_PORT

# conf URL CRED [KEY-LINE...]: one smb:// server "lyon-1"
conf() {
  local url=$1 cred=$2
  shift 2
  {
    printf '[console]\nstore = %s\nstate = %s\n[server lyon-1]\nurl = %s\ncredentials = %s\n' \
      "$tmp/store" "$tmp/state" "$url" "$cred"
    printf 'connect_timeout = 10s\n'
    for l in "$@"; do printf '%s\n' "$l"; done
  } >"$tmp/t.conf"
}
# connect STATUS NEEDLE: config check --connect, its exit status and output
connect() {
  local want=$1 needle=$2 out rc=0
  out=$("$DISTSYNC" -c "$tmp/t.conf" config check --connect 2>&1) || rc=$?
  if [ "$rc" != "$want" ] || [[ "$out" != *"$needle"* ]]; then
    bad "connect -> exit $rc (want $want): $out (expected: $needle)"
  fi
  [[ "$out" != *"$SMBD_PASSWORD"* ]] || bad "the password is in the output: $out"
}
# wire_check WHAT: on each connection, after the login, every client
# message of the session is signed (WHAT signed) or, once the first
# encrypted one went, encrypted (WHAT enc: and at least one was); no
# CREATE, READ, WRITE, QUERY_INFO or QUERY_DIRECTORY in the clear then.
wire_check() {
  python3 - "$tmp/wire" "$1" <<'PY' || bad "wire ($1): $(cat "$tmp/wire")"
import sys
want = sys.argv[2]
authed, enc, checked = set(), set(), 0
for conn, d, kind, cmd, flags, status, sess in (l.split() for l in open(sys.argv[1])):
    if d == "s" and kind == "plain" and cmd == "1" and status == "0":
        authed.add(conn)
    if d != "c" or conn not in authed or sess == "0":
        continue
    checked += 1
    if kind == "enc":
        enc.add(conn)
    elif want == "enc" and (conn in enc or cmd in ("5", "8", "9", "e", "10")):
        raise SystemExit("conn %s: %s in the clear" % (conn, cmd))
    else:
        assert kind == "plain" and int(flags, 16) & 0x8, ("unsigned", conn, cmd, flags)
assert checked > 0, "no login seen"
assert want != "enc" or enc, "nothing encrypted"
PY
}

conf "smb://127.0.0.1:$wport/dist/content" "$tmp/good.cred"
: >"$tmp/wire"
connect 0 "connect    lyon-1: ok (smb://127.0.0.1:$wport/dist/content, user distsync, signed)"
wire_check signed

conf "smb://127.0.0.1:$wport/enc/" "$tmp/good.cred" "encrypt = yes"
: >"$tmp/wire"
connect 0 "connect    lyon-1: ok (smb://127.0.0.1:$wport/enc/, user distsync, signed, encrypted)"
wire_check enc
conf "smb://127.0.0.1:$wport/dist/content" "$tmp/good.cred" "encrypt = yes"
: >"$tmp/wire"
connect 0 "signed, encrypted)"
wire_check enc

p=$SMBD_PORT
conf "smb://127.0.0.1:$p/dist/content" "$tmp/bad.cred"
connect 4 "distsync: server lyon-1: SMB authentication failed for user distsync on 127.0.0.1:$p"
conf "smb://127.0.0.1:$p/nosuch/content" "$tmp/good.cred"
connect 4 "distsync: server lyon-1: share nosuch does not exist on 127.0.0.1:$p"
conf "smb://127.0.0.1:$p/dist/missing" "$tmp/good.cred"
connect 4 "distsync: server lyon-1: directory missing does not exist in share dist on 127.0.0.1:$p"
conf "smb://127.0.0.1:$p/dist/plain.txt" "$tmp/good.cred"
connect 4 "distsync: server lyon-1: plain.txt in share dist is not a directory"
closed=$(smbd_free_port)
conf "smb://127.0.0.1:$closed/dist/content" "$tmp/good.cred"
connect 4 "distsync: server lyon-1: cannot connect to 127.0.0.1:$closed: Connection refused"

chmod 644 "$tmp/good.cred"
conf "smb://127.0.0.1:$p/dist/content" "$tmp/good.cred"
: >"$SMBD_DIR/log/smbd.log"
connect 2 "t.conf:6: [server lyon-1] key 'credentials': credentials file $tmp/good.cred has mode 0644, must be 0600"
grep -q "$SMBD_USER" "$SMBD_DIR/log/smbd.log" && bad "a login was tried with a 0644 credentials file"
chmod 600 "$tmp/good.cred"

# a server that does not offer encryption (server smb encrypt = off)
SMBD_EXTRA="server smb encrypt = off" smbd_restart
conf "smb://127.0.0.1:$p/dist/content" "$tmp/good.cred" "encrypt = yes"
connect 4 "distsync: server lyon-1: encrypt = yes, but 127.0.0.1:$p does not offer SMB3 encryption"
conf "smb://127.0.0.1:$p/dist/content" "$tmp/good.cred" "encrypt = no"
connect 0 "connect    lyon-1: ok"

# a server that does not require signing: distsync signs all the same (a
# client that does not require it, smbclient here, goes unsigned: the
# check can tell)
SMBD_EXTRA="server signing = auto" smbd_restart
conf "smb://127.0.0.1:$wport/dist/content" "$tmp/good.cred"
: >"$tmp/wire"
connect 0 "connect    lyon-1: ok"
wire_check signed
: >"$tmp/wire"
smbclient "//127.0.0.1/dist" -p "$wport" -A "$SMBD_DIR/smbclient.auth" -s "$SMBD_CONF" \
  --option='client signing=if_required' -c ls >/dev/null 2>&1 || bad "smbclient without signing"
fail_was=$fail
wire_check signed 2>/dev/null
[ "$fail" = 1 ] && [ "$fail_was" = 0 ] || bad "the wire check did not see an unsigned client"
fail=$fail_was
st_exit smb_connect
