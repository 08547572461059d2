#!/usr/bin/env bash
# A host key that known_hosts marks `@revoked` is refused, against a real
# OpenSSH sshd, as OpenSSH's own ssh refuses it: by sync (exit 4, nothing
# written, "HOST KEY REVOKED" with the fingerprint), by `config check
# --connect`, and by `distsync trust --yes`, which must not record it. It
# holds when the same key also has a plain entry (before, the plain entry
# matched and the sync ran), when the @revoked line names another host
# pattern (`*`), and with a hashed entry beside it. Keys that are not
# revoked still work.
set -euo pipefail
: "${DISTSYNC:?}" "${DS_SRC:?}"
source "$DS_SRC/tests/func/lib/sync.bash"
source "$DS_SRC/tests/func/lib/sshd.bash"
st_init ssh_hostkey_revoked
export DISTSYNC_TEST_NO_FSYNC=1
sshd_start "$tmp/sshd"
ds() { "$DISTSYNC" -c "$tmp/distsync.conf" "$@"; }
kh="$tmp/known_hosts"
fp=$(sshd_fp "$SSHD_HOSTKEY.pub")
key=$(cut -d' ' -f1,2 "$SSHD_HOSTKEY.pub")

mkdir -p "$tmp/store/patches" "$tmp/state" "$tmp/ta"
head -c 100000 /dev/urandom >"$tmp/store/patches/a.bin"
cat >"$tmp/distsync.conf" <<CONF
[console]
store = $tmp/store
state = $tmp/state
classes = patches

[server web1]
url = ssh://$SSHD_USER@127.0.0.1:$SSHD_PORT$tmp/ta
identity = $SSH_KEY
known_hosts = $kh
agent = $DISTSYNC agent
CONF
ds scan >/dev/null

# refused: by sync, config check --connect and trust
refused() { # WHAT: the known_hosts file as written revokes the key
  local what=$1 rc=0
  ds sync web1 >"$tmp/o" 2>&1 || rc=$?
  [ "$rc" = 4 ] || bad "$what: sync exit $rc, expected 4: $(cat "$tmp/o")"
  grep -q "HOST KEY REVOKED" "$tmp/o" || bad "$what: sync does not say REVOKED: $(cat "$tmp/o")"
  grep -qF "$fp" "$tmp/o" || bad "$what: sync does not show $fp: $(cat "$tmp/o")"
  [ -z "$(ls -A "$tmp/ta")" ] || bad "$what: something was written to the target: $(ls -A "$tmp/ta")"
  rc=0
  ds config check --connect >"$tmp/o" 2>&1 || rc=$?
  [ "$rc" != 0 ] || bad "$what: config check --connect accepts a revoked key: $(cat "$tmp/o")"
  grep -q "HOST KEY REVOKED" "$tmp/o" || bad "$what: config check --connect: $(cat "$tmp/o")"
  local before
  before=$(cat "$kh")
  rc=0
  ds trust --yes web1 >"$tmp/o" 2>&1 || rc=$?
  [ "$rc" = 4 ] || bad "$what: trust --yes exit $rc, expected 4: $(cat "$tmp/o")"
  grep -q "REVOKED" "$tmp/o" || bad "$what: trust does not say REVOKED: $(cat "$tmp/o")"
  [ "$(cat "$kh")" = "$before" ] || bad "$what: trust --yes changed $kh: $(cat "$kh")"
}

# OpenSSH's own client refuses the first form too (the reference)
printf '@revoked [127.0.0.1]:%s %s\n[127.0.0.1]:%s %s\n' "$SSHD_PORT" "$key" "$SSHD_PORT" "$key" >"$kh"
if ssh -o BatchMode=yes -o UserKnownHostsFile="$kh" -o StrictHostKeyChecking=yes -i "$SSH_KEY" \
  -p "$SSHD_PORT" "$SSHD_USER@127.0.0.1" true >"$tmp/ssh.out" 2>&1; then
  bad "OpenSSH's ssh accepted the revoked key (the test's premise): $(cat "$tmp/ssh.out")"
fi
grep -q "REVOKED" "$tmp/ssh.out" || bad "ssh did not say revoked: $(cat "$tmp/ssh.out")"
refused "@revoked [host]:port and a plain entry"

printf '[127.0.0.1]:%s %s\n@revoked * %s\n' "$SSHD_PORT" "$key" "$key" >"$kh"
refused "@revoked * after a plain entry"

printf '[127.0.0.1]:%s %s\n' "$SSHD_PORT" "$key" >"$kh"
ssh-keygen -H -f "$kh" >/dev/null 2>&1
rm -f "$kh.old"
printf '@revoked 127.0.0.1 %s\n' "$key" >>"$kh"
refused "@revoked beside a hashed entry"

printf '@revoked [127.0.0.1]:%s %s\n' "$SSHD_PORT" "$key" >"$kh"
refused "@revoked alone"

# another key revoked: ours still works
other=$(cut -d' ' -f1,2 "$SSH_KEY.pub")
printf '@revoked [127.0.0.1]:%s %s\n[127.0.0.1]:%s %s\n' "$SSHD_PORT" "$other" "$SSHD_PORT" "$key" >"$kh"
ds sync web1 >"$tmp/o" 2>&1 || bad "another key revoked: sync failed: $(cat "$tmp/o")"
st_check_converged "$tmp/store" "$tmp/ta" "another key revoked"

exit "$fail"
