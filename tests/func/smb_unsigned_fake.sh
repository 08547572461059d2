#!/usr/bin/env bash
# Signing is enforced, not only offered: a fake man in the middle
# (tests/func/lib/smb_wire.py in front of a real smbd) that strips the
# signatures from the server's replies after the login makes distsync give
# up (exit 4, naming the server), and one that makes the server's
# NEGOTIATE reply offer no signing is refused before any login ("does not
# offer SMB signing"); the same relay left alone connects (control).
# No real server can be made to answer SMB2 unsigned, hence the fake.
set -euo pipefail
: "${DISTSYNC:?}" "${DS_SRC:?}"
source "$DS_SRC/tests/func/lib/sync.bash"
source "$DS_SRC/tests/func/lib/smbd.bash"
st_init smb_unsigned_fake
unset DISTSYNC_SMB_USER DISTSYNC_SMB_PASSWORD DISTSYNC_SMB_DOMAIN
SMBD_EXTRA="server signing = auto" smbd_start "$tmp/smbd"
mkdir -p "$SMBD_SHARE_DIR/content" "$tmp/store"
smbd_creds "$tmp/good.cred"

# relay MODE...: a relay on a new port, in $p
relay() {
  p=$(smbd_free_port)
  python3 "$DS_SRC/tests/func/lib/smb_wire.py" "$p" "$SMBD_PORT" "$tmp/wire.$p" "$@" \
    >/dev/null 2>&1 &
  st_pids+=($!)
  for _ in $(seq 50); do [ -e "$tmp/wire.$p" ] && break; sleep 0.1; done
}
# connect PORT STATUS NEEDLE
connect() {
  local out rc=0
  printf '[console]\nstore = %s\nstate = %s\n[server lyon-1]\nurl = smb://127.0.0.1:%s/dist/content\ncredentials = %s\nconnect_timeout = 10s\n' \
    "$tmp/store" "$tmp/state" "$1" "$tmp/good.cred" >"$tmp/t.conf"
  out=$(timeout 60 "$DISTSYNC" -c "$tmp/t.conf" config check --connect 2>&1) || rc=$?
  if [ "$rc" != "$2" ] || [[ "$out" != *"$3"* ]]; then
    bad "port $1: exit $rc (want $2): $out (expected: $3)"
  fi
  [[ "$out" != *"$SMBD_PASSWORD"* ]] || bad "the password is in the output: $out"
}

relay
connect "$p" 0 "connect    lyon-1: ok"
relay --unsigned-replies
connect "$p" 4 "distsync: server lyon-1:"
grep -q ' s plain 1 [0-9a-f]* 0 ' "$tmp/wire.$p" || bad "no login through the stripping relay"
relay --no-signing-offer
connect "$p" 4 "distsync: server lyon-1: 127.0.0.1:$p does not offer SMB signing, which distsync requires"
grep -q ' c plain 1 ' "$tmp/wire.$p" && bad "a login was sent to a server that offers no signing"
st_exit smb_unsigned_fake
